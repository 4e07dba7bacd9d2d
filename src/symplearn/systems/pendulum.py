"""The simple pendulum."""

from __future__ import annotations

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import SeparableHamiltonian, join, split
from .base import System


class Pendulum(System, SeparableHamiltonian):
    """Simple pendulum ``H = p^2/2 + (g/L)(1 - cos q)`` (unit mass, time scaled so ``p = q_dot``).

    Separable, with ``L = q_dot^2/2 - (g/L)(1 - cos q)``, ``p = q_dot`` and
    ``q_ddot = -(g/L) sin q``. Energies below ``2 g/L`` librate. The default sampling range is
    ``(0.051, 0.51) x 2 g/L`` ((1, 10) at the default g/L = 9.81): swinging, never rotating,
    whatever g and L.
    """

    name = "pendulum"
    n_dof = 1
    has_lagrangian = True
    PARAMS = {"g": 9.81, "L": 1.0}
    ENERGY_RANGE = (1.0, 10.0)

    def _validate(self) -> None:
        if self.g <= 0 or self.L <= 0:
            raise SymplearnError(f"g and L must be > 0, got g={self.g}, L={self.L}")
        scale = (self.g / self.L) / 9.81  # keep the default range below the separatrix 2 g/L
        self.ENERGY_RANGE = (1.0 * scale, 10.0 * scale)

    @property
    def omega0(self) -> float:
        """Small-oscillation angular frequency ``sqrt(g/L)``."""
        return (self.g / self.L) ** 0.5

    def hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        return (0.5 * p**2 + (self.g / self.L) * (1.0 - torch.cos(q))).sum(-1)

    def vector_field(self, t, z: Tensor) -> Tensor:
        q, p = split(z)
        return join(p, -(self.g / self.L) * torch.sin(q))

    def grad_T(self, p: Tensor) -> Tensor:
        return p

    def grad_V(self, q: Tensor) -> Tensor:
        return (self.g / self.L) * torch.sin(q)

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        return (0.5 * qdot**2 - (self.g / self.L) * (1.0 - torch.cos(q))).sum(-1)

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        return -(self.g / self.L) * torch.sin(q)

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        return qdot.clone()

    def velocities(self, q: Tensor, p: Tensor) -> Tensor:
        return p.clone()
