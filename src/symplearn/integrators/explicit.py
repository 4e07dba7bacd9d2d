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

    def step(self, dynamics, z: Tensor, dt: float, *, step_index: int = 0) -> Tensor:
        return z + dt * dynamics.vector_field(z)


class RK4(Integrator):
    """Classical fourth-order Runge-Kutta. Order 4, not symplectic."""

    name = "rk4"
    order = 4

    def step(self, dynamics, z: Tensor, dt: float, *, step_index: int = 0) -> Tensor:
        # fused multiply-adds (torch.add with alpha): fewer tensor ops per step, which is what
        # limits small-network rollouts on CPU
        f = dynamics.vector_field
        k1 = f(z)
        k2 = f(torch.add(z, k1, alpha=0.5 * dt))
        k3 = f(torch.add(z, k2, alpha=0.5 * dt))
        k4 = f(torch.add(z, k3, alpha=dt))
        s = torch.add(k1, k4).add_(k2, alpha=2.0).add_(k3, alpha=2.0)
        return torch.add(z, s, alpha=dt / 6.0)
