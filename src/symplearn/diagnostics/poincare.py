"""Poincare sections: the states where trajectories cross a hyperplane ``z[index] = value`` in a
chosen direction, located to the integrator's accuracy."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from ._common import check_int, check_states, dynamics_dim, stepper

__all__ = ["PoincareSection", "poincare_section"]


@dataclass(frozen=True)
class PoincareSection:
    """Crossings of the hyperplane ``z[index] = value`` (see :func:`poincare_section`).

    Attributes:
        t: ``(N,)`` crossing times.
        z: ``(N, 2n)`` states at the crossings.
        traj: ``(N,)`` index of the trajectory (row of ``z0``) of each crossing. Crossings are
            sorted by trajectory, then time.
        index, value, direction: the section.
        method: ``"newton"`` (continuous dynamics: partial integrator steps) or
            ``"cubic-interpolation"`` (flow maps).
    """

    t: Tensor
    z: Tensor
    traj: Tensor
    index: int
    value: float
    direction: int
    method: str

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def default_coords(self) -> tuple[int, int]:
        """The two coordinates to draw: for two degrees of freedom and a section of a position
        ``q_i``, the other degree of freedom's ``(q_j, p_j)``; for one degree of freedom, p."""
        d = self.z.shape[-1]
        n = d // 2
        if n == 2:
            j = 1 - (self.index % n)
            return j, n + j
        if n == 1:
            return 0, 1
        raise SymplearnError(f"give coords=(i, j) explicitly for states with n = {n} degrees of freedom")

    def points(self, coords: tuple[int, int] | None = None) -> Tensor:
        """``(N, 2)`` two coordinates of the crossings, e.g. ``(y, p_y)`` for Henon-Heiles cut at
        ``x = 0``; ready for :func:`~symplearn.plotting.poincare_figure`."""
        i, j = self.default_coords() if coords is None else coords
        d = self.z.shape[-1]
        for c in (i, j):
            if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < d:
                raise SymplearnError(f"coords must be two integers in [0, {d}), got {coords!r}")
        return self.z[:, [i, j]]

    def of_trajectory(self, b: int) -> PoincareSection:
        """The crossings of trajectory ``b`` only."""
        m = self.traj == b
        return PoincareSection(
            self.t[m], self.z[m], self.traj[m], self.index, self.value, self.direction, self.method
        )

    def as_dict(self) -> dict[str, Any]:
        """Summary as plain Python values (JSON-able)."""
        return {
            "n_crossings": len(self),
            "index": self.index,
            "value": self.value,
            "direction": self.direction,
            "method": self.method,
        }


def _crossed(s0: Tensor, s1: Tensor, direction: int) -> Tensor:
    up = (s0 < 0) & (s1 >= 0)
    down = (s0 > 0) & (s1 <= 0)
    return up if direction == 1 else down if direction == -1 else up | down


def _bisect(poly: Callable[[Tensor], Tensor], s0: Tensor, n_iter: int = 60) -> Tensor:
    """Root in [0, 1] of ``poly`` (vectorised) with ``sign(poly(0)) = sign(s0)`` and a sign
    change (or a zero) at 1."""
    lo = torch.zeros_like(s0)
    hi = torch.ones_like(s0)
    sgn = torch.sign(s0)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        same = torch.sign(poly(mid)) == sgn
        lo = torch.where(same, mid, lo)
        hi = torch.where(same, hi, mid)
    return 0.5 * (lo + hi)


def _lagrange_weights(nodes: Tensor, x: Tensor) -> Tensor:
    """Lagrange basis ``(C, m)`` on ``nodes (m,)`` at ``x (C,)``."""
    m = nodes.shape[0]
    w = torch.ones(x.shape[0], m, dtype=x.dtype)
    for j in range(m):
        for k in range(m):
            if k != j:
                w[:, j] = w[:, j] * (x - nodes[k]) / (nodes[j] - nodes[k])
    return w


