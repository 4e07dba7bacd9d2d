"""Langevin dynamics by the BAOAB splitting (Leimkuhler & Matthews 2013), as an integrator.

The splitting's kick ``B`` (``p -= h/2 dV/dq``) and drift ``A`` (``q += h/2 dT/dp``) are Verlet's
pieces; ``O`` is the exact Ornstein-Uhlenbeck flow of the momenta,
``p <- c p + sqrt((1 - c^2) m T) xi`` with ``c = exp(-gamma h)``, drawn from the integrator's own
seeded generator. So a thermostatted run is ``integrate(discretize(system, LangevinBAOAB(T), dt),
z0, n_steps)``, like every other run (jax-md's ``nvt_langevin`` shares ``momentum_step`` and
``position_step`` with ``nve`` the same way).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import join, split
from ..systems.base import seeded_generator
from .base import SplittingIntegrator


class LangevinBAOAB(SplittingIntegrator):
    """BAOAB Langevin steps at ``temperature`` with friction ``friction`` (1/time).

    Samples the canonical distribution of a separable ``H = p^T M^-1 p / 2 + V(q)`` with a
    diagonal mass matrix M (read once from ``grad_T``: ``M^-1 = grad_T(1)``); configurational
    error O(dt^2). Stochastic: each step draws Gaussian noise from the integrator's generator
    (``seed``), so a run is reproducible from the same integrator state; not symplectic, not
    time-reversible.

    Args:
        temperature: bath temperature (> 0, energy units with k_B = 1).
        friction: gamma (> 0).
        seed: seed of the private noise generator.

    Raises:
        SymplearnError: a non-positive temperature or friction.
    """

    name = "langevin-baoab"
    order = 2

    def __init__(self, temperature: float, friction: float = 1.0, seed: int = 0):
        if not (isinstance(friction, numbers.Real) and friction > 0):
            raise SymplearnError(f"friction must be a positive number, got {friction!r}")
        if not (isinstance(temperature, numbers.Real) and math.isfinite(temperature) and temperature > 0):
            raise SymplearnError(f"temperature must be a positive number, got {temperature!r}")
        self.temperature = float(temperature)
        self.friction = float(friction)
        self.seed = seed
        self.generator = seeded_generator(seed)
        self._masses: dict = {}

    def _mass_and_noise(self, dynamics, p: Tensor, dt: float) -> tuple[Tensor, float, Tensor]:
        key = (id(dynamics), p.shape[-1], p.dtype, p.device, float(dt))
        hit = self._masses.get(key)
        if hit is None:
            ones = torch.ones(p.shape[-1], dtype=torch.float64, device=p.device)
            m = (1.0 / dynamics.grad_T(ones)).to(p)
            c = math.exp(-self.friction * dt)
            hit = self._masses[key] = (m, c, torch.sqrt((1.0 - c * c) * m * self.temperature))
        return hit

    def step(self, dynamics, t, z: Tensor, dt) -> Tensor:
        q, p = split(z)
        m, c, noise = self._mass_and_noise(dynamics, p, dt)
        p = p + 0.5 * dt * -dynamics.grad_V(q)
        q = q + 0.5 * dt * p / m
        xi = torch.randn(p.shape, generator=self.generator, dtype=torch.float64).to(p)
        p = c * p + noise * xi
        q = q + 0.5 * dt * p / m
        p = p + 0.5 * dt * -dynamics.grad_V(q)
        return join(q, p)

    def __repr__(self) -> str:
        return (
            f"LangevinBAOAB(temperature={self.temperature:g}, friction={self.friction:g}, seed={self.seed!r})"
        )
