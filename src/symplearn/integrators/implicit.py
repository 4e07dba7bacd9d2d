"""Implicit symplectic Runge-Kutta methods: Gauss-Legendre collocation with s stages.

The s-stage Gauss-Legendre method has order 2s, is symplectic for every s (its tableau satisfies
``b_i a_ij + b_j a_ji = b_i b_j``), symmetric, and works for any (non-separable) Hamiltonian.
s = 1 is the implicit midpoint rule ``z' = z + h f((z + z')/2)``.

The stage equations ``K_i = f(z + h sum_j a_ij K_j)`` are solved by fixed-point iteration, which
is differentiable end to end and converges for ``h L ||A|| < 1`` (L a Lipschitz constant of f).
A step that does not converge to the tolerance within the iteration limit raises
:class:`~symplearn.ConvergenceError`; an unconverged step is never returned.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .._errors import ConvergenceError, SymplearnError
from .base import Integrator


def gauss_legendre_tableau(s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Butcher tableau ``(A, b, c)`` of the s-stage Gauss-Legendre collocation method (float64).

    ``c`` are the roots of the shifted Legendre polynomial on [0, 1],
    ``a_ij = int_0^{c_i} l_j(t) dt`` and ``b_j = int_0^1 l_j(t) dt`` with ``l_j`` the Lagrange
    basis polynomials on the nodes.
    """
    if s < 1:
        raise SymplearnError(f"Gauss-Legendre needs at least 1 stage, got {s}")
    x, _ = np.polynomial.legendre.leggauss(s)
    c = (x + 1.0) / 2.0
    A = np.zeros((s, s))
    b = np.zeros(s)
    for j in range(s):
        others = np.delete(c, j)
        # l_j(t) = prod_{m != j} (t - c_m) / (c_j - c_m)
        coeffs = np.poly(others) / np.prod(c[j] - others) if s > 1 else np.array([1.0])
        anti = np.polyint(coeffs)
        b[j] = np.polyval(anti, 1.0) - np.polyval(anti, 0.0)
        for i in range(s):
            A[i, j] = np.polyval(anti, c[i]) - np.polyval(anti, 0.0)
    return A, b, c


