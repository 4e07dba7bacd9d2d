"""Molecular-dynamics drivers for :class:`~symplearn.systems.particles.ParticleSystem`.

Drivers: :func:`nve` (velocity Verlet through the library's ``integrate``),
:func:`langevin_baoab` (a thermostat for preparing states), :func:`remove_total_momentum` and
:func:`write_thermo_csv` (a LAMMPS-style thermo log). The quantities of states ``z: (..., 6N)``
(kinetic and potential energy, temperature, pressure, total momentum, g(r), mean squared
displacement, :func:`thermo`) live in :mod:`symplearn.diagnostics.md` and are re-exported here,
so ``symplearn.md.temperature`` and the rest keep working; see that module for the temperature
convention (centre-of-mass frame, ``3N - 3`` degrees of freedom).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._alloc import retain_freed_memory
from ._errors import SymplearnError
from .diagnostics.md import (
    FRAMES,
    _check_system,
    centre_of_mass_kinetic_energy,
    first_peak,
    kinetic_energy,
    mean_squared_displacement,
    potential_energy,
    pressure,
    radial_distribution,
    temperature,
    thermo,
    total_momentum,
)
from .systems.particles import ParticleSystem

#: the quantities are re-exported from :mod:`symplearn.diagnostics.md` (``symplearn.md.temperature``)
__all__ = [
    "FRAMES",
    "THERMO_COLUMNS",
    "centre_of_mass_kinetic_energy",
    "first_peak",
    "kinetic_energy",
    "langevin_baoab",
    "mean_squared_displacement",
    "nve",
    "potential_energy",
    "pressure",
    "radial_distribution",
    "remove_total_momentum",
    "retain_freed_memory",
    "temperature",
    "thermo",
    "total_momentum",
    "verlet_flow",
    "write_thermo_csv",
]


# ------------------------------------------------------------------------------------------
# drivers
# ------------------------------------------------------------------------------------------
def remove_total_momentum(system: ParticleSystem, z: Tensor) -> Tensor:
    """The state with the centre-of-mass velocity removed: ``p_i <- p_i - m_i P / M``.

    As LAMMPS ``velocity all zero linear`` (``mom yes``) and ASE ``Stationary`` without
    rescaling: the motion relative to the centre of mass is unchanged, so a canonical state keeps
    its temperature ``2 KE / (3N - 3)`` in expectation. NVE velocity Verlet then conserves
    ``P = 0`` (pair forces sum to zero) and the centre of mass stays put.

    Args: z: ``(..., 6N)``. Returns ``(..., 6N)`` (total momentum zero to round-off)."""
    n, N = _check_system(system).n_dof, system.n_particles
    q, p = z[..., :n], z[..., n:]
    m = system.masses.to(p)
    P = p.reshape(*p.shape[:-1], N, 3).sum(-2, keepdim=True)  # (..., 1, 3)
    p = p.reshape(*p.shape[:-1], N, 3) - m[:, None] * P / m.sum()
    return torch.cat([q, p.reshape(*q.shape)], -1)


def verlet_flow(system: ParticleSystem, dt: float):
    """The velocity-Verlet flow map of ``system`` at step ``dt``: ``discretize(system, "verlet", dt)``."""
    from .integrators.discretize import discretize

    return discretize(_check_system(system), "verlet", dt)


def nve(system: ParticleSystem, z0: Tensor, dt: float, n_steps: int, *, save_every: int = 1):
    """Microcanonical (NVE) velocity-Verlet run: ``integrate(discretize(system, "verlet", dt), ...)``
    under ``torch.no_grad``.

    Args:
        z0: ``(..., 6N)`` (K replicas: ``(K, 6N)``).
        dt: time step (tau).
        n_steps: number of steps.
        save_every: keep every k-th state.

    Returns:
        :class:`~symplearn.integrators.Trajectory` ``(t: (T,), z: (T, ..., 6N))``.
    """
    from .integrators import integrate

    flow = verlet_flow(system, dt)
    with torch.no_grad():
        return integrate(flow, z0, n_steps, save_every=save_every)


def langevin_baoab(
    system: ParticleSystem,
    z0: Tensor,
    dt: float,
    n_steps: int,
    *,
    temperature: float,
    friction: float = 1.0,
    seed: int = 0,
    save_every: int | None = None,
    zero_momentum: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Langevin dynamics with the BAOAB splitting (Leimkuhler & Matthews 2013), to prepare states.

    ``integrate(discretize(system, LangevinBAOAB(temperature, friction, seed), dt), z0, n_steps)``
    (:class:`~symplearn.integrators.langevin.LangevinBAOAB`) under ``torch.no_grad``.
    Per step: ``B`` half kick, ``A`` half drift, ``O`` exact Ornstein-Uhlenbeck
    ``p <- c p + sqrt((1 - c^2) m T) xi`` with ``c = exp(-friction dt)``, ``A``, ``B``.
    Samples the canonical distribution of the potential at ``temperature`` (configurational
    error O(dt^2)).

    Args:
        z0: ``(..., 6N)``.
        dt: time step; n_steps: number of steps.
        temperature: bath temperature (> 0); friction: gamma (1/tau, > 0).
        seed: seed of the private noise generator.
        save_every: also return every k-th state (``None``: only the final state).
        zero_momentum: remove the total momentum of the final state
            (:func:`remove_total_momentum`), which the thermostat leaves random (its noise does
            not conserve momentum): an NVE run from it then has a resting centre of mass and the
            ``3N - 3`` degrees of freedom :func:`temperature` counts. The saved states are
            returned as sampled (their total momentum is thermal: ``temperature(frame="lab")``).

    Returns:
        ``(z_final (..., 6N), saved (T, ..., 6N) or None)``.
    """
    from .integrators import integrate
    from .integrators.discretize import discretize
    from .integrators.langevin import LangevinBAOAB

    _check_system(system)
    flow = discretize(system, LangevinBAOAB(temperature, friction, seed), dt)
    every = save_every or n_steps
    with torch.no_grad():
        traj = integrate(flow, z0, n_steps, save_every=every)
    z = traj.z[-1]
    saved = None
    if save_every:  # the states at steps save_every, 2 save_every, ... (not z0, not a last partial)
        saved = traj.z[1:] if n_steps % save_every == 0 else traj.z[1:-1]
        saved = saved if len(saved) else None
    if zero_momentum:
        z = remove_total_momentum(system, z)
    return z, saved


THERMO_COLUMNS = ("step", "time", "KE", "PE", "E", "T", "P")


def write_thermo_csv(path, system: ParticleSystem, z: Tensor, *, steps, dt: float) -> dict[str, Tensor]:
    """Write a thermo log (like LAMMPS' thermo output) as CSV: step, time, KE, PE, E, T, P.

    Args:
        path: output ``.csv`` file (written atomically).
        z: states ``(T, 6N)`` (one replica).
        steps: step number of each state ``(T,)``.
        dt: time step.

    Returns:
        :func:`thermo` of ``z`` (each ``(T,)``), as written.
    """
    from ._files import write_text

    if z.ndim != 2:
        raise SymplearnError(f"z must be one replica's trajectory (T, 6N), got {tuple(z.shape)}")
    th = thermo(system, z)
    steps = [int(s) for s in steps]
    lines = [",".join(THERMO_COLUMNS)]
    for k, s in enumerate(steps):
        vals = (th["ke"][k], th["pe"][k], th["energy"][k], th["temperature"][k], th["pressure"][k])
        lines.append(f"{s},{s * dt:.10g}," + ",".join(f"{float(v):.12g}" for v in vals))
    write_text(path, "\n".join(lines) + "\n")
    return th
