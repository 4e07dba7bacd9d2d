"""ASE interoperability: a calculator for symplearn pair potentials, Atoms conversion, extended XYZ.

Units: symplearn's reduced units are used as ASE's numbers unchanged (sigma in Angstrom, epsilon
in eV, masses in amu), so one reduced time unit tau is one ASE time unit
(``Angstrom sqrt(amu / eV)``, about 10.18 fs) and ``VelocityVerlet(atoms, timestep=0.005)`` is
symplearn's ``dt = 0.005``.

Example::

    from ase.md.verlet import VelocityVerlet
    from symplearn.ase import SymplearnCalculator, to_atoms
    from symplearn.systems.particles import LennardJones

    system = LennardJones(256)
    atoms = to_atoms(system, system.sample(1)[0])
    atoms.calc = SymplearnCalculator(system)
    VelocityVerlet(atoms, timestep=0.005).run(100)
"""

from __future__ import annotations

import os

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from ._errors import SymplearnError
from .systems.particles import PairPotential, ParticleSystem

__all__ = ["SymplearnCalculator", "from_atoms", "to_atoms", "write_extxyz"]


class SymplearnCalculator(Calculator):
    """An ASE calculator backed by a symplearn particle system or pair potential.

    Args:
        potential: a :class:`~symplearn.systems.particles.ParticleSystem` (its N and box must match
            the Atoms), or a :class:`~symplearn.systems.particles.PairPotential`, from which a
            system is built for each Atoms object (cubic periodic cell, side >= 2 cutoff).
        neighbor: neighbour method for systems built from a pair potential.
        dtype: torch dtype of the evaluation (float64 default).

    ``implemented_properties``: energy, free_energy, forces, stress (the virial part
    ``-sum_{i<j} r_ij (x) f_ij / V``, in ASE's Voigt order, as ASE's own ``LennardJones``). Other
    properties raise ``PropertyNotImplementedError``.

    Raises:
        SymplearnError: a potential of the wrong type, Atoms that are not a cubic periodic box or
            do not match the system.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    nolabel = True

    def __init__(self, potential, *, neighbor: str = "auto", dtype: torch.dtype = torch.float64, **kwargs):
        if not isinstance(potential, (ParticleSystem, PairPotential)):
            raise SymplearnError(
                f"potential must be a ParticleSystem or a PairPotential, got {type(potential).__name__}"
            )
        super().__init__(**kwargs)
        self.potential = potential
        self.neighbor = neighbor
        self.dtype = dtype
        self._system = potential if isinstance(potential, ParticleSystem) else None
        if not getattr(potential, "has_energy", True):  # a direct-force model: forces, no energy
            self.implemented_properties = ["forces", "stress"]

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, *, dtype: torch.dtype = torch.float64, **kwargs
    ) -> SymplearnCalculator:
        """A calculator for the learned potential of a model folder (``symplearn train --data
        frames.extxyz --model potential-conservative``, or the Lennard-Jones experiment's
        ``model_*`` folders), evaluated in ``dtype``. The Atoms must be the model's box (its
        number of atoms and cubic cell). A direct-force model gives forces and stress only
        (``get_potential_energy`` raises ``PropertyNotImplementedError``).

        Raises:
            SymplearnError: the folder does not load (see :func:`symplearn.modelio.load_model`)
                or holds a model that is not a particle potential.
        """
        from .frames import load_potential

        return cls(load_potential(folder, dtype=dtype), dtype=dtype, **kwargs)

    def _system_for(self, atoms: Atoms) -> ParticleSystem:
        L = _cubic_box(atoms)
        n = len(atoms)
        s = self._system
        if isinstance(self.potential, ParticleSystem):
            if n != s.n_particles or abs(L - s.box_length) > 1e-9 * L:
                raise SymplearnError(
                    f"the Atoms ({n} atoms, box {L:.6g}) do not match the system "
                    f"(N={s.n_particles}, box {s.box_length:.6g}); "
                    + (
                        "a learned potential runs in the box it was trained in"
                        if hasattr(s, "config")
                        else "pass a PairPotential instead"
                    )
                )
            return s
        if s is None or s.n_particles != n or s.box_length != L:
            self._system = ParticleSystem(n, L, self.potential, neighbor=self.neighbor)
        return self._system

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        """Compute energy, forces and stress for ``atoms`` (ASE protocol)."""
        properties = properties or ["energy"]
        for p in properties:
            if p not in self.implemented_properties:
                raise PropertyNotImplementedError(f"{p} is not implemented by SymplearnCalculator")
        super().calculate(atoms, properties, system_changes)
        system = self._system_for(self.atoms)
        q = torch.as_tensor(self.atoms.get_positions(), dtype=self.dtype).reshape(-1)
        with torch.no_grad():
            out = system.compute(q, virial=False, virial_tensor=True)
        if "energy" in self.implemented_properties:
            energy = float(out["energy"])
            self.results["energy"] = energy
            self.results["free_energy"] = energy
        self.results["forces"] = out["forces"].reshape(-1, 3).double().numpy()
        w = out["virial_tensor"].double().numpy()
        s = -0.5 * (w + w.T) / self.atoms.get_volume()
        self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def _cubic_box(atoms: Atoms) -> float:
    cell = np.asarray(atoms.get_cell())
    if not all(atoms.pbc):
        raise SymplearnError("symplearn particle systems are periodic in x, y, z; got pbc=" + str(atoms.pbc))
    L = float(cell[0, 0])
    if not np.allclose(cell, L * np.eye(3), rtol=0, atol=1e-12 * max(L, 1.0)):
        raise SymplearnError(f"symplearn particle systems need a cubic cell L * I, got cell {cell.tolist()}")
    return L


def to_atoms(system: ParticleSystem, z: torch.Tensor, *, symbol: str = "Ar", wrap: bool = False) -> Atoms:
    """An ASE Atoms object from one state.

    Args:
        system: the particle system (box and masses).
        z: one state ``(6N,)``.
        symbol: chemical symbol of every particle (masses are set from the system anyway).
        wrap: wrap positions into the box.

    Returns:
        ``Atoms`` with positions, momenta, masses, a cubic periodic cell.
    """
    if z.ndim != 1 or z.shape[0] != 2 * system.n_dof:
        raise SymplearnError(f"z must be one state of shape ({2 * system.n_dof},), got {tuple(z.shape)}")
    x = z[: system.n_dof].detach().double().reshape(-1, 3).numpy()
    p = z[system.n_dof :].detach().double().reshape(-1, 3).numpy()
    atoms = Atoms(
        [symbol] * system.n_particles,
        positions=x,
        cell=np.eye(3) * system.box_length,
        pbc=True,
        masses=system.masses.numpy(),
    )
    atoms.set_momenta(p, apply_constraint=False)
    if wrap:
        atoms.wrap()
    return atoms


def from_atoms(atoms: Atoms, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The state ``z = (q, p)`` of shape ``(6N,)`` of an Atoms object (positions as stored)."""
    q = torch.as_tensor(atoms.get_positions(), dtype=dtype).reshape(-1)
    p = torch.as_tensor(atoms.get_momenta(), dtype=dtype).reshape(-1)
    return torch.cat([q, p])


