"""Explicit symplectic methods for separable Hamiltonians ``H = T(p) + V(q)``.

Each is a composition of the exact flows of ``T`` (a drift ``q += h dT/dp``) and ``V``
(a kick ``p -= h dV/dq``); each such shear is symplectic, hence so is the composition.
"""

from __future__ import annotations

from torch import Tensor

from ..dynamics import join, split
from .base import SplittingIntegrator


class SymplecticEuler(SplittingIntegrator):
    """Symplectic Euler (kick then drift): ``p' = p - h V'(q)``, ``q' = q + h T'(p')``.

    Order 1, symplectic, explicit; needs a separable Hamiltonian.
    """

    name = "symplectic-euler"
    order = 1
    symplectic = True

    def step(self, dynamics, t, z: Tensor, dt) -> Tensor:
        q, p = split(z)
        p = p - dt * dynamics.grad_V(q)
        q = q + dt * dynamics.grad_T(p)
        return join(q, p)


def _verlet(dynamics, q: Tensor, p: Tensor, h: float) -> tuple[Tensor, Tensor]:
    p = p - (0.5 * h) * dynamics.grad_V(q)
    q = q + h * dynamics.grad_T(p)
    p = p - (0.5 * h) * dynamics.grad_V(q)
    return q, p


class Verlet(SplittingIntegrator):
    """Stormer-Verlet / velocity Verlet / leapfrog (kick-drift-kick).

    ``p_{1/2} = p - h/2 V'(q)``, ``q' = q + h T'(p_{1/2})``, ``p' = p_{1/2} - h/2 V'(q')``.
    Order 2, symplectic, symmetric (time-reversible); needs a separable Hamiltonian.
    """

    name = "verlet"
    order = 2
    symplectic = True
    time_reversible = True

    def step(self, dynamics, t, z: Tensor, dt) -> Tensor:
        q, p = _verlet(dynamics, *split(z), dt)
        return join(q, p)


class Yoshida4(SplittingIntegrator):
    """Yoshida's fourth-order triple-jump composition of Verlet steps.

    Steps ``w1 h, w0 h, w1 h`` with ``w1 = 1/(2 - 2^(1/3))``, ``w0 = -2^(1/3) w1``.
    Order 4, symplectic, symmetric; needs a separable Hamiltonian.
    """

    name = "yoshida4"
    order = 4
    symplectic = True
    time_reversible = True

    _W1 = 1.0 / (2.0 - 2.0 ** (1.0 / 3.0))
    _W0 = -(2.0 ** (1.0 / 3.0)) * _W1

    def step(self, dynamics, t, z: Tensor, dt) -> Tensor:
        q, p = split(z)
        for w in (self._W1, self._W0, self._W1):
            q, p = _verlet(dynamics, q, p, w * dt)
        return join(q, p)
