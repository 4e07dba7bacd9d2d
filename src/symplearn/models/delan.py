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

The derivatives of ``M`` are one forward-mode (``(dM/dt) q_dot``, a Jacobian-vector product of
``q -> M(q) q_dot`` along ``q_dot``) and one reverse-mode product (``d/dq (q_dot^T M q_dot)``) of
``torch.func``, batched over the samples; both stay differentiable for training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import jvp, vjp

from .._errors import NonFiniteError
from ..dynamics import Dynamics, join, split
from ._common import ModelMixin, ScalarMLP, check_float, check_int
from .activations import get_activation

__all__ = ["StructuredLNN"]

#: softplus^-1(1): the diagonal of C starts near 1, so M starts near the identity
_DIAG_SHIFT = math.log(math.e - 1.0)


class StructuredLNN(ModelMixin, nn.Module, Dynamics):
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
    state_kind = "lagrangian"
    default_loss = "acceleration"

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

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        """Euler-Lagrange accelerations. Args: q, qdot: ``(..., n)``. Returns: ``(..., n)``.

        Raises:
            NonFiniteError: NaN or infinite derivatives (non-finite inputs or weights).
        """

        def m_qdot(y: Tensor) -> tuple[Tensor, Tensor]:  # q -> M(q) q_dot (q_dot fixed), and M
            M = self.mass_matrix(y)
            return (M @ qdot[..., None])[..., 0], M

        _, mdot_qdot = jvp(lambda y: m_qdot(y)[0], (q,), (qdot,))  # (dM/dt) q_dot = (dM/dq . q_dot) q_dot
        _, pull, M = vjp(m_qdot, q, has_aux=True)
        (dT,) = pull(qdot)  # d/dq (q_dot^T M q_dot), q_dot fixed
        _, pull_v = vjp(self.potential, q)
        (grad_v,) = pull_v(torch.ones(q.shape[:-1], dtype=q.dtype, device=q.device))
        rhs = 0.5 * dT - mdot_qdot - grad_v
        if not bool(torch.isfinite(rhs).all()):
            bad = int((~torch.isfinite(rhs)).any(-1).sum())
            raise NonFiniteError(
                f"the structured Lagrangian's forces are NaN or infinite at {bad} of "
                f"{rhs[..., 0].numel()} samples; check the inputs and the weights"
            )
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
