"""Models for damped and driven dynamics, where a plain HNN is confidently wrong.

* ``dhnn`` :class:`DHNN` (Sosanya and Greydanus 2022): two scalar networks,
  ``dz/dt = J grad H_theta(z) + grad D_theta(z)``: a Helmholtz split into a divergence-free
  (rotational, energy-conserving) part and a gradient (irrotational, dissipative) part.
* ``phnn`` :class:`PHNN` (Desai et al. 2021): ``dz/dt = (J - R_theta) grad H_theta(z) + F_theta(t)``
  with ``R_theta`` positive semi-definite by construction and a learned forcing of time on the
  momenta.
* ``mlp-t`` :class:`TimeMLPField`: the unstructured baseline with time as an input,
  ``dz/dt = f_theta(z, t)`` (Desai et al.'s baseline for forced systems).

All take ``vector_field(t, z)``; ``t`` is a float, a 0-d tensor or one time per state
(a tensor broadcastable against ``z.shape[:-1]``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._errors import SymplearnError
from ..dynamics import Dynamics
from ..geometry import apply_J
from ..systems.dissipative import PortHamiltonianDynamics, as_time
from ._common import ModelMixin, ScalarMLP, check_int
from .activations import get_activation
from .mlp import _ActModule

DISSIPATIONS = ("diagonal", "diagonal-p", "full", "none")
FORCINGS = ("mlp", "none")


class DHNN(ModelMixin, nn.Module, Dynamics):
    """Dissipative HNN: ``dz/dt = J grad H_theta(z) + grad D_theta(z)``.

    Whatever the weights, the first part is divergence-free and conserves ``H_theta``; the second
    is curl-free (a gradient). ``D_theta`` plays the Rayleigh dissipation function (with the sign
    convention of the paper: the dissipative field is ``+grad D``). Both networks are
    :class:`~symplearn.models._common.ScalarMLP` (closed-form input gradients).

    Args:
        n_dof: degrees of freedom n (state ``(..., 2n)``).
        width, depth: hidden units per layer and hidden layers of each network.
        activation: a smooth activation (``tanh``, ``softplus``, ...).

    Raises:
        SymplearnError: non-positive sizes, an unknown or non-smooth activation.
    """

    kind = "dhnn"

    def __init__(self, n_dof: int, width: int = 64, depth: int = 2, activation: str = "tanh"):
        super().__init__()
        self.n_dof = check_int("n_dof", n_dof)
        width, depth = check_int("width", width), check_int("depth", depth)
        act = get_activation(activation, smooth=True, model="DHNN")
        self._set_config(n_dof=self.n_dof, width=width, depth=depth, activation=activation)
        self.energy_net = ScalarMLP(2 * self.n_dof, width, depth, act)
        self.dissipation_net = ScalarMLP(2 * self.n_dof, width, depth, act)

    def hamiltonian(self, z: Tensor) -> Tensor:
        """``H_theta(z)``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        self._check_state(z)
        return self.energy_net(z)

    def rayleigh_potential(self, z: Tensor) -> Tensor:
        """``D_theta(z)``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        self._check_state(z)
        return self.dissipation_net(z)

    def conservative_field(self, z: Tensor) -> Tensor:
        """``J grad H_theta`` (divergence-free). Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        self._check_state(z)
        return apply_J(self.energy_net.gradient(z))

    def dissipative_field(self, z: Tensor) -> Tensor:
        """``grad D_theta`` (curl-free). Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        self._check_state(z)
        return self.dissipation_net.gradient(z)

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``J grad H + grad D`` (autonomous: ``t`` is ignored). Returns ``(..., 2n)``."""
        return self.conservative_field(z) + self.dissipative_field(z)

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`vector_field`."""
        return self.vector_field(t, z)


class PHNN(ModelMixin, nn.Module, PortHamiltonianDynamics):
    """Port-Hamiltonian NN: ``dz/dt = (J - R_theta) grad H_theta(z) + F_theta(t)``.

    ``H_theta`` is a :class:`~symplearn.models._common.ScalarMLP`. ``R_theta`` is a constant
    matrix, positive semi-definite by construction:

    * ``"diagonal"``: ``R = diag(r^2)`` over all 2n coordinates (damping of q and of p);
    * ``"diagonal-p"``: ``R = diag(0, r^2)``, damping of the momenta only (Desai et al.);
    * ``"full"``: ``R = L L^T`` with ``L`` lower triangular (2n x 2n);
    * ``"none"``: ``R = 0``.

    ``F_theta(t)`` acts on the momenta, ``(0, f_theta(t))`` with ``f_theta: R -> R^n`` a small
    MLP of t with sine activations (Desai et al.), or ``"none"``. Energy balance
    ``dH_theta/dt = -grad H^T R grad H + grad H . F(t)`` holds for every weight.

    Args:
        n_dof: degrees of freedom n.
        width, depth, activation: the energy network.
        dissipation: one of ``"diagonal"``, ``"diagonal-p"``, ``"full"``, ``"none"``.
        forcing: ``"mlp"`` or ``"none"``.
        forcing_width, forcing_depth: the forcing network (sine activations).

    Raises:
        SymplearnError: non-positive sizes, an unknown activation, dissipation or forcing.
    """

    kind = "phnn"

    def __init__(
        self,
        n_dof: int,
        width: int = 64,
        depth: int = 2,
        activation: str = "tanh",
        dissipation: str = "diagonal",
        forcing: str = "mlp",
        forcing_width: int = 64,
        forcing_depth: int = 2,
    ):
        super().__init__()
        self.n_dof = n = check_int("n_dof", n_dof)
        width, depth = check_int("width", width), check_int("depth", depth)
        forcing_width, forcing_depth = (
            check_int("forcing_width", forcing_width),
            check_int("forcing_depth", forcing_depth),
        )
        if dissipation not in DISSIPATIONS:
            raise SymplearnError(f"unknown dissipation {dissipation!r}; valid: {', '.join(DISSIPATIONS)}")
        if forcing not in FORCINGS:
            raise SymplearnError(f"unknown forcing {forcing!r}; valid: {', '.join(FORCINGS)}")
        act = get_activation(activation, smooth=True, model="PHNN")
        self._set_config(
            n_dof=n,
            width=width,
            depth=depth,
            activation=activation,
            dissipation=dissipation,
            forcing=forcing,
            forcing_width=forcing_width,
            forcing_depth=forcing_depth,
        )
        self.dissipation = dissipation
        self.energy_net = ScalarMLP(2 * n, width, depth, act)
        if dissipation == "diagonal":
            self.r = nn.Parameter(torch.full((2 * n,), 0.3))
        elif dissipation == "diagonal-p":
            self.r = nn.Parameter(torch.full((n,), 0.3))
        elif dissipation == "full":
            self.L = nn.Parameter(0.3 * torch.eye(2 * n))
        self.forcing_net = None
        if forcing == "mlp":
            layers: list[nn.Module] = []
            dims = [1] + [forcing_width] * forcing_depth
            for a, b in zip(dims[:-1], dims[1:]):
                layers += [nn.Linear(a, b), _Sin()]
            layers.append(nn.Linear(forcing_width, n))
            self.forcing_net = nn.Sequential(*layers)

    def hamiltonian(self, z: Tensor) -> Tensor:
        """``H_theta(z)``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        self._check_state(z)
        return self.energy_net(z)

    def grad_hamiltonian(self, z: Tensor) -> Tensor:
        """``grad H_theta(z)`` (closed form). Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        self._check_state(z)
        return self.energy_net.gradient(z)

    def dissipation_constant(self) -> Tensor:
        """The constant ``R_theta``, ``(2n, 2n)``, symmetric positive semi-definite."""
        n2 = 2 * self.n_dof
        p = self.energy_net.out.weight
        if self.dissipation == "diagonal":
            return torch.diag(self.r**2)
        if self.dissipation == "diagonal-p":
            return torch.diag(torch.cat([torch.zeros(self.n_dof, dtype=p.dtype, device=p.device), self.r**2]))
        if self.dissipation == "full":
            L = torch.tril(self.L)
            return L @ L.mT
        return torch.zeros(n2, n2, dtype=p.dtype, device=p.device)

    def dissipation_matrix(self, z: Tensor) -> Tensor:
        """``R_theta`` at ``z`` (constant). Args: z: ``(..., 2n)``. Returns: ``(..., 2n, 2n)``."""
        R = self.dissipation_constant()
        return R.expand(*z.shape[:-1], *R.shape)

    def forcing(self, t) -> Tensor:
        """``F_theta(t) = (0, f_theta(t))``. Args: t: float or ``(...)``. Returns: ``(..., 2n)``."""
        p = self.energy_net.out.weight
        t = as_time(t, p)
        if self.forcing_net is None:
            return torch.zeros(*t.shape, 2 * self.n_dof, dtype=p.dtype, device=p.device)
        f = self.forcing_net(t[..., None])
        return torch.cat([torch.zeros_like(f), f], -1)

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``(J - R) grad H + F(t)``. Args: t: time(s), z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        g = self.grad_hamiltonian(z)
        out = apply_J(g) - g @ self.dissipation_constant()  # R symmetric: (R g)^T = g^T R
        if self.forcing_net is not None:
            out = out + self.forcing(as_time(t, z))
        return out

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`vector_field`."""
        return self.vector_field(t, z)


