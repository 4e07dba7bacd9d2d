"""Explicit Runge-Kutta methods: explicit Euler (order 1) and classical RK4 (order 4).

Neither is symplectic: on a Hamiltonian system their energy error grows steadily in time.
"""

from __future__ import annotations

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
        f = dynamics.vector_field
        k1 = f(z)
        k2 = f(z + (0.5 * dt) * k1)
        k3 = f(z + (0.5 * dt) * k2)
        k4 = f(z + dt * k3)
        return z + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
