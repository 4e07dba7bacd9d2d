"""Symplectic networks (Jin, Zhang, Zhu, Zhang & Karniadakis 2020, "SympNets"): learned flow maps
``z_{k+1} = Phi_theta(z_k)`` for one fixed, declared time step ``dt``, symplectic by construction.

Every map is a composition of *shears*, each of which changes one half of the state by a
function of the other half:

* "up" shear   ``(q, p) -> (q, p + h f(q))``,
* "low" shear  ``(q, p) -> (q + h f(p), p)``,

with ``f`` the gradient of a scalar function (so its Jacobian ``Df`` is symmetric). The Jacobian
of a shear is ``[[I, 0], [h Df, I]]`` (or its transpose), which satisfies ``A^T J A = J``; so
does every composition. A shear is inverted exactly by subtracting the same increment, so every
SympNet has an exact :meth:`~_SympNet.inverse` (up to round-off).

Scaling: every increment is multiplied by a step ``h`` proportional to ``dt`` (Jin et al.'s
``h``), so the parameters are *rates* of order one for a physical system whatever ``dt`` is,
and the map tends to the identity as ``dt -> 0``; at initialisation the map is the identity plus
``O(dt)``.

Up and low shears change one half of the state by a function of the other: with increments of
order ``h`` their composition is, to first order, the flow of a *separable* Hamiltonian
``T(p) + V(q)`` (Janik and Benner 2025), so a SympNet scaled by ``dt`` learns a non-separable flow
(a double pendulum) only through large parameters. Two remedies here: the G-SympNet's
``scale="free"`` (Jin et al.'s fixed-step form: the shear amplitudes are free numbers, not rates
times ``dt``), and the P-SympNet, whose every layer is the exact flow of a learned Hamiltonian
along a learned direction of phase space (Tapley 2024), so its first-order term is the flow of a
general, non-separable ``sum_l F_l(w_l . z)``.

Four architectures (``z = (q, p)``, positions first, as everywhere in symplearn):

* :class:`LASympNet`: linear modules (alternating up/low shears ``f(x) = (S + S^T) x`` and a
  bias) interleaved with activation modules ``f(x) = a * sigma(x)`` (elementwise).
* :class:`GSympNet`: gradient modules ``f(x) = K^T (a * sigma(K x + b))``, alternating up/low.
* :class:`GradientSympNet`: the specification's shear form with scalar networks, alternating
  ``p <- p - h grad V_l(q)`` and ``q <- q + h grad K_l(p)``.
* :class:`PSympNet`: ridge flows ``z <- z + h F_l'(w_l . z) J w_l`` (Tapley 2024, arXiv:2408.09821),
  explicit, exactly symplectic and exactly invertible for any weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._errors import SymplearnError
from ..dynamics import FlowMap, join, split
from ._common import ModelMixin, ScalarMLP, _vecmat, check_float, check_int
from .activations import Activation, get_activation

__all__ = ["LASympNet", "GSympNet", "GradientSympNet", "PSympNet"]

_MODES = ("up", "low")


# -- shears ---------------------------------------------------------------------------------
class _Shear(nn.Module):
    """``up``: ``p <- p + h f(q)``; ``low``: ``q <- q + h f(p)``. Subclasses define ``f``."""

    def __init__(self, mode: str, h: float):
        super().__init__()
        if mode not in _MODES:
            raise ValueError(mode)
        self.mode = mode
        self.h = h

    def f(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        if self.mode == "up":
            return q, p + self.h * self.f(q)
        return q + self.h * self.f(p), p

    def inverse(self, q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        if self.mode == "up":
            return q, p - self.h * self.f(q)
        return q - self.h * self.f(p), p

    def extra_repr(self) -> str:
        return f"mode={self.mode}, h={self.h:g}"


class _LinearShear(_Shear):
    """``f(x) = (S + S^T) x``: the gradient of ``x^T S x``."""

    def __init__(self, n: int, mode: str, h: float, std: float):
        super().__init__(mode, h)
        self.S = nn.Parameter(torch.randn(n, n) * std)

    def f(self, x: Tensor) -> Tensor:
        return x @ (self.S + self.S.transpose(0, 1))


class _ActivationShear(_Shear):
    """``f(x) = a * sigma(x)`` elementwise: the gradient of ``sum_i a_i Sigma(x_i)``."""

    def __init__(self, n: int, mode: str, h: float, act: Activation, std: float):
        super().__init__(mode, h)
        self.act = act
        self.a = nn.Parameter(torch.randn(n) * std)

    def f(self, x: Tensor) -> Tensor:
        return self.a * self.act.fn(x)


class _GradientShear(_Shear):
    """``f(x) = K^T (a * sigma(K x + b))``: the gradient of ``sum_i a_i Sigma(K_i x + b_i)``."""

    def __init__(self, n: int, width: int, mode: str, h: float, act: Activation):
        super().__init__(mode, h)
        self.act = act
        self.K = nn.Parameter(torch.randn(width, n) / n**0.5)
        self.a = nn.Parameter(torch.randn(width) * (0.1 / width**0.5))
        self.b = nn.Parameter(torch.randn(width) * 0.5)

    def f(self, x: Tensor) -> Tensor:
        return _vecmat(self.act.fn(x @ self.K.transpose(0, 1) + self.b) * self.a, self.K)


class _NetworkShear(_Shear):
    """``f(x) = sign * grad N(x)`` with ``N`` a scalar MLP (closed-form input gradient)."""

    def __init__(self, n: int, width: int, depth: int, mode: str, h: float, act: Activation, sign: float):
        super().__init__(mode, h)
        self.sign = sign
        self.net = ScalarMLP(n, width, depth, act)

    def f(self, x: Tensor) -> Tensor:
        g = self.net.gradient(x)
        return -g if self.sign < 0 else g


class _RidgeFlow(nn.Module):
    """The exact time-``h`` flow of ``H(z) = F(w . z)``: since ``w . J w = 0`` the flow keeps
    ``s = w . z`` fixed, so it is the straight line ``z <- z + h F'(s) J w``, i.e.
    ``q <- q + h F'(s) w_p``, ``p <- p - h F'(s) w_q``. ``F'(s) = sum_j a_j sigma(c_j s + b_j)``.

    Its Jacobian ``I + h F''(s) J w w^T`` satisfies ``A^T J A = J`` (``J^T J = I`` and
    ``w^T J w = 0``), and subtracting the same increment inverts it exactly (``s`` is unchanged).
    """

    def __init__(self, n: int, width: int, h: float, act: Activation):
        super().__init__()
        self.h = h
        self.act = act
        self.w = nn.Parameter(torch.randn(2 * n) / (2 * n) ** 0.5)
        self.c = nn.Parameter(torch.randn(width))
        self.b = nn.Parameter(torch.randn(width))
        self.a = nn.Parameter(torch.randn(width) * (0.1 / width**0.5))

    def _rate(self, q: Tensor, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        wq, wp = split(self.w)
        s = q @ wq + p @ wp  # (...)
        force = self.h * (self.act.fn(s[..., None] * self.c + self.b) @ self.a)  # h F'(s), (...)
        return force[..., None], wq, wp

    def forward(self, q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        f, wq, wp = self._rate(q, p)
        return q + f * wp, p - f * wq

    def inverse(self, q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        f, wq, wp = self._rate(q, p)
        return q - f * wp, p + f * wq

    def extra_repr(self) -> str:
        return f"width={self.a.numel()}, h={self.h:g}"


class _Translation(nn.Module):
    """``(q, p) -> (q + h b_q, p + h b_p)`` (the bias of a linear module)."""

    def __init__(self, n: int, h: float):
        super().__init__()
        self.h = h
        self.b = nn.Parameter(torch.zeros(2 * n))

    def forward(self, q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        bq, bp = split(self.b)
        return q + self.h * bq, p + self.h * bp

    def inverse(self, q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        bq, bp = split(self.b)
        return q - self.h * bq, p - self.h * bp


# -- the flow maps --------------------------------------------------------------------------
class _SympNet(ModelMixin, nn.Module, FlowMap):
    """A composition of shears (``self.blocks``, applied in order): a symplectic flow map for
    the time step ``dt``."""

    def __init__(self, n_dof: int, dt: float):
        super().__init__()
        self.n_dof = check_int("n_dof", n_dof)
        self.dt = check_float("dt", dt, positive=True)
        self.blocks = nn.ModuleList()

    def step(self, t, z: Tensor) -> Tensor:
        """One step ``Phi_theta(z)`` of size :attr:`dt` (autonomous: ``t`` is ignored).

        Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        self._check_state(z)
        q, p = split(z)
        for block in self.blocks:
            q, p = block(q, p)
        return join(q, p)

    def inverse(self, z: Tensor) -> Tensor:
        """The exact inverse ``Phi_theta^-1(z)`` (each shear undone, in reverse order).

        Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``.
        """
        self._check_state(z)
        q, p = split(z)
        for block in reversed(self.blocks):
            q, p = block.inverse(q, p)
        return join(q, p)

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`step`."""
        return self.step(t, z)


class LASympNet(_SympNet):
    """LA-SympNet: linear modules and activation modules (Jin et al. 2020).

    ``Phi = Lin_layers o Act_{layers-1} o Lin_{layers-1} o ... o Act_1 o Lin_1``, where

    * a linear module is ``sublayers`` shears ``f(x) = (S_k + S_k^T) x`` alternating up, low, up,
      ... (``S_k`` an ``n x n`` matrix, so ``S_k + S_k^T`` is symmetric) followed by a bias
      ``(q, p) -> (q + h b_q, p + h b_p)``;
    * activation module ``i`` is an up shear (``i`` odd) or a low shear (``i`` even) with
      ``f(x) = a * sigma(x)`` elementwise (``a`` in ``R^n``).

    Every increment is scaled by ``h = dt``. ``S`` and ``a`` start from N(0, 0.1^2), biases at 0.

    Args:
        n_dof: number of degrees of freedom n (state ``(..., 2n)``).
        dt: the time step the map stands for.
        layers: number of linear modules (there are ``layers - 1`` activation modules).
        sublayers: shears per linear module.
        activation: any name in :data:`~symplearn.models.activations.ACTIVATIONS`.

    Raises:
        SymplearnError: non-positive sizes or ``dt``, an unknown activation.
    """

    kind = "sympnet-la"

    def __init__(
        self, n_dof: int, dt: float, layers: int = 3, sublayers: int = 2, activation: str = "sigmoid"
    ):
        super().__init__(n_dof, dt)
        layers = check_int("layers", layers)
        sublayers = check_int("sublayers", sublayers)
        act = get_activation(activation, model="LASympNet")
        self._set_config(
            n_dof=self.n_dof, dt=self.dt, layers=layers, sublayers=sublayers, activation=activation
        )
        n, h = self.n_dof, self.dt
        for i in range(layers):
            for k in range(sublayers):
                self.blocks.append(_LinearShear(n, _MODES[k % 2], h, std=0.1))
            self.blocks.append(_Translation(n, h))
            if i < layers - 1:
                self.blocks.append(_ActivationShear(n, _MODES[i % 2], h, act, std=0.1))


class GSympNet(_SympNet):
    """G-SympNet: gradient modules ``f(x) = K^T (a * sigma(K x + b))`` alternating up, low, ...
    (Jin et al. 2020), with ``K`` of shape ``(width, n)`` and ``a, b`` in ``R^width``.

    ``scale="dt"`` (default): every increment is scaled by ``h = dt`` (``a`` is a rate), with
    ``a ~ N(0, 0.01/width)``. ``scale="free"``: Jin et al.'s fixed-step form, ``h = 1`` and the
    amplitudes ``a`` free numbers, starting from ``N(0, 0.01 dt^2/width)`` (the same initial map
    as the ``dt`` form; what changes is how fast an optimiser can make the shears large, which a
    non-separable flow needs, see the module's docstring). ``K ~ N(0, 1/n)``, ``b ~ N(0, 0.5^2)``
    either way (so the map starts near the identity).

    Args:
        n_dof: number of degrees of freedom n (state ``(..., 2n)``).
        dt: the time step the map stands for.
        layers: number of gradient modules.
        width: hidden units of each module.
        activation: any name in :data:`~symplearn.models.activations.ACTIVATIONS`.
        scale: ``"dt"`` (increments are rates times ``dt``) or ``"free"`` (fixed-step form).

    Raises:
        SymplearnError: non-positive sizes or ``dt``, an unknown activation or scale.
    """

    kind = "sympnet-g"

    def __init__(
        self,
        n_dof: int,
        dt: float,
        layers: int = 4,
        width: int = 32,
        activation: str = "tanh",
        scale: str = "dt",
    ):
        super().__init__(n_dof, dt)
        layers = check_int("layers", layers)
        width = check_int("width", width)
        act = get_activation(activation, model="GSympNet")
        if scale not in ("dt", "free"):
            raise SymplearnError(
                f"GSympNet scale must be 'dt' (increments are rates times dt) or 'free' (fixed-step "
                f"amplitudes), got {scale!r}"
            )
        self._set_config(
            n_dof=self.n_dof, dt=self.dt, layers=layers, width=width, activation=activation, scale=scale
        )
        h = self.dt if scale == "dt" else 1.0
        for i in range(layers):
            block = _GradientShear(self.n_dof, width, _MODES[i % 2], h, act)
            if scale == "free":
                with torch.no_grad():
                    block.a.mul_(self.dt)
            self.blocks.append(block)


class GradientSympNet(_SympNet):
    """The specification's gradient-shear SympNet with scalar networks.

    ``layers`` times, with ``h = dt / layers`` and a fresh pair of scalar MLPs per layer:

        p <- p - h grad V_l(q)      (potential / kick shear)
        q <- q + h grad K_l(p)      (kinetic / drift shear)

    (the specification's ``p <- p + grad V_theta(q)``, ``q <- q + grad K_phi(p)`` with the
    step and a physical sign written out). With ``V_l = V`` and ``K_l = K`` for every layer the
    map is exactly ``layers`` symplectic-Euler steps of size ``dt / layers`` for ``H = K + V``,
    so it starts (default initialisation, increments ``O(h)``) near the identity and can
    represent an accurate time-``dt`` flow of a separable system. Input gradients are the
    networks' closed-form gradients (no autograd inside the step).

    Args:
        n_dof: number of degrees of freedom n (state ``(..., 2n)``).
        dt: the time step the map stands for.
        layers: number of kick-drift pairs.
        width: units per hidden layer of each scalar network.
        depth: hidden layers of each scalar network.
        activation: a smooth activation; ``relu`` is refused.

    Raises:
        SymplearnError: non-positive sizes or ``dt``, an unknown or non-smooth activation.
    """

    kind = "sympnet-grad"

    def __init__(
        self,
        n_dof: int,
        dt: float,
        layers: int = 2,
        width: int = 32,
        depth: int = 2,
        activation: str = "tanh",
    ):
        super().__init__(n_dof, dt)
        layers = check_int("layers", layers)
        width = check_int("width", width)
        depth = check_int("depth", depth)
        act = get_activation(
            activation,
            smooth=True,
            model="GradientSympNet",
            reason=f"each shear is the gradient of a network, and with {activation}' a step "
            f"function the shears would be piecewise constant in the state",
        )
        self._set_config(
            n_dof=self.n_dof, dt=self.dt, layers=layers, width=width, depth=depth, activation=activation
        )
        h, n = self.dt / layers, self.n_dof
        for _ in range(layers):
            self.blocks.append(_NetworkShear(n, width, depth, "up", h, act, sign=-1.0))
            self.blocks.append(_NetworkShear(n, width, depth, "low", h, act, sign=+1.0))

    def potentials(self) -> list[ScalarMLP]:
        """The scalar networks ``V_l`` (one per layer), each ``(..., n) -> (...)``."""
        return [b.net for b in self.blocks if b.mode == "up"]

    def kinetics(self) -> list[ScalarMLP]:
        """The scalar networks ``K_l`` (one per layer), each ``(..., n) -> (...)``."""
        return [b.net for b in self.blocks if b.mode == "low"]


class PSympNet(_SympNet):
    """P-SympNet (Tapley 2024, arXiv:2408.09821): ``layers`` ridge flows, each the exact time-``h``
    flow of a learned Hamiltonian ``F_l(w_l . z)`` of one learned phase-space direction
    ``w_l in R^2n``:

        z <- z + h F_l'(w_l . z) J w_l,    F_l'(s) = sum_j a_j sigma(c_j s + b_j)   (j < width),

    with ``h = dt`` for every layer (``a`` is a rate). Each layer is explicit, exactly symplectic
    (``A^T J A = J`` for any weights) and exactly invertible; unlike up/low shears the direction
    ``w_l`` mixes positions and momenta, so to first order in ``dt`` the map is the time-``dt``
    flow of the non-separable ``sum_l F_l(w_l . z)`` (ridge functions of every direction are
    dense), which is what a double pendulum needs. (With ``h = dt / layers`` it would be the flow
    of their *mean*, and each ``F_l`` would have to carry the whole force: on the double pendulum
    that trained to a 1.6x larger one-step loss in 800 steps, 0.047 against 0.029.)

    Initialisation: ``w ~ N(0, 1/(2n))``, ``c, b ~ N(0, 1)``, ``a ~ N(0, 0.01/width)``.

    Args:
        n_dof: number of degrees of freedom n (state ``(..., 2n)``).
        dt: the time step the map stands for.
        layers: number of ridge flows.
        width: terms of each ``F_l'``.
        activation: any name in :data:`~symplearn.models.activations.ACTIVATIONS` (``F_l'`` is
            built from it, so ``F_l`` is its antiderivative).

    Raises:
        SymplearnError: non-positive sizes or ``dt``, an unknown activation.
    """

    kind = "sympnet-p"

    def __init__(self, n_dof: int, dt: float, layers: int = 16, width: int = 16, activation: str = "tanh"):
        super().__init__(n_dof, dt)
        layers = check_int("layers", layers)
        width = check_int("width", width)
        act = get_activation(activation, model="PSympNet")
        self._set_config(n_dof=self.n_dof, dt=self.dt, layers=layers, width=width, activation=activation)
        for _ in range(layers):
            self.blocks.append(_RidgeFlow(self.n_dof, width, self.dt, act))