class TimeMLPField(ModelMixin, nn.Module, Dynamics):
    """``dz/dt = f_theta(z, t)``: a plain MLP of the state and the time, ``(2n + 1) -> 2n``.

    Args:
        n_dof: degrees of freedom n. width, depth: hidden sizes. activation: any activation name.

    Raises:
        SymplearnError: non-positive sizes or an unknown activation.
    """

    kind = "mlp-t"

    def __init__(self, n_dof: int, width: int = 64, depth: int = 2, activation: str = "tanh"):
        super().__init__()
        self.n_dof = check_int("n_dof", n_dof)
        width, depth = check_int("width", width), check_int("depth", depth)
        act = get_activation(activation, model="TimeMLPField")
        self._set_config(n_dof=self.n_dof, width=width, depth=depth, activation=activation)
        dims = [2 * self.n_dof + 1] + [width] * depth
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), _ActModule(act)]
        layers.append(nn.Linear(width, 2 * self.n_dof))
        self.net = nn.Sequential(*layers)

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``f_theta(z, t)``. Args: t: time(s), z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        self._check_state(z)
        t = as_time(t, z).expand(z.shape[:-1])
        return self.net(torch.cat([z, t[..., None]], -1))

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`vector_field`."""
        return self.vector_field(t, z)


class _Sin(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


__all__ = ["DHNN", "PHNN", "TimeMLPField"]