def write_extxyz(
    path: str | os.PathLike,
    system: ParticleSystem,
    z: torch.Tensor,
    *,
    steps=None,
    dt: float | None = None,
    energies: dict | None = None,
    symbol: str = "Ar",
) -> None:
    """Write a trajectory as extended XYZ through ``ase.io`` (readable by ASE, OVITO, MDAnalysis).

    Positions are wrapped into the box (the unwrapped ones are stored as the per-atom array
    ``unwrapped``); momenta are stored; each frame's info holds ``step``, ``time`` and any
    per-frame ``energies`` given.

    Args:
        path: output file (``.extxyz``).
        system: the particle system.
        z: states ``(T, 6N)``.
        steps: step number of each frame ``(T,)`` (default 0..T-1).
        dt: time step (adds ``time = step * dt``).
        energies: ``{name: (T,) values}`` stored per frame (e.g. ``pe``, ``ke``).
        symbol: chemical symbol written for every particle.
    """
    from ase.io import write

    if z.ndim != 2:
        raise SymplearnError(f"z must be a trajectory of shape (T, 6N), got {tuple(z.shape)}")
    steps = list(range(len(z))) if steps is None else [int(s) for s in steps]
    frames = []
    for k, zk in enumerate(z):
        a = to_atoms(system, zk, symbol=symbol)
        a.set_array("unwrapped", a.get_positions().copy())
        a.wrap()
        a.info["step"] = steps[k]
        if dt is not None:
            a.info["time"] = steps[k] * dt
        for name, values in (energies or {}).items():
            a.info[name] = float(values[k])
        frames.append(a)
    write(os.fspath(path), frames, format="extxyz")
