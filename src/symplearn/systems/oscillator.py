"""The one-dimensional harmonic oscillator."""

from __future__ import annotations

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import SeparableHamiltonian, join, split
from .base import System


class HarmonicOscillator(System, SeparableHamiltonian):
    """Harmonic oscillator ``H = p^2/2 + omega^2 q^2/2`` (unit mass).

    Exact solution ``q(t) = q0 cos(wt) + (p0/w) sin(wt)``, ``p(t) = p0 cos(wt) - w q0 sin(wt)``.
    Separable, with ``L = q_dot^2/2 - omega^2 q^2/2``.
    """

    name = "oscillator"
    n_dof = 1
    has_lagrangian = True
    has_exact_solution = True
    PARAMS = {"omega": 1.0}
    ENERGY_RANGE = (0.2, 1.0)
    Q_BOX = 2.0

    def _validate(self) -> None:
        if self.omega <= 0:
            raise SymplearnError(f"omega must be > 0, got {self.omega}")

    def hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        return (0.5 * p**2 + 0.5 * self.omega**2 * q**2).sum(-1)

    def vector_field(self, t, z: Tensor) -> Tensor:
        q, p = split(z)
        return join(p, -(self.omega**2) * q)

    def grad_T(self, p: Tensor) -> Tensor:
        return p

    def grad_V(self, q: Tensor) -> Tensor:
        return self.omega**2 * q

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        return (0.5 * qdot**2 - 0.5 * self.omega**2 * q**2).sum(-1)

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        return -(self.omega**2) * q

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        return qdot.clone()

    def velocities(self, q: Tensor, p: Tensor) -> Tensor:
        return p.clone()

    def exact_solution(self, z0: Tensor, t: Tensor) -> Tensor:
        """Exact flow. Args: z0: ``(..., 2)``, t: ``(T,)``. Returns ``(T, ..., 2)``."""
        w = self.omega
        q0, p0 = split(z0)
        tt = torch.as_tensor(t).reshape(-1, *([1] * z0.ndim)).to(z0)
        c, s = torch.cos(w * tt), torch.sin(w * tt)
        return join(q0 * c + p0 / w * s, p0 * c - w * q0 * s)
