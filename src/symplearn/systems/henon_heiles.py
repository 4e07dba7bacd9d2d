"""The Henon-Heiles system: two coupled oscillators with a cubic coupling."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import SeparableHamiltonian, join, split
from .base import System

SQRT3 = math.sqrt(3.0)


class HenonHeiles(System, SeparableHamiltonian):
    """Henon-Heiles, ``q = (x, y)``, ``p = (p_x, p_y)``, coupling strength ``lam`` (lambda):

        H = (p_x^2 + p_y^2) / 2 + (x^2 + y^2) / 2 + lam (x^2 y - y^3 / 3),
        L = |q_dot|^2 / 2 - V(q).

    The parameter is named ``lam`` because ``lambda`` is a Python keyword. Separable. Conserved:
    the energy only; the motion is mostly regular at low energy and largely chaotic as E
    approaches the escape energy ``E_esc = 1 / (6 lam^2)``, the height of the three saddles
    ``(0, 1/lam)`` and ``(+-sqrt(3)/(2 lam), -1/(2 lam))``. Above it, orbits can escape to
    infinity.

    Sampling: energies in ``energy_range``, which must lie below ``E_esc`` (default
    ``(0.3, 0.75) E_esc = (0.05, 0.125)`` for ``lam = 1``); positions uniform in the part of
    the **bounded well** where ``V < E``, i.e. inside the triangle spanned by the three saddles
    (``V < E`` alone would also accept points in the unbounded outer regions); a uniformly
    random momentum direction with ``|p| = sqrt(2 (E - V))``.
    """

    name = "henon-heiles"
    n_dof = 2
    has_lagrangian = True
    PARAMS = {"lam": 1.0}

    def _validate(self) -> None:
        if self.lam <= 0:
            raise SymplearnError(
                f"lam of henon-heiles must be > 0 (lam < 0 is the mirror image y -> -y), got lam={self.lam:g}"
            )

    @property
    def escape_energy(self) -> float:
        """Height of the saddles, ``1 / (6 lam^2)``: bounded motion needs ``E`` below it."""
        return 1.0 / (6.0 * self.lam**2)

    @property
    def ENERGY_RANGE(self) -> tuple[float, float]:  # a class constant in simpler systems
        """Default sampling range ``(0.3, 0.75) E_esc``."""
        return (0.3 * self.escape_energy, 0.75 * self.escape_energy)

    @property
    def Q_BOX(self) -> float:  # a class constant in simpler systems
        """The saddle triangle lies in ``[-1/lam, 1/lam]^2``."""
        return 1.0 / self.lam

    def potential(self, q: Tensor) -> Tensor:
        """``V(q)``. Args: q: ``(..., 2)``. Returns ``(...)``."""
        x, y = q[..., 0], q[..., 1]
        return 0.5 * (x**2 + y**2) + self.lam * (x**2 * y - y**3 / 3.0)

    def in_well(self, q: Tensor) -> Tensor:
        """Whether positions lie strictly inside the saddle triangle (the bounded well).

        Args:
            q: ``(..., 2)``.

        Returns:
            bool ``(...)``.
        """
        x, y = q[..., 0], q[..., 1]
        c = 1.0 / self.lam
        return (y > -0.5 * c) & (y < c + SQRT3 * x) & (y < c - SQRT3 * x)

    def _admissible(self, q: Tensor) -> Tensor:
        return self.in_well(q)

    def _energy_range(self, energy_range):
        lo, hi = super()._energy_range(energy_range)
        if hi >= self.escape_energy:
            raise SymplearnError(
                f"henon-heiles orbits are bounded only below the escape energy "
                f"1/(6 lam^2) = {self.escape_energy:.6g}; got energy_range {(lo, hi)}"
            )
        if lo < 0:
            raise SymplearnError(f"henon-heiles energies in the well are >= 0; got energy_range {(lo, hi)}")
        return lo, hi

    def hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        return 0.5 * (p**2).sum(-1) + self.potential(q)

    def vector_field(self, t, z: Tensor) -> Tensor:
        q, p = split(z)
        return join(p, -self.grad_V(q))

    def grad_T(self, p: Tensor) -> Tensor:
        return p

    def grad_V(self, q: Tensor) -> Tensor:
        x, y = q[..., 0], q[..., 1]
        return torch.stack([x + 2.0 * self.lam * x * y, y + self.lam * (x**2 - y**2)], -1)

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        return 0.5 * (qdot**2).sum(-1) - self.potential(q)

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        return -self.grad_V(q)

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        return qdot.clone()

    def velocities(self, q: Tensor, p: Tensor) -> Tensor:
        return p.clone()
