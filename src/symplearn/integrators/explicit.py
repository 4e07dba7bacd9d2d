"""Explicit Runge-Kutta methods: explicit Euler (order 1) and classical RK4 (order 4).

Neither is symplectic: on a Hamiltonian system their energy error grows steadily in time.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Integrator


class Euler(Integrator):
    """Explicit (forward) Euler: ``z' = z + h f(z)``. Order 1, not symplectic."""

    name = "euler"
    order = 1

    def step(self, dynamics, t, z: Tensor, dt) -> Tensor:
        return z + dt * dynamics.vector_field(t, z)


class RK4(Integrator):
    """Classical fourth-order Runge-Kutta. Order 4, not symplectic."""

    name = "rk4"
    order = 4

    def step(self, dynamics, t, z: Tensor, dt) -> Tensor:
        f = dynamics.vector_field
        if isinstance(dt, Tensor):  # one step size per state, (..., 1)
            h = dt[..., 0]  # times broadcast against the batch shape z.shape[:-1]
            k1 = f(t, z)
            k2 = f(t + 0.5 * h, z + 0.5 * dt * k1)
            k3 = f(t + 0.5 * h, z + 0.5 * dt * k2)
            k4 = f(t + h, z + dt * k3)
            return z + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        # fused multiply-adds (torch.add with alpha): fewer tensor ops per step, which is what
        # limits small-network rollouts on CPU
        k1 = f(t, z)
        k2 = f(t + 0.5 * dt, torch.add(z, k1, alpha=0.5 * dt))
        k3 = f(t + 0.5 * dt, torch.add(z, k2, alpha=0.5 * dt))
        k4 = f(t + dt, torch.add(z, k3, alpha=dt))
        s = torch.add(k1, k4).add_(k2, alpha=2.0).add_(k3, alpha=2.0)
        return torch.add(z, s, alpha=dt / 6.0)
