"""Where the geometry runs out: damping and forcing (placeholder, filled below)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from torch import Tensor

from ..dynamics import Dynamics
from ..integrators import get_integrator, integrate


# -- time-carrying integration (the one place that calls integrate) -----------------------------
@functools.cache
def _takes_time(cls: type) -> bool:
    """Whether ``cls.vector_field`` takes ``(t, z)`` (new API) rather than ``(z)`` (old)."""
    params = [p for p in inspect.signature(cls.vector_field).parameters if p != "self"]
    return len(params) >= 2


def call_field(dynamics: Any, t, z: Tensor) -> Tensor:
    """``dynamics.vector_field(t, z)``, or ``vector_field(z)`` for autonomous dynamics written
    against the pre-redesign API (which drop ``t``)."""
    if _takes_time(type(dynamics)):
        return dynamics.vector_field(t, z)
    return dynamics.vector_field(z)


class _Clocked(Dynamics):
    """The autonomous extension ``y = (q, tau, p, s)`` of a time-dependent ``dz/dt = f(t, z)``
    with ``dtau/dt = 1``, ``ds/dt = 0``: every Runge-Kutta method (explicit or Gauss-Legendre)
    integrates ``tau`` exactly and so evaluates ``f`` at its stage times ``t + c_i dt``. Used only
    while the integrators do not carry ``t`` themselves."""

    def __init__(self, dynamics: Any, n_dof: int):
        self.inner = dynamics
        self.n = n_dof
        self.n_dof = n_dof + 1

    def vector_field(self, y: Tensor) -> Tensor:
        n = self.n
        q, tau, p = y[..., :n], y[..., n], y[..., n + 1 : 2 * n + 1]
        f = call_field(self.inner, tau, torch.cat([q, p], -1))
        one = torch.ones_like(tau)[..., None]
        return torch.cat([f[..., :n], one, f[..., n:], torch.zeros_like(one)], -1)


def integrate_t(
    dynamics: Any,
    z0: Tensor,
    dt: float,
    n_steps: int,
    integrator: str = "rk4",
    *,
    t0: float = 0.0,
    save_every: int = 1,
) -> tuple[Tensor, Tensor]:
    """Integrate time-dependent (or autonomous) dynamics from ``z0 (..., 2n)`` at time ``t0``.

    With the redesigned core (``symplearn.dynamics.discretize``) this is
    ``integrate(discretize(dynamics, integrator, dt), z0, n_steps, t0=t0)``; before it, the
    integrators call ``vector_field(z)`` without time, so time is carried as an extra
    coordinate of an autonomous extension (exact for every Runge-Kutta method).

    Args:
        dynamics: anything with ``vector_field(t, z)`` (or the old ``vector_field(z)``).
        z0: initial states ``(..., 2n)``.
        dt: step; n_steps: number of steps; integrator: a Runge-Kutta name (``"rk4"``,
            ``"implicit-midpoint"``, ``"gauss-legendre-4"``, ``"gauss-legendre-6"``, ``"euler"``).
        t0: initial time. save_every: keep every k-th state.

    Returns:
        ``t (T,)`` and ``z (T, ..., 2n)``.
    """
    try:
        from ..dynamics import discretize  # the redesigned core
    except ImportError:
        discretize = None
    if discretize is not None:  # pragma: no cover - after the core rebase
        traj = integrate(discretize(dynamics, integrator, dt), z0, n_steps, save_every=save_every, t0=t0)
        return traj.t, traj.z
    n = z0.shape[-1] // 2
    tau = torch.full((*z0.shape[:-1], 1), float(t0), dtype=z0.dtype, device=z0.device)
    y0 = torch.cat([z0[..., :n], tau, z0[..., n:], torch.zeros_like(tau)], -1)
    traj = integrate(
        _Clocked(dynamics, n), y0, dt, n_steps, get_integrator(integrator), save_every=save_every, t0=t0
    )
    y = traj.z
    return traj.t, torch.cat([y[..., :n], y[..., n + 1 : 2 * n + 1]], -1)
