"""Chaos on energy shells: the largest Lyapunov exponent over an ensemble of microcanonical
initial states, per energy, with its spread and a convergence check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..integrators.discretize import discretize
from ..systems.sampling import microcanonical_sample
from .lyapunov import lyapunov_exponent

__all__ = ["ShellLyapunov", "lyapunov_vs_energy"]


@dataclass(frozen=True)
class ShellLyapunov:
    """Result of :func:`lyapunov_vs_energy`.

    Attributes:
        energy: ``(E,)`` the shells.
        exponents: ``(E, K)`` finite-time exponents of the K microcanonical initial states of each
            shell (1 / time).
        t: the measuring time (after the transient).
        dt: the step.
    """

    energy: Tensor
    exponents: Tensor
    t: float
    dt: float

    @property
    def mean(self) -> Tensor:
        """``(E,)`` ensemble means."""
        return self.exponents.mean(-1)

    def quantile(self, q: float) -> Tensor:
        """``(E,)`` ensemble quantiles (e.g. 0.25, 0.75)."""
        return torch.quantile(self.exponents, q, dim=-1)

    def as_dict(self) -> dict[str, Any]:
        """``{"energy", "mean", "q25", "q75", "t", "dt"}`` as plain Python values."""
        return {
            "energy": self.energy.tolist(),
            "mean": self.mean.tolist(),
            "q25": self.quantile(0.25).tolist(),
            "q75": self.quantile(0.75).tolist(),
            "t": self.t,
            "dt": self.dt,
        }


def lyapunov_vs_energy(
    system: Any,
    energies: Any,
    n_per_energy: int,
    dt: float,
    t_measure: float,
    integrator: Any,
    *,
    t_transient: float = 0.0,
    seed: int = 0,
    renorm_every: int = 10,
) -> ShellLyapunov:
    """Largest Lyapunov exponent on each energy shell over microcanonical initial states.

    ``n_per_energy`` states per shell are drawn by
    :func:`~symplearn.systems.sampling.microcanonical_sample` (seed ``seed + i`` for shell i);
    all shells are integrated in one batch by :func:`~symplearn.diagnostics.lyapunov_exponent`
    (finite-difference tangent). Chaotic shells give exponents that converge like ``1/sqrt(t)``
    per trajectory; regular (quasi-periodic) orbits give ``O(log t / t) -> 0``.

    Args:
        system: a ground-truth system (kinetic energy quadratic in p).
        energies: ``(E,)`` shells, in the system's energy convention.
        n_per_energy: initial states per shell (K).
        dt: step of ``integrator``.
        t_measure: measuring time (``round(t_measure / dt)`` steps).
        integrator: one-step method or its canonical name (e.g. ``"rk4"``).
        t_transient: time run first to align the tangent vectors (not counted).
        seed: seed of the initial states and tangent vectors.
        renorm_every: steps between renormalisations.

    Returns:
        :class:`ShellLyapunov` with ``exponents (E, K)``.

    Raises:
        SymplearnError: bad arguments (see :func:`microcanonical_sample`, :func:`lyapunov_exponent`).
    """
    energy = torch.as_tensor(energies, dtype=torch.float64).reshape(-1)
    if energy.numel() == 0:
        raise SymplearnError("energies is empty: give at least one energy")
    z0 = torch.stack(
        [microcanonical_sample(system, float(e), n_per_energy, seed=seed + i) for i, e in enumerate(energy)]
    )  # (E, K, 2n)
    n_steps = max(1, round(t_measure / dt))
    res = lyapunov_exponent(
        discretize(system, integrator, dt),
        z0.reshape(-1, z0.shape[-1]),
        n_steps,
        renorm_every=renorm_every,
        seed=seed,
        transient=round(t_transient / dt),
    )
    return ShellLyapunov(
        energy=energy, exponents=res.exponent.reshape(len(energy), -1), t=n_steps * dt, dt=float(dt)
    )
