"""Lagrangian neural networks (Cranmer et al. 2020): learn a scalar ``L_theta(q, q_dot)`` and get
the accelerations from the Euler-Lagrange equation.

For ``L(q, q_dot)`` the Euler-Lagrange equation ``d/dt dL/dq_dot = dL/dq`` reads

    M(q, q_dot) q_ddot = dL/dq - C(q, q_dot) q_dot,
    M = d2L / dq_dot dq_dot   (M_ij = d2L / dq_dot_i dq_dot_j),
    C = d2L / dq_dot dq       (C_ij = d2L / dq_dot_i dq_j),

and is solved for ``q_ddot`` when ``M`` is invertible. :func:`lagrangian_acceleration` does it
for any Lagrangian, batched with ``torch.func`` (no Python loop over samples); :class:`LNN` is a
network ``L_theta`` with that solver inside its vector field.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import grad, jvp, vmap

from .._errors import NonFiniteError, SymplearnError
from ..dynamics import LagrangianDynamics, join, split
from ._common import ModelMixin, ScalarMLP, check_float, check_int
from .activations import get_activation

__all__ = ["LNN", "lagrangian_acceleration", "DEFAULT_MAX_COND"]

#: largest accepted condition number of ``d2L/dq_dot2`` (+ regularisation) before the solve
DEFAULT_MAX_COND = 1e10


def lagrangian_acceleration(
    L: Callable[[Tensor, Tensor], Tensor],
    q: Tensor,
    qdot: Tensor,
    regularization: float = 0.0,
    *,
    max_cond: float = DEFAULT_MAX_COND,
) -> Tensor:
    """Accelerations ``q_ddot = (d2L/dq_dot2)^-1 (dL/dq - d2L/(dq_dot dq) q_dot)`` of a Lagrangian.

    ``L`` is written for **one** sample: it maps ``q: (n,)`` and ``q_dot: (n,)`` to a 0-d tensor.
    The batch is handled here with ``torch.func`` (no Python loop over samples): ``grad L`` by
    reverse mode vmapped over the samples, then ``n + 1`` forward-mode directional derivatives of
    ``dL/dq_dot`` on the whole batch (the columns of ``M = d2L/dq_dot2`` and the product
    ``C q_dot``), then one batched linear solve. Functions written for batches that reduce only
    over the last axis (e.g. a system's ``lagrangian``) also work on single samples and can be
    passed directly.

    The result is differentiable: gradients reach any parameters ``L`` closes over (training an
    LNN backpropagates through the second derivatives and the solve).

    Regularisation: with ``regularization = eps > 0`` the solve uses ``M + eps I`` (a Tikhonov
    shift of the Hessian) instead of ``M``. It changes the accelerations (by about
    ``eps / lambda_min(M)`` relatively for a positive-definite ``M``), and it only cures a
    singularity when ``M`` is positive semi-definite (an indefinite ``M`` can be made singular by
    the shift); the condition number is checked after the shift.

    Args:
        L: per-sample Lagrangian ``(q (n,), q_dot (n,)) -> ()``.
        q: positions ``(..., n)``.
        qdot: velocities ``(..., n)``, same shape as ``q``.
        regularization: ``eps >= 0`` added to the diagonal of ``d2L/dq_dot2``.
        max_cond: largest accepted 2-norm condition number of the (shifted) Hessian.

    Returns:
        ``q_ddot`` of shape ``(..., n)``.

    Raises:
        SymplearnError: bad shapes or arguments, ``L`` not returning a scalar, or a Hessian
            ``d2L/dq_dot2`` that is singular or worse conditioned than ``max_cond`` at some
            samples (the message gives how many and the worst condition number).
        NonFiniteError: NaN or infinite derivatives of ``L``.
    """
    if not callable(L):
        raise SymplearnError(f"L must be a callable (q, q_dot) -> scalar, got {type(L).__name__}")
    q, qdot = _check_pair(q, qdot)
    n = q.shape[-1]
    if q.numel() == 0:
        return torch.zeros_like(q)
    probe = L(q.reshape(-1, n)[0], qdot.reshape(-1, n)[0])
    if not isinstance(probe, Tensor) or probe.ndim != 0:
        shape = tuple(probe.shape) if isinstance(probe, Tensor) else type(probe).__name__
        raise SymplearnError(
            f"L must map one sample (q of shape ({n},), q_dot of shape ({n},)) to a scalar "
            f"(0-d tensor), got {shape}; lagrangian_acceleration vmaps it over the batch itself"
        )

    grad_fn = vmap(grad(lambda y: L(y[:n], y[n:])))  # (B, 2n) -> (B, 2n)

    return _euler_lagrange(grad_fn, q, qdot, regularization, max_cond)


def _check_pair(q: Tensor, qdot: Tensor) -> tuple[Tensor, Tensor]:
    for name, t in (("q", q), ("qdot", qdot)):
        if not isinstance(t, Tensor):
            raise SymplearnError(f"{name} must be a torch.Tensor of shape (..., n), got {type(t).__name__}")
        if t.ndim == 0 or t.shape[-1] == 0:
            raise SymplearnError(f"{name} must have shape (..., n) with n >= 1, got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise SymplearnError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if q.shape != qdot.shape:
        raise SymplearnError(
            f"q and qdot must have the same shape (..., n), got {tuple(q.shape)} and {tuple(qdot.shape)}"
        )
    if q.dtype != qdot.dtype:
        raise SymplearnError(f"q and qdot must have the same dtype, got {q.dtype} and {qdot.dtype}")
    return q, qdot


def _euler_lagrange(
    grad_fn: Callable[[Tensor], Tensor],
    q: Tensor,
    qdot: Tensor,
    regularization: float,
    max_cond: float,
) -> Tensor:
    """Solve the Euler-Lagrange equation given ``grad_fn``: a batch ``x = (q, q_dot): (B, 2n)``
    -> ``grad L(x): (B, 2n)``, row by row (each row depending only on its own input row), and
    forward-differentiable.

    The second derivatives are ``n + 1`` Jacobian-vector products of ``dL/dq_dot`` on the whole
    batch (``torch.func.jvp``, vmapped over the ``n + 1`` tangent directions, not over samples):
    directions ``(0, e_j)`` give the columns of ``M = d2L/dq_dot2``, direction ``(q_dot, 0)``
    gives ``C q_dot``.
    """
    eps = check_float("regularization", regularization, nonnegative=True)
    max_cond = check_float("max_cond", max_cond, positive=True)
    batch, n = q.shape[:-1], q.shape[-1]
    x = torch.cat([q, qdot], dim=-1).reshape(-1, 2 * n)
    B = x.shape[0]
    if B == 0:
        return torch.zeros_like(q)
    unit = torch.cat([x.new_zeros(n, n), torch.eye(n, dtype=x.dtype, device=x.device)], dim=1)
    velocity = torch.cat([x[:, n:], x.new_zeros(B, n)], dim=-1)  # the direction (q_dot, 0)
    tangents = torch.cat([unit[:, None, :].expand(n, B, 2 * n), velocity[None]], dim=0)

    def grad_qdot(y: Tensor) -> tuple[Tensor, Tensor]:
        g = grad_fn(y)
        return g[:, n:], g

    def directional(t: Tensor) -> tuple[Tensor, Tensor]:
        _, dg, g = jvp(grad_qdot, (x,), (t,), has_aux=True)
        return dg, g

    dg, g = vmap(directional)(tangents)  # (n + 1, B, n), (n + 1, B, 2n) (g the same for all)
    M = dg[:n].permute(1, 2, 0)  # M[b, i, j] = d(dL/dq_dot_i)/dq_dot_j = dg[j, b, i]
    rhs = g[0, :, :n] - dg[n]  # dL/dq - C q_dot
    if eps > 0:
        M = M + eps * torch.eye(n, dtype=M.dtype, device=M.device)
    _check_solvable(M.detach(), rhs.detach(), eps, max_cond)
    qddot = torch.linalg.solve(M, rhs.unsqueeze(-1)).squeeze(-1)
    return qddot.reshape(*batch, n)


def _check_solvable(M: Tensor, rhs: Tensor, eps: float, max_cond: float) -> None:
    """Raise unless every ``M`` is finite and has condition number <= ``max_cond``."""
    B = M.shape[0]
    bad_M = ~torch.isfinite(M).flatten(1).all(-1)
    bad_rhs = ~torch.isfinite(rhs).all(-1)
    if bool(bad_M.any()) or bool(bad_rhs.any()):
        raise NonFiniteError(
            f"the Lagrangian's derivatives are NaN or infinite at {int((bad_M | bad_rhs).sum())} of "
            f"{B} samples (Hessian d2L/dq_dot2 at {int(bad_M.sum())}, dL/dq - C q_dot at "
            f"{int(bad_rhs.sum())}); check the inputs and the Lagrangian"
        )
    s = torch.linalg.svdvals(M.to(torch.float64))  # (B, n), descending
    with torch.no_grad():
        cond = torch.where(s[:, -1] > 0, s[:, 0] / s[:, -1], torch.full_like(s[:, 0], math.inf))
    bad = cond > max_cond
    if bool(bad.any()):
        worst = float(cond.max())
        what = "singular" if math.isinf(worst) else f"worst condition number {worst:.3g}"
        shift = f"d2L/dq_dot2 + {eps:g} I" if eps > 0 else "d2L/dq_dot2"
        raise SymplearnError(
            f"the Hessian {shift} is singular or ill-conditioned at {int(bad.sum())} of {B} samples "
            f"({what}; limit max_cond={max_cond:g}): the Euler-Lagrange equation does not determine "
            f"the accelerations there. A Lagrangian must be strictly convex in q_dot (e.g. kinetic "
            f"energy q_dot^T M(q) q_dot / 2 with M positive definite); to solve anyway, pass "
            f"regularization=eps > 0 (e.g. 1e-6), which solves with d2L/dq_dot2 + eps I"
        )


class LNN(ModelMixin, nn.Module, LagrangianDynamics):
    """Lagrangian neural network (Cranmer et al. 2020): ``L_theta(q, q_dot)`` is an MLP
    ``R^2n -> R``, and the accelerations come from the Euler-Lagrange equation
    (:func:`lagrangian_acceleration`, batched with ``torch.func``).

    The state is **Lagrangian**, ``x = (q, q_dot)`` of shape ``(..., 2n)``
    (``state_kind = "lagrangian"``), and :meth:`vector_field` returns ``(q_dot, q_ddot)``, so
    the integrators work on it unchanged. Its energy function (:meth:`energy`,
    ``E = q_dot . dL/dq_dot - L``) is conserved by the continuous flow for any weights.

    The gradient ``grad L_theta`` is the network's closed-form input gradient
    (:class:`~symplearn.models._common.ScalarMLP`); the second derivatives are forward-mode
    directional derivatives of it.

    Args:
        n_dof: number of degrees of freedom n.
        width: units per hidden layer.
        depth: number of hidden layers.
        activation: a smooth activation (default ``softplus``); ``relu`` is refused (its second
            derivative vanishes, so ``d2L/dq_dot2`` would be zero almost everywhere).
        regularization: ``eps >= 0`` added to the diagonal of ``d2L/dq_dot2`` before the solve
            (see :func:`lagrangian_acceleration`); 0 solves the exact equation.

    Raises:
        SymplearnError: non-positive sizes, an unknown or non-smooth activation, a negative
            regularisation; from the vector field, a singular or ill-conditioned Hessian.
    """

    kind = "lnn"
    #: the LNN does not train without clipping: the initial d2L/dq_dot2 is ~1e-3, so the first
    #: accelerations (and losses, ~1e5) are huge
    default_grad_clip = 1.0

    def __init__(
        self,
        n_dof: int,
        width: int = 64,
        depth: int = 2,
        activation: str = "softplus",
        regularization: float = 0.0,
    ):
        super().__init__()
        self.n_dof = check_int("n_dof", n_dof)
        width = check_int("width", width)
        depth = check_int("depth", depth)
        self.regularization = check_float("regularization", regularization, nonnegative=True)
        act = get_activation(
            activation,
            smooth=True,
            model="LNN",
            reason=f"the accelerations need the Hessian d2L/dq_dot2 of the network, and "
            f"{activation}'' vanishes almost everywhere, so that Hessian would be zero and the "
            f"Euler-Lagrange equation unsolvable",
        )
        self._set_config(
            n_dof=self.n_dof,
            width=width,
            depth=depth,
            activation=activation,
            regularization=self.regularization,
        )
        self.lagrangian_net = ScalarMLP(2 * self.n_dof, width, depth, act)

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        """``L_theta(q, q_dot)``. Args: q, qdot: ``(..., n)``. Returns: ``(...)``."""
        x = self._join(q, qdot)
        return self.lagrangian_net(x)

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        """The model's Legendre map ``p = dL_theta/dq_dot``. Args: q, qdot: ``(..., n)``.
        Returns: ``(..., n)``."""
        x = self._join(q, qdot)
        return self.lagrangian_net.gradient(x)[..., self.n_dof :]

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        """Euler-Lagrange accelerations of ``L_theta``. Args: q, qdot: ``(..., n)``.

        Returns:
            ``q_ddot`` of shape ``(..., n)``.

        Raises:
            SymplearnError: ``d2L/dq_dot2`` singular or ill-conditioned at some samples (raise
                ``regularization`` or check the inputs).
        """
        self._join(q, qdot)  # checks shapes and dtype
        return _euler_lagrange(self.lagrangian_net.gradient, q, qdot, self.regularization, DEFAULT_MAX_COND)

    def vector_field(self, t, x: Tensor) -> Tensor:
        """``d/dt (q, q_dot) = (q_dot, q_ddot)`` (autonomous). Args: x: ``(..., 2n)`` Lagrangian states.
        Returns: ``(..., 2n)``."""
        self._check_state(x)
        q, qdot = split(x)
        return join(qdot, self.acceleration(q, qdot))

    def energy(self, x: Tensor) -> Tensor:
        """The energy function ``E_theta = q_dot . dL_theta/dq_dot - L_theta`` (the Hamiltonian
        of the model written in Lagrangian coordinates), conserved along :meth:`vector_field`.

        Args:
            x: ``(..., 2n)`` Lagrangian states ``(q, q_dot)``.

        Returns:
            ``(...)``.
        """
        self._check_state(x)
        val, g = self.lagrangian_net.value_and_grad(x)
        qdot = x[..., self.n_dof :]
        return (qdot * g[..., self.n_dof :]).sum(-1) - val

    def hamiltonian(self, x: Tensor) -> Tensor:
        """Same as :meth:`energy`: for an LNN the "Hamiltonian" is its energy function on
        **Lagrangian** states ``(q, q_dot)``, not a function of canonical ``(q, p)``.

        Args:
            x: ``(..., 2n)`` Lagrangian states. Returns: ``(...)``.
        """
        return self.energy(x)

    def forward(self, t, x: Tensor) -> Tensor:
        """Same as :meth:`vector_field` (so the model is a ``func(t, y)`` for ODE solvers)."""
        return self.vector_field(t, x)

    def _join(self, q: Tensor, qdot: Tensor) -> Tensor:
        q, qdot = _check_pair(q, qdot)
        x = torch.cat([q, qdot], dim=-1)
        self._check_state(x)
        return x
