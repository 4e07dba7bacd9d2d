"""A structured Lagrangian network that cannot go singular (Deep Lagrangian Networks, Lutter,
Ritter and Peters 2019):

    L_theta(q, q_dot) = q_dot^T M_theta(q) q_dot / 2 - V_theta(q),
    M_theta(q) = C(q) C(q)^T + eps I,

with ``C`` a learned lower-triangular factor (positive diagonal) and ``V`` a scalar network. ``M``
is symmetric positive definite with ``lambda_min >= eps`` for every weight and state, so the
Euler-Lagrange equation

    M(q) q_ddot = d/dq (q_dot^T M q_dot / 2) - (dM/dt) q_dot - grad V(q)

always determines the accelerations: one linear solve with a positive-definite matrix, never the
inverse of an indefinite Hessian (Cranmer's :class:`~symplearn.models.LNN` learns ``d2L/dq_dot2``
freely, and its rollouts stop where that Hessian goes singular).

The derivatives of ``C`` (along ``q_dot`` and along each axis) come from one forward-mode pass
written by hand through its network, ``grad V`` in closed form: ordinary tensor operations, so
they stay differentiable for training (about 10x faster than ``torch.func`` transforms for the
small networks here).

The same model has a canonical form: with its own momenta ``p = M(q) q_dot`` the Legendre
transform is ``H(q, p) = p^T M(q)^{-1} p / 2 + V(q)`` (:meth:`StructuredLNN.canonical`), and a
symplectic integrator of that H conjugated back to ``(q, q_dot)`` (:meth:`StructuredLNN.canonical_flow`)
keeps the learned energy bounded over long rollouts, where RK4 in ``(q, q_dot)`` drifts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._errors import NonFiniteError
from ..dynamics import FlowMap, HamiltonianDynamics, LagrangianDynamics, join, split
from ..integrators.discretize import discretize
from ._common import ModelMixin, ScalarMLP, check_float, check_int
from .activations import get_activation

__all__ = ["StructuredLNN"]

#: softplus^-1(1): the diagonal of C starts near 1, so M starts near the identity
_DIAG_SHIFT = math.log(math.e - 1.0)


class StructuredLNN(ModelMixin, nn.Module, LagrangianDynamics):
    """``L = q_dot^T M(q) q_dot / 2 - V(q)`` with ``M = C C^T + eps I`` positive definite by
    construction (DeLaN, Lutter et al. 2019).

    The state is **Lagrangian**, ``x = (q, q_dot)`` of shape ``(..., 2n)``
    (``state_kind = "lagrangian"``), as for :class:`~symplearn.models.LNN`; it trains with the
    acceleration loss and rolls out with RK4. Its energy ``E = q_dot^T M q_dot / 2 + V`` is
    conserved by the continuous flow for any weights.

    With ``angles=True`` both networks see ``(cos q, sin q)`` instead of ``q``, so ``M`` and
    ``V`` are exactly ``2 pi``-periodic in every coordinate (a pendulum's angles that wrap).

    Args:
        n_dof: number of degrees of freedom n.
        width: units per hidden layer of both networks.
        depth: hidden layers of both networks.
        activation: a smooth activation (``relu`` is refused: the accelerations need
            derivatives of ``M`` and ``V``).
        epsilon: the floor ``eps > 0`` of ``M``'s eigenvalues.
        angles: the networks see ``(cos q, sin q)``.

    Raises:
        SymplearnError: non-positive sizes or ``epsilon``, an unknown or non-smooth activation.
    """

    kind = "lnn-structured"

    def __init__(
        self,
        n_dof: int,
        width: int = 64,
        depth: int = 2,
        activation: str = "tanh",
        epsilon: float = 1e-3,
        angles: bool = False,
    ):
        super().__init__()
        self.n_dof = n = check_int("n_dof", n_dof)
        width = check_int("width", width)
        depth = check_int("depth", depth)
        self.epsilon = check_float("epsilon", epsilon, positive=True)
        self.angles = bool(angles)
        self.act = act = get_activation(
            activation,
            smooth=True,
            model="StructuredLNN",
            reason=f"the accelerations need derivatives of M(q) and V(q), and {activation} has "
            f"a derivative that jumps",
        )
        self._set_config(
            n_dof=n, width=width, depth=depth, activation=activation, epsilon=self.epsilon, angles=self.angles
        )
        d = 2 * n if self.angles else n
        dims = [d] + [width] * depth
        self.mass_hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        m = n * (n + 1) // 2
        self.mass_out = nn.Linear(width, m)
        with torch.no_grad():  # C starts near the identity: small weights, unit diagonal
            self.mass_out.weight.mul_(0.1)
            self.mass_out.bias.zero_()
        self.potential_net = ScalarMLP(d, width, depth, act)
        rows, cols = torch.tril_indices(n, n)
        basis = torch.zeros(n, n, m)
        basis[rows, cols, torch.arange(m)] = 1.0
        # (n, n, m): entry k of the network's output goes to C[rows[k], cols[k]]
        self.register_buffer("_basis", basis, persistent=False)
        self.register_buffer("_diagonal", (rows == cols).to(torch.get_default_dtype()), persistent=False)

    # -- the two networks -------------------------------------------------------------------
    def _features(self, q: Tensor) -> Tensor:
        return torch.cat([torch.cos(q), torch.sin(q)], dim=-1) if self.angles else q

    def factor(self, q: Tensor) -> Tensor:
        """The lower-triangular factor ``C(q)`` (positive diagonal). Args: q: ``(..., n)``.
        Returns: ``(..., n, n)``."""
        h = self._features(q)
        for lin in self.mass_hidden:
            h = self.act.fn(F.linear(h, lin.weight, lin.bias))
        raw = F.linear(h, self.mass_out.weight, self.mass_out.bias)  # (..., m)
        diag = self._diagonal.to(raw.dtype)
        vals = diag * F.softplus(raw + _DIAG_SHIFT) + (1 - diag) * raw
        return (vals[..., None, None, :] * self._basis.to(raw.dtype)).sum(-1)

    def mass_matrix(self, q: Tensor) -> Tensor:
        """``M(q) = C C^T + eps I``, symmetric with eigenvalues ``>= eps``. Args: q: ``(..., n)``.
        Returns: ``(..., n, n)``."""
        C = self.factor(q)
        eye = torch.eye(self.n_dof, dtype=C.dtype, device=C.device)
        return C @ C.mT + self.epsilon * eye

    def potential(self, q: Tensor) -> Tensor:
        """``V(q)``. Args: q: ``(..., n)``. Returns: ``(...)``."""
        return self.potential_net(self._features(q))

    # -- mechanics --------------------------------------------------------------------------
    def kinetic(self, q: Tensor, qdot: Tensor) -> Tensor:
        """``q_dot^T M(q) q_dot / 2``. Args: q, qdot: ``(..., n)``. Returns: ``(...)``."""
        return 0.5 * (qdot[..., None, :] @ self.mass_matrix(q) @ qdot[..., :, None])[..., 0, 0]

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        """``L(q, q_dot)``. Args: q, qdot: ``(..., n)``. Returns: ``(...)``."""
        return self.kinetic(q, qdot) - self.potential(q)

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        """The Legendre map ``p = M(q) q_dot``. Args: q, qdot: ``(..., n)``. Returns: ``(..., n)``."""
        return (self.mass_matrix(q) @ qdot[..., None])[..., 0]

    def _factor_tangents(self, q: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        """``C(q)`` and its directional derivatives, forward mode by hand (no autograd call).

        Args:
            q: ``(..., n)``; dirs: ``(..., k, n)`` directions in q-space.

        Returns:
            ``C: (..., n, n)`` and ``dC: (..., k, n, n)``, ``dC[..., j, :, :] = (dC/dq) dirs_j``.
        """
        act = self.act
        if self.angles:
            c, s_ = torch.cos(q), torch.sin(q)
            h = torch.cat([c, s_], dim=-1)
            dh = torch.cat([-s_[..., None, :] * dirs, c[..., None, :] * dirs], dim=-1)
        else:
            h, dh = q, dirs
        for lin in self.mass_hidden:
            a = F.linear(h, lin.weight, lin.bias)
            h = act.fn(a)
            dh = act.deriv(a, h)[..., None, :] * F.linear(dh, lin.weight)
        raw = F.linear(h, self.mass_out.weight, self.mass_out.bias)  # (..., m)
        draw = F.linear(dh, self.mass_out.weight)  # (..., k, m)
        diag = self._diagonal.to(raw.dtype)
        vals = diag * F.softplus(raw + _DIAG_SHIFT) + (1 - diag) * raw
        dvals = (diag * torch.sigmoid(raw + _DIAG_SHIFT) + (1 - diag))[..., None, :] * draw
        n = self.n_dof
        basis = self._basis.to(raw.dtype).reshape(n * n, -1)  # (n*n, m)
        C = F.linear(vals, basis).unflatten(-1, (n, n))
        dC = F.linear(dvals, basis).unflatten(-1, (n, n))
        return C, dC

    def _potential_gradient(self, q: Tensor) -> Tensor:
        g = self.potential_net.gradient(self._features(q))
        if self.angles:
            n = self.n_dof
            return -torch.sin(q) * g[..., :n] + torch.cos(q) * g[..., n:]
        return g

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        """Euler-Lagrange accelerations. Args: q, qdot: ``(..., n)``. Returns: ``(..., n)``.

        ``M q_ddot = dL/dq - (dM/dt) q_dot`` with ``L = q_dot^T M q_dot / 2 - V`` and
        ``M = C C^T + eps I``: the derivatives of ``C`` along ``q_dot`` and along each axis come
        from one forward-mode pass by hand (``_factor_tangents``), ``grad V`` in closed form, and
        ``M`` is solved, never inverted. Ordinary tensor operations throughout, so a loss on the
        accelerations trains the weights by autograd as usual.

        Raises:
            NonFiniteError: NaN or infinite derivatives (non-finite inputs or weights).
        """
        n = self.n_dof
        eye = torch.eye(n, dtype=q.dtype, device=q.device)
        dirs = torch.cat([qdot[..., None, :], eye.expand(*q.shape[:-1], n, n)], dim=-2)  # (..., 1+n, n)
        C, dC = self._factor_tangents(q, dirs)
        Cdot, dCk = dC[..., 0, :, :], dC[..., 1:, :, :]
        u = (C.mT @ qdot[..., None])[..., 0]  # C^T q_dot
        udot = (Cdot.mT @ qdot[..., None])[..., 0]
        mdot_qdot = (Cdot @ u[..., None])[..., 0] + (C @ udot[..., None])[..., 0]  # (dM/dt) q_dot
        # dT/dq_k = q_dot^T (dC/dq_k) C^T q_dot with T = |C^T q_dot|^2 / 2
        dT = ((dCk @ u[..., None, :, None])[..., 0] * qdot[..., None, :]).sum(-1)
        rhs = dT - mdot_qdot - self._potential_gradient(q)
        if not bool(torch.isfinite(rhs).all()):
            bad = int((~torch.isfinite(rhs)).any(-1).sum())
            raise NonFiniteError(
                f"the structured Lagrangian's forces are NaN or infinite at {bad} of "
                f"{rhs[..., 0].numel()} samples; check the inputs and the weights"
            )
        M = C @ C.mT + self.epsilon * eye
        return torch.linalg.solve(M, rhs[..., None])[..., 0]

    def vector_field(self, t, x: Tensor) -> Tensor:
        """``d/dt (q, q_dot) = (q_dot, q_ddot)`` (autonomous). Args: x: ``(..., 2n)`` Lagrangian
        states. Returns: ``(..., 2n)``."""
        self._check_state(x)
        q, qdot = split(x)
        return join(qdot, self.acceleration(q, qdot))

    def energy(self, x: Tensor) -> Tensor:
        """``E = q_dot^T M(q) q_dot / 2 + V(q)``, conserved along :meth:`vector_field`.
        Args: x: ``(..., 2n)`` Lagrangian states. Returns: ``(...)``."""
        self._check_state(x)
        q, qdot = split(x)
        return self.kinetic(q, qdot) + self.potential(q)

    def hamiltonian(self, x: Tensor) -> Tensor:
        """Same as :meth:`energy` (on **Lagrangian** states, as for the LNN). Args: x:
        ``(..., 2n)``. Returns: ``(...)``."""
        return self.energy(x)

    def forward(self, t, x: Tensor) -> Tensor:
        """Same as :meth:`vector_field`."""
        return self.vector_field(t, x)

    # -- canonical form -----------------------------------------------------------------------
    def canonical(self) -> StructuredLNNHamiltonian:
        """The Legendre transform ``H(q, p) = p^T M^{-1} p / 2 + V`` on this model's own
        canonical states ``(q, p = M(q) q_dot)`` (shares the weights)."""
        return StructuredLNNHamiltonian(self)

    def canonical_flow(self, integrator: str = "implicit-midpoint", dt: float = 0.01) -> LegendreFlow:
        """A flow map on Lagrangian states ``(q, q_dot)`` that steps the canonical form with a
        (symplectic) ``integrator``: ``(q, q_dot) -> (q, M q_dot) -> step -> (q', M^{-1} p')``."""
        return LegendreFlow(self, integrator, dt)


class StructuredLNNHamiltonian(nn.Module, HamiltonianDynamics):
    """``H(q, p) = p^T M(q)^{-1} p / 2 + V(q)`` of a :class:`StructuredLNN` (canonical states
    in the model's own momenta ``p = M q_dot``); ``dq/dt = M^{-1} p`` and
    ``dp/dt = dL/dq`` at ``q_dot = M^{-1} p``. Not separable: implicit midpoint or
    Gauss-Legendre keep it symplectic."""

    state_kind = "canonical"
    default_integrator = "implicit-midpoint"

    def __init__(self, lnn: StructuredLNN):
        super().__init__()
        self.lnn = lnn
        self.n_dof = lnn.n_dof

    def velocities(self, q: Tensor, p: Tensor) -> Tensor:
        """``q_dot = M(q)^{-1} p``. Args: q, p: ``(..., n)``. Returns: ``(..., n)``."""
        return torch.linalg.solve(self.lnn.mass_matrix(q), p[..., None])[..., 0]

    def hamiltonian(self, z: Tensor) -> Tensor:
        """Args: z: ``(..., 2n)`` canonical states. Returns: ``(...)``."""
        q, p = split(z)
        return 0.5 * (p * self.velocities(q, p)).sum(-1) + self.lnn.potential(q)

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``J grad H``. Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        lnn, n = self.lnn, self.n_dof
        q, p = split(z)
        eye = torch.eye(n, dtype=q.dtype, device=q.device)
        C, dCk = lnn._factor_tangents(q, eye.expand(*q.shape[:-1], n, n))
        v = torch.linalg.solve(C @ C.mT + lnn.epsilon * eye, p[..., None])[..., 0]
        u = (C.mT @ v[..., None])[..., 0]
        # dH/dq_k = -v^T (dC/dq_k) C^T v + dV/dq_k  (with v = M^{-1} p)
        dT = ((dCk @ u[..., None, :, None])[..., 0] * v[..., None, :]).sum(-1)
        return join(v, dT - lnn._potential_gradient(q))

    def forward(self, t, z: Tensor) -> Tensor:
        return self.vector_field(t, z)


class LegendreFlow(nn.Module, FlowMap):
    """A :class:`StructuredLNN` stepped in its canonical form and read back in ``(q, q_dot)``:
    a symplectic map of ``(q, p)`` conjugated by the learned Legendre map, so the learned
    energy stays in a band (implicit midpoint: the exact energy of a nearby Hamiltonian).

    Attributes:
        lnn: the model; ``flow``: the discretized canonical form; ``dt``: the step.
    """

    state_kind = "lagrangian"

    def __init__(self, lnn: StructuredLNN, integrator: str = "implicit-midpoint", dt: float = 0.01):
        super().__init__()
        self.lnn = lnn
        self.hamiltonian_form = lnn.canonical()
        self.flow = discretize(self.hamiltonian_form, integrator, dt)
        self.n_dof = lnn.n_dof
        self.dt = self.flow.dt

    def step(self, t, x: Tensor) -> Tensor:
        """Args: x: ``(..., 2n)`` Lagrangian states. Returns: ``(..., 2n)``."""
        q, qdot = split(x)
        z = self.flow.step(t, join(q, self.lnn.momenta(q, qdot)))
        q1, p1 = split(z)
        return join(q1, self.hamiltonian_form.velocities(q1, p1))

    def __repr__(self) -> str:
        return f"LegendreFlow({self.flow!r})"