def poincare_section(
    flow: Any,
    z0: Any,
    n_steps: int,
    *,
    t0: float = 0.0,
    index: int = 0,
    value: float = 0.0,
    direction: int = 1,
) -> PoincareSection:
    """Crossings of the hyperplane ``z[index] = value`` by trajectories from ``z0``.

    Each step that crosses the hyperplane is located in two stages. A Hermite cubic in time for
    ``z[index]``, built from the states and vector field at both ends of the step, gives a first
    crossing time ``t_k + tau``; Newton's method then solves ``Phi_tau(z_k)[index] = value`` for
    the partial step ``Phi_tau`` of the *integrator itself* (derivative ``d/dtau`` taken as the
    vector field at ``Phi_tau(z_k)``), until the residual is at round-off level. The crossing
    state is ``Phi_tau(z_k)``: it carries the integrator's own accuracy (its energy error, its
    phase error), with no interpolation error on top. Flow maps, which have no partial step,
    use cubic Lagrange interpolation through the four surrounding states (error O(dt^4)).

    A trajectory that starts exactly on the hyperplane is not counted at t = 0.

    Args:
        flow: a :class:`~symplearn.FlowMap`: ``symplearn.discretize(dynamics, integrator, dt)``
            or a learned flow map.
        z0: ``(B, 2n)`` initial states (or ``(2n,)``).
        n_steps: number of steps.
        t0: initial time.
        index: the coordinate cut, ``0 <= index < 2n`` (positions first).
        value: the hyperplane's position.
        direction: ``+1`` crossings with ``z[index]`` increasing, ``-1`` decreasing, ``0`` both.

    Returns:
        :class:`PoincareSection` with ``t (N,)``, ``z (N, 2n)``, ``traj (N,)``.

    Raises:
        SymplearnError: bad arguments.
        NonFiniteError: a state became NaN or infinite.
    """
    step, dt, partial = stepper(flow, "poincare_section")
    z = check_states(z0, "z0", dynamics_dim(flow))
    if z.ndim > 2:
        raise SymplearnError(f"z0 must have shape (B, 2n) or (2n,), got {tuple(z.shape)}")
    z = z.reshape(-1, z.shape[-1])
    d = z.shape[-1]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < d:
        raise SymplearnError(
            f"index must be an integer in [0, {d}) (the coordinate of the hyperplane; q's then p's), "
            f"got {index!r}"
        )
    if direction not in (-1, 0, 1) or isinstance(direction, bool):
        raise SymplearnError(f"direction must be +1, -1 or 0 (both), got {direction!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SymplearnError(f"value must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise SymplearnError(f"value must be finite, got {value!r}")
    n_steps = check_int("n_steps", n_steps)
    B = z.shape[0]
    eps = torch.finfo(z.dtype).eps
    rows = torch.arange(B)

    found_t: list[Tensor] = []
    found_z: list[Tensor] = []
    found_b: list[Tensor] = []

    if partial is not None:
        dyn = flow.dynamics
        batch_tau = [True]

        def partial_step(zp: Tensor, tau: Tensor, t_prev: float) -> Tensor:
            if batch_tau[0]:
                try:
                    out = partial(t_prev, zp, tau[:, None])
                    if isinstance(out, Tensor) and out.shape == zp.shape:
                        return out
                except Exception:  # noqa: BLE001 - a step that needs a Python float dt
                    pass
                batch_tau[0] = False
            return torch.cat([partial(t_prev, zp[i : i + 1], float(tau[i])) for i in range(zp.shape[0])], 0)

        def locate(zp: Tensor, zn: Tensor, t_prev: float) -> tuple[Tensor, Tensor]:
            s0, s1 = zp[:, index] - value, zn[:, index] - value
            f0 = dyn.vector_field(t_prev, zp)[:, index] * dt
            f1 = dyn.vector_field(t_prev + dt, zn)[:, index] * dt

            def hermite(th: Tensor) -> Tensor:
                th2, th3 = th * th, th * th * th
                return (
                    (2 * th3 - 3 * th2 + 1) * s0
                    + (th3 - 2 * th2 + th) * f0
                    + (-2 * th3 + 3 * th2) * s1
                    + (th3 - th2) * f1
                )

            tau = _bisect(hermite, s0) * dt
            scale = max(1.0, abs(value), float(zp[:, index].abs().max()), float(zn[:, index].abs().max()))
            tol = 8.0 * eps * scale
            zt = partial_step(zp, tau, t_prev)
            best_tau, best_z = tau.clone(), zt.clone()
            best_r = (zt[:, index] - value).abs()
            for _ in range(12):
                if bool((best_r <= tol).all()):
                    break
                r = zt[:, index] - value
                ft = dyn.vector_field(t_prev + tau, zt)[:, index]
                safe = torch.where(ft.abs() > 0, ft, torch.ones_like(ft))
                tau = torch.clamp(tau - torch.where(ft.abs() > 0, r / safe, torch.zeros_like(r)), 0.0, dt)
                zt = partial_step(zp, tau, t_prev)
                rn = (zt[:, index] - value).abs()
                better = rn < best_r
                best_tau = torch.where(better, tau, best_tau)
                best_z = torch.where(better[:, None], zt, best_z)
                best_r = torch.where(better, rn, best_r)
            return t_prev + best_tau, best_z

        with torch.no_grad():
            s_prev = z[:, index] - value
            for k in range(1, n_steps + 1):
                zn = step(t0 + (k - 1) * dt, z)
                if k % 100 == 0 or k == n_steps:
                    if not bool(torch.isfinite(zn).all()):
                        raise NonFiniteError(
                            f"poincare_section: the state became NaN or infinite by step {k} "
                            f"(t={k * dt:g}); try a smaller dt"
                        )
                s_new = zn[:, index] - value
                m = _crossed(s_prev, s_new, direction)
                if bool(m.any()):
                    tc, zc = locate(z[m], zn[m], t0 + (k - 1) * dt)
                    found_t.append(tc)
                    found_z.append(zc)
                    found_b.append(rows[m])
                z, s_prev = zn, s_new
        method = "newton"
    else:
        hist: deque[Tensor] = deque(maxlen=4)  # the last states, hist[-1] = z_k
        pending: list[tuple[int, Tensor]] = []  # (j, mask): crossing between states j-1 and j

        def resolve(j: int, mask: Tensor, k_last: int) -> None:
            # states available: k_last - len(hist) + 1 .. k_last
            first = k_last - len(hist) + 1
            lo_i, hi_i = max(first, j - 2), min(k_last, j + 1)
            states = torch.stack([hist[i - first][mask] for i in range(lo_i, hi_i + 1)], 1)  # (C, m, d)
            nodes = torch.arange(lo_i, hi_i + 1, dtype=z.dtype) - (j - 1)
            s0 = states[:, j - 1 - lo_i, index] - value

            def coord(th: Tensor) -> Tensor:
                return (_lagrange_weights(nodes, th) * states[:, :, index]).sum(1) - value

            th = _bisect(coord, s0)
            w = _lagrange_weights(nodes, th)
            found_t.append(t0 + (j - 1 + th) * dt)
            found_z.append((w[:, :, None] * states).sum(1))
            found_b.append(rows[mask])

        with torch.no_grad():
            hist.append(z)
            s_prev = z[:, index] - value
            for k in range(1, n_steps + 1):
                zn = step(t0 + (k - 1) * dt, z)
                if not bool(torch.isfinite(zn).all()):
                    raise NonFiniteError(
                        f"poincare_section: the state became NaN or infinite at step {k} (t={k * dt:g})"
                    )
                hist.append(zn)
                s_new = zn[:, index] - value
                for j, mask in [p for p in pending if p[0] == k - 1]:
                    resolve(j, mask, k)
                pending = [p for p in pending if p[0] != k - 1]
                m = _crossed(s_prev, s_new, direction)
                if bool(m.any()):
                    pending.append((k, m))
                z, s_prev = zn, s_new
            for j, mask in pending:
                resolve(j, mask, n_steps)
        method = "cubic-interpolation"

    if found_t:
        t = torch.cat(found_t).to(z.dtype)
        zc = torch.cat(found_z).to(z.dtype)
        b = torch.cat(found_b)
        order = torch.argsort(t, stable=True)
        order = order[torch.argsort(b[order], stable=True)]
        t, zc, b = t[order], zc[order], b[order]
    else:
        t = torch.zeros(0, dtype=z.dtype)
        zc = torch.zeros(0, d, dtype=z.dtype)
        b = torch.zeros(0, dtype=torch.long)
    return PoincareSection(
        t=t, z=zc.detach(), traj=b, index=index, value=value, direction=direction, method=method
    )
