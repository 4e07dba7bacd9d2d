"""Molecular-dynamics quantities of :class:`~symplearn.systems.particles.ParticleSystem` states.

Library functions of a system and states ``z: (..., 6N)`` (any batch shape, e.g. ``(T, K, 6N)``
for a trajectory of K replicas): kinetic and potential energy, temperature, virial pressure,
total momentum, the radial distribution function g(r) and the mean squared displacement (on
unwrapped positions, which the dynamics keeps). The drivers that produce such states
(:func:`symplearn.md.nve`, :func:`symplearn.md.langevin_baoab`) live in :mod:`symplearn.md`,
which re-exports every name here.

Temperature convention: the kinetic energy of the motion relative to the centre of mass over the
``3N - 3`` degrees of freedom that motion has, ``T = 2 (KE - |P|^2 / 2M) / (3N - 3)`` (LAMMPS
``compute temp/com``). For the states symplearn prepares (fcc + Maxwell-Boltzmann, and Langevin
followed by :func:`symplearn.md.remove_total_momentum`) ``P = 0`` and NVE keeps it, so this is
LAMMPS' default ``2 KE / (3N - 3)``; a state whose centre of mass moves is not read as hotter than
it is. ``temperature(..., frame="lab")`` gives ``2 KE / (3N)`` (all 3N momenta thermal, e.g.
states saved during Langevin dynamics, whose total momentum is a random variable).
Pressure ``P = (2 KE + W) / (3 V)`` with the virial ``W = sum_{i<j} r_ij . f_ij``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..systems.particles import ParticleSystem
from .symmetry import total_momentum as _axis_momentum

__all__ = [
    "FRAMES",
    "centre_of_mass_kinetic_energy",
    "first_peak",
    "kinetic_energy",
    "mean_squared_displacement",
    "potential_energy",
    "pressure",
    "radial_distribution",
    "temperature",
    "thermo",
    "total_momentum",
]


def _check_system(system) -> ParticleSystem:
    if not isinstance(system, ParticleSystem):
        raise SymplearnError(f"expected a ParticleSystem (e.g. LennardJones), got {type(system).__name__}")
    return system


def kinetic_energy(system: ParticleSystem, z: Tensor) -> Tensor:
    """Kinetic energy. Args: z: ``(..., 6N)``. Returns ``(...)``."""
    return _check_system(system).kinetic_energy(z[..., system.n_dof :])


def potential_energy(system: ParticleSystem, z: Tensor) -> Tensor:
    """Potential energy. Args: z: ``(..., 6N)`` (or positions ``(..., 3N)``). Returns ``(...)``."""
    return _check_system(system).potential_energy(z[..., : system.n_dof])


def total_momentum(system: ParticleSystem, z: Tensor) -> Tensor:
    """Total momentum, the three Noether charges of translation
    (:func:`symplearn.diagnostics.symmetry.total_momentum` along each axis).
    Args: z: ``(..., 6N)``. Returns ``(..., 3)``."""
    if z.shape[-1] != 2 * _check_system(system).n_dof:
        raise SymplearnError(f"states must have shape (..., {2 * system.n_dof}) = 6N, got {tuple(z.shape)}")
    return torch.stack([_axis_momentum(z, spatial_dim=3, axis=a) for a in range(3)], -1)


def centre_of_mass_kinetic_energy(system: ParticleSystem, z: Tensor) -> Tensor:
    """Kinetic energy of the centre-of-mass motion ``|P|^2 / (2 M)`` (M the total mass).

    Args: z: ``(..., 6N)``. Returns ``(...)``."""
    P = total_momentum(system, z)
    return 0.5 * (P * P).sum(-1) / system.masses.sum().to(P)


FRAMES = ("com", "lab")


def temperature(system: ParticleSystem, z: Tensor, *, frame: str = "com") -> Tensor:
    """Instantaneous temperature (k_B = 1): ``2 KE_dof / dof`` for the degrees of freedom counted.

    Args:
        z: ``(..., 6N)``.
        frame: ``"com"`` (default): the motion relative to the centre of mass, ``3N - 3`` degrees
            of freedom, ``T = 2 (KE - |P|^2 / 2M) / (3N - 3)`` (LAMMPS ``compute temp/com``; equal
            to LAMMPS' ``2 KE / (3N - 3)`` when the total momentum is zero, as in every state
            symplearn prepares and every NVE run from one). ``"lab"``: all ``3N`` momenta,
            ``T = 2 KE / (3N)``, for states whose total momentum is itself thermal (saved during
            Langevin dynamics, before :func:`symplearn.md.remove_total_momentum`).

    Returns:
        ``(...)``.

    Raises:
        SymplearnError: an unknown frame.
    """
    ke = kinetic_energy(system, z)
    if frame == "com":
        return 2.0 * (ke - centre_of_mass_kinetic_energy(system, z)) / (3 * system.n_particles - 3)
    if frame == "lab":
        return 2.0 * ke / (3 * system.n_particles)
    raise SymplearnError(f"frame must be one of {', '.join(FRAMES)}, got {frame!r}")


def pressure(system: ParticleSystem, z: Tensor, *, virial: Tensor | None = None) -> Tensor:
    """Virial pressure ``(2 KE + W) / (3 V)``.

    Args:
        z: ``(..., 6N)``.
        virial: the virial ``(...)`` if already computed.

    Returns:
        ``(...)`` (no tail correction; see ``system.pair.tail_corrections``).
    """
    if virial is None:
        virial = _check_system(system).compute(z[..., : system.n_dof], energy=False)["virial"]
    return (2.0 * kinetic_energy(system, z) + virial) / (3.0 * system.volume)


def thermo(system: ParticleSystem, z: Tensor) -> dict[str, Tensor]:
    """All scalar quantities at once (one force evaluation).

    Args:
        z: ``(..., 6N)``.

    Returns:
        dict of ``(...)`` tensors: ``ke``, ``pe``, ``energy``, ``temperature`` (centre-of-mass
        frame, see :func:`temperature`), ``pressure``.
    """
    _check_system(system)
    with torch.no_grad():
        c = system.compute(z[..., : system.n_dof])
        ke = kinetic_energy(system, z)
        return {
            "ke": ke,
            "pe": c["energy"],
            "energy": ke + c["energy"],
            "temperature": temperature(system, z),
            "pressure": (2.0 * ke + c["virial"]) / (3.0 * system.volume),
        }


def radial_distribution(
    system: ParticleSystem, z: Tensor, *, n_bins: int = 100, r_max: float | None = None
) -> tuple[Tensor, Tensor]:
    """The radial distribution function g(r), averaged over all states given.

    ``g(r) = <n(r)> / (4 pi r^2 dr rho)`` per particle, with minimum-image distances (exact up to
    ``r_max <= L/2``; histogram shell volumes are exact, ``(4/3) pi (r_{k+1}^3 - r_k^3)``).

    Args:
        z: states ``(..., 6N)`` or positions ``(..., 3N)``; all leading dimensions are averaged.
        n_bins: number of bins on ``[0, r_max]``.
        r_max: largest distance (default and maximum ``L / 2``).

    Returns:
        ``(r, g)``: bin centres ``(n_bins,)`` and g ``(n_bins,)`` (float64).
    """
    _check_system(system)
    L = system.box_length
    r_max = L / 2 if r_max is None else float(r_max)
    if not 0 < r_max <= L / 2 + 1e-12:
        raise SymplearnError(f"r_max must lie in (0, L/2 = {L / 2:.4g}], got {r_max}")
    N = system.n_particles
    x = system.positions(z.detach()).reshape(-1, N, 3).to(torch.float64)
    edges = torch.linspace(0.0, r_max, n_bins + 1, dtype=torch.float64)
    counts = torch.zeros(n_bins, dtype=torch.float64)
    iu = torch.triu_indices(N, N, 1)
    for xs in x.split(max(1, 2_000_000 // (N * N)), 0):  # bounded memory
        dr = xs[:, iu[0]] - xs[:, iu[1]]
        dr = dr - L * torch.round(dr / L)
        r = dr.norm(dim=-1).reshape(-1)
        counts += torch.histc(r[r < r_max], bins=n_bins, min=0.0, max=r_max)
    n_frames = x.shape[0]
    shell = 4.0 / 3.0 * math.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    ideal = shell * system.density * N / 2 * n_frames  # pairs expected in an ideal gas
    return 0.5 * (edges[1:] + edges[:-1]), counts / ideal


def mean_squared_displacement(system: ParticleSystem, z: Tensor, *, remove_drift: bool = True) -> Tensor:
    """Mean squared displacement from the first saved state, on unwrapped positions, in the
    centre-of-mass frame.

    ``d_i(t) = x_i(t) - x_i(0) - (X(t) - X(0))`` with ``X`` the centre of mass (mass-weighted),
    so a drifting centre of mass (a state with non-zero total momentum) adds nothing: a uniform
    translation of every particle has MSD 0.

    Args:
        z: trajectory ``(T, ..., 6N)`` (or positions ``(T, ..., 3N)``) with unwrapped positions
            (as the dynamics produces them; do not wrap before calling).
        remove_drift: subtract the centre-of-mass displacement (default); False: the raw
            ``<|x_i(t) - x_i(0)|^2>``.

    Returns:
        ``(T, ...)``: ``<|d_i(t)|^2>`` averaged over particles.
    """
    x = _check_system(system).positions(z)
    d = x - x[:1]
    if remove_drift:
        m = system.masses.to(d)
        d = d - (m[:, None] * d).sum(-2, keepdim=True) / m.sum()
    return (d**2).sum(-1).mean(-1)


def first_peak(r: Tensor, g: Tensor) -> tuple[float, float]:
    """Position and height of the highest peak of g(r) (parabolic refinement over 3 bins).

    Args:
        r, g: ``(n_bins,)`` from :func:`radial_distribution`.

    Returns:
        ``(r_peak, g_peak)``.
    """
    k = int(torch.argmax(g))
    if 0 < k < len(g) - 1:
        y0, y1, y2 = (float(v) for v in g[k - 1 : k + 2])
        d = y0 - 2 * y1 + y2
        off = 0.5 * (y0 - y2) / d if d != 0 else 0.0
        h = float(r[1] - r[0])
        return float(r[k]) + off * h, y1 - 0.25 * (y0 - y2) * off
    return float(r[k]), float(g[k])
