"""Implicit symplectic Runge-Kutta methods: Gauss-Legendre collocation with s stages.

The s-stage Gauss-Legendre method has order 2s, is symplectic for every s (its tableau satisfies
``b_i a_ij + b_j a_ji = b_i b_j``), symmetric, and works for any (non-separable) Hamiltonian.
s = 1 is the implicit midpoint rule ``z' = z + h f((z + z')/2)``.

The stage equations ``K_i = f(t + c_i h, z + h sum_j a_ij K_j)`` are solved either by
fixed-point iteration (differentiable end to end; converges for ``h L rho(A) < 1``, L a Lipschitz
constant of f, linearly at that rate) or by a simplified Newton iteration (the Jacobian of f at
the step's start state, the matrix ``I - h (A kron J)`` factorised once per step; converges
whatever ``h L`` for a smooth enough f, at a rate ~ ``h^2``). ``solver="auto"`` (the default)
starts with the fixed point and changes to Newton as soon as the fixed point diverges or its
measured contraction says it would need many more iterations than a Newton solve costs. A step
that does not converge to the tolerance raises :class:`~symplearn.ConvergenceError`; an
unconverged step is never returned.

Starting guess: the first step from a state starts the iteration from ``K_i = f(t, z)``
(explicit Euler). A step from the state that the previous step of the same integrator returned
(a rollout) starts instead from the previous step's collocation polynomial extrapolated one step
ahead (Hairer, Lubich and Wanner, *Geometric Numerical Integration*, VIII.6.1): ``u'`` is the
degree ``s - 1`` polynomial through ``(c_j, K_j)``, and ``K_i <- u'(1 + c_i)``, an error of
``O(h^s)`` instead of ``O(h)``, without the predictor's field call. It changes only where the
iteration starts: every step is solved to the same tolerance, so a rollout differs from a chain of
fresh single steps by at most the solver tolerance, and is itself reproducible.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import torch
from torch import Tensor

from .._errors import ConvergenceError, SymplearnError
from .base import ImplicitIntegrator


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


SOLVERS = ("auto", "newton", "fixed-point")
JACOBIANS = ("auto", "autodiff", "finite-difference")

#: ``solver="auto"`` changes from the fixed point to Newton when the fixed point's measured
#: contraction factor predicts more than this many further iterations: about what a Newton solve
#: (Jacobian, factorisation, 2-10 iterations) costs in fixed-point iterations. Measured on the
#: double pendulum (CPU, 1 thread, Gauss-Legendre 2-6, dt = 0.01-0.03): 3-12 for 64 states,
#: 12-42 for 4096 (torch's batched LU of small matrices loops over the batch), hence 10 below
#: ``AUTO_LARGE_BATCH`` states and 30 from there on.
AUTO_SWITCH_ITERATIONS = (10, 30)
AUTO_LARGE_BATCH = 1024
#: Newton takes the Jacobians again when an iteration shrinks the change by less than this factor
NEWTON_REFRESH_RATE = 0.1
NEWTON_MAX_REFRESH = 2


class GaussLegendre(ImplicitIntegrator):
    """s-stage Gauss-Legendre collocation: order 2s, symplectic, symmetric, implicit.

    Args:
        stages: number of stages s (1 = implicit midpoint, 2 = order 4, 3 = order 6).
        tol: tolerance on the estimated error of the stage states ``dt A K``, relative to the
            size of each state's stage states: the change in one iteration times
            ``theta / (1 - theta)``, ``theta`` the larger of the last two contraction rates (the
            change alone until two are known); a residual that stalls below ``1e3 * eps`` is also
            accepted (round-off). ``None`` picks ``50 * eps`` of the state's dtype. An
            iteration whose residual grows three times in a row raises
            :class:`~symplearn.ConvergenceError` (it does not contract: the step is too large).
        max_iter: iteration limit of each solve.
        solver: ``"fixed-point"`` (``K <- f(z + h A K)``: differentiable through its
            iterations, also in forward mode), ``"newton"`` (simplified Newton, see below) or
            ``"auto"``: the fixed point, changed to Newton when it diverges or would need more
            than ``AUTO_SWITCH_ITERATIONS`` further iterations by its measured contraction
            (Newton is then cheaper; for a step that converges in ~10 fixed-point iterations,
            as the double pendulum at dt = 0.01, the fixed point is 3-4 times cheaper on 4096
            states).
        jacobian: how Newton gets the field's Jacobians at the stage states: ``"autodiff"``
            (``torch.func.vmap(torch.func.jacrev(f))``; a field that ``torch.func`` cannot
            transform raises), ``"finite-difference"`` (forward differences, all perturbed
            states in one batched field call) or ``"auto"`` (= finite differences: they cost
            1.2-5x less than ``torch.func`` on the CPU in every case measured, and the
            Jacobian's accuracy only sets Newton's rate, not its result, which is always the
            solution of the stage equations to ``tol``; finite differences also work for
            fields that ``torch.func`` cannot transform).

    Newton and gradients: the Newton iterations run without autograd; with grad mode on, the
    step ends with one sweep ``K = f(z + h A K*)`` from the converged ``K*`` recorded by autograd,
    whose backward pass solves the adjoint stage equations ``(I - dF/dK)^T y = g`` (implicit
    differentiation, with the same factorisation): reverse-mode gradients equal the fixed
    point's to the solver tolerance. Forward-mode transforms (``torch.func.jvp``) do not see
    that backward pass: use ``solver="fixed-point"`` for them.
    """

    symplectic = True
    time_reversible = True

    def __init__(
        self,
        stages: int = 2,
        *,
        tol: float | None = None,
        max_iter: int = 100,
        solver: str = "auto",
        jacobian: str = "auto",
    ):
        if stages < 1:
            raise SymplearnError(f"Gauss-Legendre needs stages >= 1, got {stages}")
        if solver not in SOLVERS:
            raise SymplearnError(f"unknown solver {solver!r}; valid: {', '.join(SOLVERS)}")
        if jacobian not in JACOBIANS:
            raise SymplearnError(f"unknown jacobian {jacobian!r}; valid: {', '.join(JACOBIANS)}")
        super().__init__(tol=tol, max_iter=max_iter)
        self.stages = stages
        self.solver = solver
        self.jacobian = jacobian
        self.A, self.b, self.c = gauss_legendre_tableau(stages)
        self.order = 2 * stages
        self.name = {1: "implicit-midpoint"}.get(stages, f"gauss-legendre-{2 * stages}")
        #: what the last step did: ``{"solver": "fixed-point" | "newton", "iterations": int,
        #: "jacobian": "autodiff" | "finite-difference" | None}`` (diagnostics and benchmarks)
        self.last_solve: dict = {}
        self._next = None  # (weakref to the last step's result, dynamics, dt, extrapolated K)
        self._extrapolation: Tensor | None = None

    def __repr__(self) -> str:
        opts = "" if self.solver == "auto" else f", solver={self.solver!r}"
        return f"GaussLegendre(stages={self.stages}{opts})"

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
        K0 = self._carried_guess(dynamics, z, dt)
        if K0 is None:
            f0 = f(t, z)
            K0 = f0.unsqueeze(0).expand(s, *f0.shape)  # (s, ..., 2n): explicit-Euler predictor
        solve = _Solve(self, f, t, t_stage, z, dt, adt, A, tol, eps)
        start = K0
        K = None
        if self.solver != "newton":
            K, converged = solve.fixed_point(K0, switch=self.solver == "auto")
            if not converged:
                start = K if K is not None else K0  # a slowly contracting iterate: a better start
                K = None
        if K is None:
            K = solve.newton(start.detach())
        z_next = z + dt * (b @ K.reshape(K.shape[0], -1)).reshape(K.shape[1:])
        self._carry(dynamics, z_next, dt, K)
        return z_next

    def _carry(self, dynamics, z_next: Tensor, dt, K: Tensor) -> None:
        """Keep the extrapolated stage derivatives for a step from ``z_next`` (see the module's
        docstring): only for s >= 2, a scalar step and a state outside autograd (a step recorded
        for gradients always starts from the predictor, so its graph does not depend on the
        previous step's)."""
        self._next = None
        if self.stages < 2 or isinstance(dt, Tensor) or z_next.requires_grad or K.requires_grad:
            return
        E = self._extrapolation
        if E is None or E.dtype != K.dtype or E.device != K.device:
            E = self._extrapolation = torch.as_tensor(
                _extrapolation_matrix(self.c), dtype=K.dtype, device=K.device
            )
        K_next = (E @ K.reshape(K.shape[0], -1)).reshape(K.shape)
        self._next = (weakref.ref(z_next), dynamics, float(dt), K_next)

    def _carried_guess(self, dynamics, z: Tensor, dt) -> Tensor | None:
        """The stage derivatives extrapolated from the previous step when ``z`` is the state that
        step returned (same dynamics, same step), else None."""
        nxt, self._next = self._next, None
        if nxt is None or isinstance(dt, Tensor) or z.requires_grad:
            return None
        ref, dyn, h, K_next = nxt
        if ref() is not z or dyn is not dynamics or h != float(dt):
            return None
        return K_next


class _Solve:
    """The stage equations of one step, and the two ways to solve them."""

    def __init__(self, method: GaussLegendre, f, t, t_stage, z, dt, adt, A, tol, eps):
        self.method, self.f, self.t, self.t_stage = method, f, t, t_stage
        self.z, self.dt, self.adt, self.A, self.tol, self.eps = z, dt, adt, A, tol, eps
        self.tiny = torch.finfo(z.dtype).tiny
        self.zabs = z.detach().abs().amax(dim=-1)
        self._inv_scale: Tensor | None = None  # adt / scale of each state, fixed at the first call
        # one stage and a scalar step (implicit midpoint): Z = z + (dt a) K in one fused op
        self._alpha = float(dt * A[0, 0]) if A.shape[0] == 1 and not isinstance(dt, Tensor) else None
        # several stages and a scalar step: Z = z + (dt A) K as one addmm (a third of the ops)
        self._dtA = dt * A if A.shape[0] > 1 and not isinstance(dt, Tensor) else None
        rows = z[..., 0].numel()
        self.switch_after = AUTO_SWITCH_ITERATIONS[rows >= AUTO_LARGE_BATCH]

    def stage_states(self, K: Tensor, z: Tensor | None = None, dt=None) -> Tensor:
        if z is None and dt is None and self._alpha is not None:
            return torch.add(self.z.unsqueeze(0), K, alpha=self._alpha)
        if z is None and dt is None and self._dtA is not None and K.is_contiguous():
            flat = torch.addmm(self.z.reshape(1, -1), self._dtA, K.reshape(K.shape[0], -1))
            return flat.view(K.shape)
        z = self.z if z is None else z
        dt = self.dt if dt is None else dt
        # (s, s) @ (s, rest): the same products and sums as einsum's, without its permutes
        return z.unsqueeze(0) + dt * (self.A @ K.reshape(K.shape[0], -1)).reshape(K.shape)

    def relative_change(self, dK: Tensor, K: Tensor) -> float:
        """max over the batch of ``dt |dK| / scale``, the scale of a state's stage states being
        ``max(|z|, dt |K|)`` (max-norms; within a factor 2 of ``max_i |Z_i|`` since the rows of
        ``|A|`` sum to at most 1), taken at the first call of the step (the stage derivatives
        move little between iterations; a fixed scale saves a third of the operations of an
        iteration, which is what a small batch's step costs): coordinates near 6e4 (a double
        pendulum rotated 10^4 times) carry round-off of 6e4 eps that no iteration can remove,
        and a state of size 1e-14 must converge relative to itself, not to 1."""
        with torch.no_grad():
            if not dK.numel():
                return 0.0
            if self._inv_scale is None:
                # (reducing over the stages first: torch's reduction over a short last dimension is slow)
                scale = torch.maximum(self.zabs, self.adt * K.detach().abs().amax(dim=0).amax(dim=-1))
                self._inv_scale = self.adt / (scale + self.tiny)
            change = dK.detach().abs().amax(dim=0).amax(dim=-1)  # (batch)
            return float((change * self._inv_scale).max())

    def fixed_point(self, K: Tensor, *, switch: bool) -> tuple[Tensor | None, bool]:
        """``K <- f(t + c h, z + h A K)`` to convergence: ``(K, True)``. With ``switch``,
        ``(K or None, False)`` when Newton should take over: the iteration diverges (None), or
        would need more than ``AUTO_SWITCH_ITERATIONS`` further iterations at its measured
        contraction factor (K: the last iterate)."""
        m, tol, eps = self.method, self.tol, self.eps
        residual = previous = math.inf
        rising, rate = 0, math.inf
        for it in range(m.max_iter):
            Z = self.stage_states(K)
            K_new = self.f(self.t_stage, Z)
            residual = self.relative_change(K_new - K, K_new)
            K = K_new
            if not math.isfinite(residual):
                if switch:
                    return None, False
                break
            last_rate = rate
            error, rate = _error_estimate(residual, previous, last_rate)
            # converged; or stalled at the round-off floor (fields with large terms that cancel)
            if error <= tol or (residual <= 1e3 * eps and residual >= previous):
                m.last_solve = {"solver": "fixed-point", "iterations": it + 1, "jacobian": None}
                return K, True
            # a fixed-point iteration that does not contract (h L ||A|| >= 1) never converges:
            # stop at once rather than return or iterate on a diverging sequence
            rising = rising + 1 if residual >= previous else 0
            target = _error_target(tol, rate, last_rate)  # the change the stop needs
            slow = it >= 2 and _predicted(residual, previous, target) > self.switch_after
            if switch and (rising >= 2 or slow):
                return (None if rising else K), False
            if rising >= 3:
                raise ConvergenceError(
                    f"{m.name}: the stage iteration diverges at t={_fmt(self.t)} (dt={_fmt(self.dt)}, "
                    f"relative residual {residual:.3g} grew for {rising} iterations, iteration {it + 1}); "
                    f"the step is too large for this field: try a smaller dt or solver='newton'"
                )
            previous = residual
        if switch:
            return None, False
        raise ConvergenceError(
            f"{m.name}: the stage equations did not converge at t={_fmt(self.t)} (dt={_fmt(self.dt)}, "
            f"relative residual {residual:.3g} > tol {tol:.3g} after {m.max_iter} iterations); try a "
            f"smaller dt, a larger max_iter or solver='newton'"
        )

    def jacobian(self, Z: Tensor, F: Tensor) -> tuple[Tensor, str]:
        """The field's Jacobians ``(s, ..., d, d)`` at the stage states ``Z: (s, ..., d)``
        (detached), where it takes the values ``F``."""
        m, f = self.method, self.f
        d = Z.shape[-1]
        t_rows = torch.broadcast_to(torch.as_tensor(self.t_stage, dtype=Z.dtype), Z.shape[:-1])
        if m.jacobian == "autodiff":
            try:
                jac = torch.func.vmap(torch.func.jacrev(lambda x, tt: f(tt, x)))
                J = jac(Z.reshape(-1, d), t_rows.reshape(-1)).reshape(*Z.shape, d)
                if bool(torch.isfinite(J).all()):
                    return J, "autodiff"
            except Exception as exc:  # noqa: BLE001 - any failure of the transform
                raise SymplearnError(
                    f"{m.name}: torch.func cannot differentiate this vector field ({exc}); use "
                    f"jacobian='finite-difference' or 'auto'"
                ) from None
            raise ConvergenceError(
                f"{m.name}: the field's Jacobian by torch.func is not finite at t={_fmt(self.t)}"
            )
        # forward differences, all d perturbed states in one call: an error of ~sqrt(eps) only
        # slows Newton down by that much per iteration (the iteration solves the exact equations)
        h = math.sqrt(self.eps) * torch.clamp(Z.abs(), min=1.0)  # (s, ..., d)
        X = Z.unsqueeze(0) + torch.diag_embed(h).movedim(-2, 0)  # X[k] = Z + h_k e_k: (d, s, ..., d)
        hk = torch.diagonal(X - Z.unsqueeze(0), dim1=0, dim2=-1)  # the steps really taken, (s, ..., d)
        Fk = f(self.t_stage, X)  # (d, s, ..., d)
        J = ((Fk - F.unsqueeze(0)) / hk.movedim(-1, 0).unsqueeze(-1)).movedim(0, -1)  # (s, ..., a, k)
        return J, "finite-difference"

    def newton(self, K: Tensor) -> Tensor:
        """Simplified Newton from ``K``: with the field's Jacobians ``J_i`` at the current stage
        states, ``M = [delta_ij I - h a_ij J_i]`` (``I - h A kron J`` when all ``J_i`` agree) is
        factorised; then ``M dK = f(z + h A K) - K``, ``K += dK`` until the change is below
        ``tol``. Taking each stage's own Jacobian (rather than the start state's) makes the
        contraction factor ``O(h |d^2 f| |K - K*|)`` instead of ``O(h^2 |d^2 f| |f|)``; when an
        iteration contracts by less than ``NEWTON_REFRESH_RATE`` (a poor start), the Jacobians
        are taken again at the current stage states (at most ``NEWTON_MAX_REFRESH`` times)."""
        m, tol, eps = self.method, self.tol, self.eps
        s = m.stages
        zd = self.z.detach()
        dtd = self.dt.detach() if isinstance(self.dt, Tensor) else self.dt
        batch, d = zd.shape[:-1], zd.shape[-1]
        dtrow = dtd[..., 0] if isinstance(dtd, Tensor) else torch.as_tensor(dtd, dtype=zd.dtype)
        eye = torch.eye(s * d, dtype=zd.dtype, device=zd.device)

        jmax = [0.0]  # the largest |J| entry seen (for the divergence message)

        def factorise(Z: Tensor, F: Tensor) -> tuple[Tensor, Tensor, str]:
            J, how = self.jacobian(Z, F)
            jmax[0] = max(jmax[0], float(J.detach().abs().amax())) if J.numel() else jmax[0]
            # M[..., i, a, j, k] = delta_ij delta_ak - dt a_ij J_i[..., a, k]
            kron = self.A[:, None, :, None] * J.movedim(0, -3)[..., :, :, None, :]
            M = eye - dtrow[..., None, None] * kron.reshape(*batch, s * d, s * d)
            LU, piv, info = torch.linalg.lu_factor_ex(M)
            if bool((info != 0).any()):
                raise ConvergenceError(
                    f"{m.name}: the Newton matrix I - dt (A kron J) is singular at t={_fmt(self.t)} "
                    f"(dt={_fmt(self.dt)}); try a smaller dt"
                )
            return LU, piv, how

        with torch.no_grad():
            residual = previous = rate = math.inf
            rising, refreshed, converged, refresh = 0, 0, False, True
            for it in range(m.max_iter):
                Z = self.stage_states(K, zd, dtd)
                F = self.f(self.t_stage, Z)
                if refresh:
                    LU, piv, how = factorise(Z, F)
                    refresh, previous, rate = False, math.inf, math.inf
                dK = _lu_apply(LU, piv, F - K, s, d)  # (s, ..., d)
                K = K + dK
                residual = self.relative_change(dK, K)
                if not math.isfinite(residual):
                    break
                error, rate = _error_estimate(residual, previous, rate)
                if error <= tol or (residual <= 1e3 * eps and residual >= previous):
                    m.last_solve = {"solver": "newton", "iterations": it + 1, "jacobian": how}
                    converged = True
                    break
                if residual > NEWTON_REFRESH_RATE * previous and refreshed < NEWTON_MAX_REFRESH:
                    refresh, refreshed = True, refreshed + 1
                    continue
                rising = rising + 1 if residual >= previous else 0
                if rising >= 3:
                    raise ConvergenceError(
                        f"{m.name}: the Newton iteration diverges at t={_fmt(self.t)} (dt={_fmt(self.dt)}, "
                        f"relative residual {residual:.3g} grew for {rising} iterations, iteration "
                        f"{it + 1}): the step may be too large for this field; {_steep_hint(jmax[0], dtd)}"
                    )
                previous = residual
        if converged:
            return self._differentiable(K, LU, piv)  # outside no_grad
        raise ConvergenceError(
            f"{m.name}: the Newton iteration did not converge at t={_fmt(self.t)} (dt={_fmt(self.dt)}, "
            f"relative residual {residual:.3g} > tol {tol:.3g} after {m.max_iter} iterations); "
            f"{_steep_hint(jmax[0], dtd, 'or a larger max_iter')}"
        )

    def _differentiable(self, K: Tensor, LU: Tensor, piv: Tensor) -> Tensor:
        """With grad mode on: one sweep ``f(z + h A K)`` from the converged K, recorded by
        autograd, whose gradient is corrected by implicit differentiation in a backward hook."""
        if not torch.is_grad_enabled():
            return K
        K_star = K.detach()
        K1 = self.f(self.t_stage, self.stage_states(K_star))
        if not K1.requires_grad:  # nothing upstream needs a gradient
            return K1
        m, s, d = self.method, self.method.stages, K.shape[-1]
        f, t_stage, tol = self.f, self.t_stage, self.tol
        zd = self.z.detach()
        dtd = self.dt.detach() if isinstance(self.dt, Tensor) else self.dt
        stage_states, name, t = self.stage_states, m.name, self.t

        def adjoint(g: Tensor) -> Tensor:
            # dK = (I - dF/dK)^-1 (dF/dz dz + dF/dtheta dtheta): the incoming gradient g becomes
            # y solving y = g + (dF/dK)^T y, by Newton with the forward pass's factorisation
            if not bool(g.any()):
                return g
            with torch.enable_grad():
                Kd = K_star.clone().requires_grad_(True)
                F = f(t_stage, stage_states(Kd, zd, dtd))
            y = g
            for _ in range(4 * m.max_iter):
                (vjp,) = torch.autograd.grad(F, Kd, y, retain_graph=True)
                dy = _lu_apply(LU, piv, g + vjp - y, s, d, adjoint=True)
                y = y + dy
                if float(dy.abs().max()) <= tol * float(y.abs().max()):
                    return y
            raise ConvergenceError(
                f"{name}: the adjoint stage equations of the Newton step at t={_fmt(t)} did not "
                f"converge in the backward pass; use solver='fixed-point'"
            )

        K1.register_hook(adjoint)
        return K1


def _extrapolation_matrix(c: np.ndarray) -> np.ndarray:
    """``E (s, s)`` with ``E[i, j] = l_j(1 + c_i)``, ``l_j`` the Lagrange basis on the nodes c:
    the polynomial through ``(c_j, K_j)`` evaluated one step ahead at ``1 + c_i``."""
    s = len(c)
    E = np.ones((s, s))
    for i in range(s):
        x = 1.0 + c[i]
        for j in range(s):
            for m in range(s):
                if m != j:
                    E[i, j] *= (x - c[m]) / (c[j] - c[m])
    return E


def _lu_apply(LU: Tensor, piv: Tensor, R: Tensor, s: int, d: int, adjoint: bool = False) -> Tensor:
    """Solve with the factorised ``(..., s d, s d)`` matrix for stage vectors ``R: (s, ..., d)``."""
    batch = R.shape[1:-1]
    r = R.movedim(0, -2).reshape(*batch, s * d, 1)
    x = torch.linalg.lu_solve(LU, piv, r, adjoint=adjoint)
    return x.reshape(*batch, s, d).movedim(-2, 0)


def _steep_hint(jmax: float, dt, more: str = "") -> str:
    """What a failed Newton solve suggests: a smaller dt, and how to tell a field that is itself
    singular there (the failure stays at the same t as dt shrinks), with the largest entry of the
    field's Jacobian seen in the solve."""
    h = float(dt.abs().max()) if isinstance(dt, Tensor) else abs(float(dt))
    seen = "|J| not finite"
    if math.isfinite(jmax):
        seen = f"largest |J| seen {jmax:.3g}, dt |J| = {h * jmax:.3g}"
    return (
        f"try a smaller dt{' ' + more if more else ''}. If the failure stays at the same t as dt "
        "shrinks, the field itself is singular or extremely steep there (a learned model: an LNN "
        f"whose d2L/dq_dot2 is nearly singular, a state far from the training data) ({seen})"
    )


def _error_estimate(residual: float, previous: float, last_rate: float) -> tuple[float, float]:
    """``(error, rate)``: the a posteriori bound on the distance of the new iterate to the solution,
    ``theta / (1 - theta) * residual`` for a sequence contracting at the rate ``theta`` (Hairer and
    Wanner, *Solving ODEs II*, IV.8), and this iteration's rate ``residual / previous``.

    ``theta`` is the larger of the last two rates: one ratio alone is not trusted. In the max-norm
    the stage iteration of a mechanical system alternates between its q and p changes, whose
    rates differ by orders of magnitude (about ``h / 2`` and ``omega^2 h / 2``), and a single
    small ratio stopped a step with 1e5 times the tolerance (measured on a slow oscillator).
    Until two rates are known the error is the change itself (the rule before this estimate)."""
    rate = residual / previous if math.isfinite(previous) and previous > 0 else math.inf
    if not (math.isfinite(rate) and math.isfinite(last_rate)):
        return residual, rate
    theta = max(rate, last_rate)
    if theta >= 1.0:
        return math.inf, rate
    return theta / (1.0 - theta) * residual, rate


def _error_target(tol: float, rate: float, last_rate: float) -> float:
    """The change below which :func:`_error_estimate` accepts, ``tol (1 - theta) / theta``, for
    the auto-switch's prediction (``theta`` as there, or this iteration's rate where the last
    one did not contract; ``tol`` where no rate below 1 is known)."""
    theta = max(rate, last_rate)
    if not theta < 1.0:
        theta = rate
    if not (0.0 < theta < 1.0):
        return tol
    return tol * (1.0 - theta) / theta


def _predicted(residual: float, previous: float, tol: float) -> float:
    """Further iterations a linearly converging sequence needs to go from ``residual`` to
    ``tol`` at the contraction factor ``residual / previous`` (inf if it does not contract)."""
    if not (math.isfinite(previous) and previous > 0 and residual > tol):
        return 0.0
    rate = residual / previous
    if rate >= 1.0:
        return math.inf
    if rate <= 0.0:
        return 0.0
    return math.log(tol / residual) / math.log(rate)


def _fmt(x) -> str:
    if isinstance(x, Tensor):
        return f"{float(x.min()):g}" + ("" if x.numel() == 1 else f"..{float(x.max()):g}")
    return f"{x:g}"


class ImplicitMidpoint(GaussLegendre):
    """The implicit midpoint rule ``z' = z + h f((z + z')/2)``: one-stage Gauss-Legendre, order 2.

    Args:
        tol, max_iter, solver, jacobian: as for :class:`GaussLegendre`.
    """

    def __init__(
        self, *, tol: float | None = None, max_iter: int = 100, solver: str = "auto", jacobian: str = "auto"
    ):
        super().__init__(1, tol=tol, max_iter=max_iter, solver=solver, jacobian=jacobian)

    def __repr__(self) -> str:
        return "ImplicitMidpoint()" if self.solver == "auto" else f"ImplicitMidpoint(solver={self.solver!r})"
