"""HNNs whose energy is invariant under a declared symmetry by construction.

The energy network never sees the coordinates that the symmetry moves: it is a
:class:`~symplearn.models._common.ScalarMLP` composed with a map ``phi(z)`` onto invariant
features, ``H_theta(z) = f_theta(phi(z))``. Whatever the weights, ``H_theta`` is invariant, so
(Noether) the generator ``G`` of the symmetry has ``{G, H_theta} = 0`` and is conserved by the
learned flow, and the field ``J grad H_theta`` is equivariant. The input gradient is the chain
rule in closed form, ``grad H_theta = (d phi/dz)^T grad f_theta(phi)``, with
``grad f_theta`` from :meth:`ScalarMLP.gradient` (no autograd call; a loss on the field trains
with one ordinary backward pass).

* ``hnn-translation`` :class:`TranslationHNN`: N particles in d dimensions; the energy sees the
  positions relative to the first particle, ``q_i - q_1`` (i >= 2), and the momenta as they are.
  Conserved: total momentum ``sum_i p_i`` (a linear invariant, which every Runge-Kutta method,
  explicit or implicit, also keeps to round-off).
* ``hnn-translation-separable`` :class:`SeparableTranslationHNN`:
  ``H = T_theta(p) + V_theta(q_i - q_1)``, for explicit symplectic integrators (Verlet).
* ``hnn-rotation`` :class:`RotationHNN`: one body in the plane; the energy sees
  ``(|q|, |p|^2, q . p)``, invariant under rotations (and reflections) of the plane. Conserved:
  the angular momentum ``L = x p_y - y p_x``, a quadratic invariant, which implicit midpoint and
  Gauss-Legendre keep to round-off (any rotation-invariant H), RK4 does not.
* ``hnn-rotation-separable`` :class:`SeparableRotationHNN`:
  ``H = T_theta(|p|^2) + V_theta(|q|)``: each Verlet kick is along q and each drift along p, so
  Verlet keeps L to round-off as well.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._errors import SymplearnError
from ..dynamics import HamiltonianDynamics, SeparableHamiltonian, join, split
from ._common import ModelMixin, ScalarMLP, check_int
from .activations import get_activation

__all__ = [
    "RotationHNN",
    "SYMMETRIC_MODELS",
    "SeparableRotationHNN",
    "SeparableTranslationHNN",
    "TranslationHNN",
]


def _particles(cls_name: str, n_dof: int, spatial_dim: int) -> int:
    if n_dof % spatial_dim or n_dof // spatial_dim < 2:
        raise SymplearnError(
            f"{cls_name} needs at least two particles: n_dof must be a multiple >= 2 of spatial_dim; "
            f"got n_dof={n_dof}, spatial_dim={spatial_dim} (e.g. n_dof=2, spatial_dim=1 for two "
            f"masses on a line)"
        )
    return n_dof // spatial_dim


def _check_planar(cls_name: str, n_dof: int) -> int:
    if n_dof != 2:
        raise SymplearnError(
            f"{cls_name} models one body in the plane, z = (x, y, p_x, p_y), so n_dof must be 2; got {n_dof}"
        )
    return n_dof


def _relative(q: Tensor, d: int) -> Tensor:
    """``q_i - q_1`` for i >= 2: ``(..., N d) -> (..., (N - 1) d)``."""
    first = q[..., :d]
    rest = q[..., d:]
    n_rest = rest.shape[-1] // d
    return rest - (first if n_rest == 1 else first.repeat(*([1] * (q.ndim - 1)), n_rest))


def _relative_pullback(g: Tensor, d: int) -> Tensor:
    """Gradient with respect to q of a function of :func:`_relative` with gradient ``g``:
    ``dH/dq_1 = -sum_i g_i``, ``dH/dq_i = g_i``. ``(..., (N-1) d) -> (..., N d)``."""
    n_rest = g.shape[-1] // d
    first = -g if n_rest == 1 else -g.reshape(*g.shape[:-1], n_rest, d).sum(-2)
    return torch.cat([first, g], -1)


class _InvariantHNN(ModelMixin, nn.Module, HamiltonianDynamics):
    """``H_theta(z) = f_theta(phi(z))`` with invariant features ``phi``; subclasses give
    :meth:`features` and the closed-form pullback :meth:`_pullback`."""

    def features(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Invariant features ``phi(z)``. Args: z: ``(..., 2n)``. Returns: ``(..., m)``."""
        raise NotImplementedError

    def _pullback(self, z: Tensor, g: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``(d phi/dz)^T g``. Args: z: ``(..., 2n)``, g: ``(..., m)``. Returns: ``(..., 2n)``."""
        raise NotImplementedError

    def hamiltonian(self, z: Tensor) -> Tensor:
        """``H_theta(z) = f_theta(phi(z))``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        self._check_state(z)
        return self.energy_net(self.features(z))

    def grad_hamiltonian(self, z: Tensor) -> Tensor:
        """``grad H_theta(z)`` by the chain rule in closed form. Args: z: ``(..., 2n)``.
        Returns: ``(..., 2n)``."""
        self._check_state(z)
        return self._pullback(z, self.energy_net.gradient(self.features(z)))

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`vector_field` (so the model is a ``func(t, y)`` for ODE solvers)."""
        return self.vector_field(t, z)


def _translation_setup(model, n_dof, spatial_dim, width, depth, activation):
    """The checks and config shared by the translation-invariant HNNs: sets ``n_dof``,
    ``spatial_dim``, ``n_particles`` and ``config`` on ``model``; returns ``(width, depth, act)``."""
    model.n_dof = check_int("n_dof", n_dof)
    model.spatial_dim = check_int("spatial_dim", spatial_dim)
    model.n_particles = _particles(type(model).__name__, model.n_dof, model.spatial_dim)
    width, depth = check_int("width", width), check_int("depth", depth)
    act = get_activation(activation, smooth=True, model=type(model).__name__)
    model._set_config(
        n_dof=model.n_dof, spatial_dim=model.spatial_dim, width=width, depth=depth, activation=activation
    )
    return width, depth, act


class TranslationHNN(_InvariantHNN):
    """HNN whose energy is blind to a common shift of all positions:
    ``H_theta(q, p) = f_theta(q_2 - q_1, ..., q_N - q_1, p)``.

    Positions are N particles of ``spatial_dim`` coordinates each, particle-major
    (``q = (x_1, ..., x_N)``, ``x_i`` of length d). Invariant under ``q_i -> q_i + s`` for any
    ``s`` in ``R^d``; the conserved charge is the total momentum ``sum_i p_i`` (each of its d
    components). The field is translation-invariant (shift the state, the field is unchanged).

    Args:
        n_dof: degrees of freedom ``n = N d`` (state ``(..., 2n)``), N >= 2 particles.
        spatial_dim: coordinates per particle d (1 on a line).
        width, depth: hidden units per layer, hidden layers of the energy network.
        activation: a smooth activation; ``relu`` is refused.

    Raises:
        SymplearnError: non-positive sizes, ``n_dof`` not a multiple >= 2 of ``spatial_dim``,
            an unknown or non-smooth activation.
    """

    kind = "hnn-translation"

    def __init__(
        self, n_dof: int, spatial_dim: int = 1, width: int = 64, depth: int = 2, activation: str = "tanh"
    ):
        super().__init__()
        width, depth, act = _translation_setup(self, n_dof, spatial_dim, width, depth, activation)
        m = (self.n_particles - 1) * self.spatial_dim + self.n_dof
        self.energy_net = ScalarMLP(m, width, depth, act)

    def features(self, z: Tensor) -> Tensor:
        """``(q_2 - q_1, ..., q_N - q_1, p)``. Args: z: ``(..., 2n)``. Returns: ``(..., (N-1) d + n)``."""
        q, p = split(z)
        return torch.cat([_relative(q, self.spatial_dim), p], -1)

    def _pullback(self, z: Tensor, g: Tensor) -> Tensor:
        k = (self.n_particles - 1) * self.spatial_dim
        return torch.cat([_relative_pullback(g[..., :k], self.spatial_dim), g[..., k:]], -1)


class SeparableTranslationHNN(ModelMixin, nn.Module, SeparableHamiltonian):
    """Separable translation-invariant HNN ``H_theta = T_theta(p) + V_theta(q_2 - q_1, ..., q_N - q_1)``.

    As :class:`TranslationHNN`, with ``grad_T``/``grad_V`` for explicit symplectic integrators.
    ``sum_i dV/dq_i = 0`` (exactly for two particles, to round-off for more), so every Verlet
    kick leaves the total momentum unchanged.

    Args:
        n_dof: degrees of freedom ``n = N d``, N >= 2 particles.
        spatial_dim: coordinates per particle d.
        width, depth: hidden units per layer, hidden layers (of each network).
        activation: a smooth activation.

    Raises:
        SymplearnError: as :class:`TranslationHNN`.
    """

    kind = "hnn-translation-separable"

    def __init__(
        self, n_dof: int, spatial_dim: int = 1, width: int = 64, depth: int = 2, activation: str = "tanh"
    ):
        super().__init__()
        width, depth, act = _translation_setup(self, n_dof, spatial_dim, width, depth, activation)
        self.kinetic_net = ScalarMLP(self.n_dof, width, depth, act)
        self.potential_net = ScalarMLP((self.n_particles - 1) * self.spatial_dim, width, depth, act)

    def kinetic(self, p: Tensor) -> Tensor:
        """``T_theta(p)``. Args: p: ``(..., n)``. Returns: ``(...)``."""
        return self.kinetic_net(p)

    def potential(self, q: Tensor) -> Tensor:
        """``V_theta(q_i - q_1)``. Args: q: ``(..., n)``. Returns: ``(...)``."""
        return self.potential_net(_relative(q, self.spatial_dim))

    def hamiltonian(self, z: Tensor) -> Tensor:
        """``T_theta(p) + V_theta(q_i - q_1)``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        self._check_state(z)
        q, p = split(z)
        return self.kinetic(p) + self.potential(q)

    def grad_T(self, p: Tensor) -> Tensor:
        """``dT_theta/dp``. Args: p: ``(..., n)``. Returns: ``(..., n)``."""
        return self.kinetic_net.gradient(p)

    def grad_V(self, q: Tensor) -> Tensor:
        """``dV_theta/dq`` (chain rule in closed form). Args: q: ``(..., n)``. Returns: ``(..., n)``."""
        d = self.spatial_dim
        return _relative_pullback(self.potential_net.gradient(_relative(q, d)), d)

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``(dT/dp, -dV/dq)`` (autonomous). Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        self._check_state(z)
        q, p = split(z)
        return join(self.grad_T(p), -self.grad_V(q))

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`vector_field` (so the model is a ``func(t, y)`` for ODE solvers)."""
        return self.vector_field(t, z)


class RotationHNN(_InvariantHNN):
    """HNN for one body in the plane whose energy is blind to the orientation:
    ``H_theta(q, p) = f_theta(|q|, |p|^2, q . p)``.

    The three features are invariant under a common rotation (or reflection) of q and p, so the
    angular momentum ``L = x p_y - y p_x`` has ``{L, H_theta} = 0`` identically: the learned
    field is ``dq/dt = 2 f_v p + f_w q``, ``dp/dt = -(f_u q / |q| + f_w p)``, and
    ``dL/dt = q x dp/dt + dq/dt x p = 0`` term by term. Not separable: integrate with implicit
    midpoint or Gauss-Legendre, which keep L (a quadratic invariant) to round-off; RK4 does not.
    Undefined at ``q = 0`` (like the Kepler energy).

    Args:
        n_dof: must be 2 (state ``(x, y, p_x, p_y)``).
        width, depth: hidden units per layer, hidden layers of the energy network.
        activation: a smooth activation.

    Raises:
        SymplearnError: ``n_dof != 2``, non-positive sizes, an unknown or non-smooth activation.
    """

    kind = "hnn-rotation"

    def __init__(self, n_dof: int = 2, width: int = 64, depth: int = 2, activation: str = "tanh"):
        super().__init__()
        self.n_dof = _check_planar(type(self).__name__, check_int("n_dof", n_dof))
        width, depth = check_int("width", width), check_int("depth", depth)
        act = get_activation(activation, smooth=True, model=type(self).__name__)
        self._set_config(n_dof=self.n_dof, width=width, depth=depth, activation=activation)
        self.energy_net = ScalarMLP(3, width, depth, act)

    def features(self, z: Tensor) -> Tensor:
        """``(|q|, |p|^2, q . p)``. Args: z: ``(..., 4)``. Returns: ``(..., 3)``."""
        q, p = split(z)
        return torch.stack([q.norm(dim=-1), (p * p).sum(-1), (q * p).sum(-1)], -1)

    def _pullback(self, z: Tensor, g: Tensor) -> Tensor:
        q, p = split(z)
        gu, gv, gw = g[..., 0:1], g[..., 1:2], g[..., 2:3]
        r = q.norm(dim=-1, keepdim=True)
        return join((gu / r) * q + gw * p, (2.0 * gv) * p + gw * q)


class SeparableRotationHNN(ModelMixin, nn.Module, SeparableHamiltonian):
    """Separable rotation-invariant HNN for one body in the plane:
    ``H_theta = T_theta(|p|^2) + V_theta(|q|)``.

    ``grad_T = 2 T'(|p|^2) p`` is parallel to p and ``grad_V = V'(|q|) q / |q|`` to q, so each
    drift ``q += h grad_T`` and each kick ``p -= h grad_V`` leaves ``L = x p_y - y p_x`` unchanged:
    Verlet (and every splitting method) keeps L to round-off.

    Args:
        n_dof: must be 2.
        width, depth: hidden units per layer, hidden layers (of each network).
        activation: a smooth activation.

    Raises:
        SymplearnError: as :class:`RotationHNN`.
    """

    kind = "hnn-rotation-separable"

    def __init__(self, n_dof: int = 2, width: int = 64, depth: int = 2, activation: str = "tanh"):
        super().__init__()
        self.n_dof = _check_planar(type(self).__name__, check_int("n_dof", n_dof))
        width, depth = check_int("width", width), check_int("depth", depth)
        act = get_activation(activation, smooth=True, model=type(self).__name__)
        self._set_config(n_dof=self.n_dof, width=width, depth=depth, activation=activation)
        self.kinetic_net = ScalarMLP(1, width, depth, act)
        self.potential_net = ScalarMLP(1, width, depth, act)

    def kinetic(self, p: Tensor) -> Tensor:
        """``T_theta(|p|^2)``. Args: p: ``(..., 2)``. Returns: ``(...)``."""
        return self.kinetic_net((p * p).sum(-1, keepdim=True))

    def potential(self, q: Tensor) -> Tensor:
        """``V_theta(|q|)``. Args: q: ``(..., 2)``. Returns: ``(...)``."""
        return self.potential_net(q.norm(dim=-1, keepdim=True))

    def hamiltonian(self, z: Tensor) -> Tensor:
        """``T_theta(|p|^2) + V_theta(|q|)``. Args: z: ``(..., 4)``. Returns: ``(...)``."""
        self._check_state(z)
        q, p = split(z)
        return self.kinetic(p) + self.potential(q)

    def grad_T(self, p: Tensor) -> Tensor:
        """``2 T'(|p|^2) p``. Args: p: ``(..., 2)``. Returns: ``(..., 2)``."""
        return (2.0 * self.kinetic_net.gradient((p * p).sum(-1, keepdim=True))) * p

    def grad_V(self, q: Tensor) -> Tensor:
        """``V'(|q|) q / |q|``. Args: q: ``(..., 2)``. Returns: ``(..., 2)``."""
        r = q.norm(dim=-1, keepdim=True)
        return (self.potential_net.gradient(r) / r) * q

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``(dT/dp, -dV/dq)`` (autonomous). Args: z: ``(..., 4)``. Returns: ``(..., 4)``."""
        self._check_state(z)
        q, p = split(z)
        return join(self.grad_T(p), -self.grad_V(q))

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`vector_field` (so the model is a ``func(t, y)`` for ODE solvers)."""
        return self.vector_field(t, z)


#: the symmetric kinds, registered in :data:`symplearn.models.MODELS`
SYMMETRIC_MODELS: tuple[type[nn.Module], ...] = (
    TranslationHNN,
    SeparableTranslationHNN,
    RotationHNN,
    SeparableRotationHNN,
)