class GaussLegendre(Integrator):
    """s-stage Gauss-Legendre collocation: order 2s, symplectic, symmetric, implicit.

    Args:
        stages: number of stages s (1 = implicit midpoint, 2 = order 4, 3 = order 6).
        tol: tolerance on the change of the stage states ``dt A K`` in one iteration,
            relative to the size of each state's stage states (a residual that stalls below
            ``1e3 * eps`` is also accepted: round-off); ``None`` picks ``50 * eps`` of the
            state's dtype. An iteration whose residual grows three times in a row raises
            :class:`~symplearn.ConvergenceError` (it does not contract: the step is too large).
        max_iter: iteration limit of the fixed-point solve.
    """

    symplectic = True
    implicit = True
    time_reversible = True

    def __init__(self, stages: int = 2, *, tol: float | None = None, max_iter: int = 100):
        if stages < 1:
            raise SymplearnError(f"Gauss-Legendre needs stages >= 1, got {stages}")
        if max_iter < 1:
            raise SymplearnError(f"max_iter must be >= 1, got {max_iter}")
        self.stages = stages
        self.tol = tol
        self.max_iter = max_iter
        self.A, self.b, self.c = gauss_legendre_tableau(stages)
        self.order = 2 * stages
        self.name = {1: "implicit-midpoint"}.get(stages, f"gauss-legendre-{2 * stages}")

    def __repr__(self) -> str:
        return f"GaussLegendre(stages={self.stages})"

    def step(self, dynamics, t, z: Tensor, dt) -> Tensor:
        s = self.stages
        A = torch.as_tensor(self.A, dtype=z.dtype, device=z.device)
        b = torch.as_tensor(self.b, dtype=z.dtype, device=z.device)
        c = torch.as_tensor(self.c, dtype=z.dtype, device=z.device)
        eps = torch.finfo(z.dtype).eps
        tol = self.tol if self.tol is not None else 50.0 * eps
        f = dynamics.vector_field
        # stage times t + c_i dt, shaped to broadcast against the stage states (s, ..., 2n)
        # (the time argument of a field broadcasts against the batch shape z.shape[:-1])
        if isinstance(dt, Tensor):  # one step per state, (..., 1)
            t_stage = t + c.reshape(s, *([1] * (dt.ndim - 1))) * dt[..., 0]
            adt = dt.abs()[..., 0]
        else:
            t_stage = t + c.reshape(s, *([1] * (z.ndim - 1))) * dt
            adt = abs(dt)
        if z.ndim == 0 or z.shape[-1] == 0 or z.numel() == 0:
            return z.clone()
        f0 = f(t, z)
        K = f0.unsqueeze(0).expand(s, *f0.shape)  # (s, ..., 2n): explicit-Euler predictor
        residual = previous = math.inf
        rising = 0
        # The residual is the change of the stage states dt * A (K_new - K) in one iteration,
        # relative to the size of those states (coordinates near 6e4 -- a double pendulum
        # rotated 10^4 times -- carry round-off of 6e4 eps that no iteration can remove, and
        # a state of size 1e-14 must converge relative to itself, not to 1).
        tiny = torch.finfo(z.dtype).tiny
        zabs = z.detach().abs().amax(dim=-1)
        for it in range(self.max_iter):
            Z = z.unsqueeze(0) + dt * torch.einsum("ij,j...->i...", A, K)
            K_new = f(t_stage, Z)
            with torch.no_grad():
                change = (adt * (K_new - K).detach().abs().amax(dim=-1)).amax(dim=0)  # (batch)
                scale = torch.maximum(Z.detach().abs().amax(dim=-1).amax(dim=0), zabs)
                scale = torch.maximum(scale, (adt * K_new.detach().abs().amax(dim=-1)).amax(dim=0))
                residual = float((change / (scale + tiny)).max()) if change.numel() else 0.0
            K = K_new
            if not math.isfinite(residual):
                break
            # converged; or stalled at the round-off floor (fields with large terms that cancel)
            if residual <= tol or (residual <= 1e3 * eps and residual >= previous):
                return z + dt * torch.einsum("j,j...->...", b, K)
            # a fixed-point iteration that does not contract (h L ||A|| >= 1) never converges:
            # stop at once rather than return or iterate on a diverging sequence
            rising = rising + 1 if residual >= previous else 0
            if rising >= 3:
                raise ConvergenceError(
                    f"{self.name}: the stage iteration diverges at t={_fmt(t)} (dt={_fmt(dt)}, relative "
                    f"residual {residual:.3g} grew for {rising} iterations, iteration {it + 1}); the "
                    f"step is too large for this field: try a smaller dt"
                )
            previous = residual
        raise ConvergenceError(
            f"{self.name}: the stage equations did not converge at t={_fmt(t)} (dt={_fmt(dt)}, relative "
            f"residual {residual:.3g} > tol {tol:.3g} after {self.max_iter} iterations); try a smaller "
            f"dt or a larger max_iter"
        )


def _fmt(x) -> str:
    if isinstance(x, Tensor):
        return f"{float(x.min()):g}" + ("" if x.numel() == 1 else f"..{float(x.max()):g}")
    return f"{x:g}"


class ImplicitMidpoint(GaussLegendre):
    """The implicit midpoint rule ``z' = z + h f((z + z')/2)``: one-stage Gauss-Legendre, order 2.

    Args:
        tol, max_iter: as for :class:`GaussLegendre`.
    """

    def __init__(self, *, tol: float | None = None, max_iter: int = 100):
        super().__init__(1, tol=tol, max_iter=max_iter)

    def __repr__(self) -> str:
        return "ImplicitMidpoint()"
