"""symplearn.ase against ASE's own Lennard-Jones calculator and VelocityVerlet (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.lj import LennardJones as AseLJ
from ase.io import read
from ase.md.verlet import VelocityVerlet

from symplearn import md
from symplearn._errors import SymplearnError
from symplearn.ase import SymplearnCalculator, from_atoms, to_atoms, write_extxyz
from symplearn.systems.particles import LennardJones, LennardJonesPair

torch.set_num_threads(1)


def random_configuration(seed: int, n_cells: int = 3, density: float = 0.6, treatment: str = "shifted"):
    """fcc at a density, each atom displaced uniformly by up to 0.25 sigma per axis, then shifted
    by random whole boxes (wrapped and unwrapped images mixed)."""
    system = LennardJones(
        4 * n_cells**3, density=density, neighbor="all-pairs", cutoff_treatment=treatment, r_onset=2.0
    )
    rng = np.random.default_rng(seed)
    z = system.sample(1)[0].clone()
    n = system.n_dof
    z[:n] += torch.as_tensor(rng.uniform(-0.25, 0.25, n))
    z[:n] += system.box_length * torch.as_tensor(rng.integers(-2, 3, n), dtype=torch.float64)
    return system, z


@pytest.mark.parametrize(
    ("treatment", "ase_kwargs"),
    [("shifted", {"smooth": False}), ("switched", {"smooth": True, "ro": 2.0})],
)
def test_energy_forces_stress_match_ase_lennard_jones(treatment, ase_kwargs):
    pair = LennardJonesPair(sigma=1.0, epsilon=1.0, cutoff=2.5, treatment=treatment, r_onset=2.0)
    for seed in range(3):
        system, z = random_configuration(seed, treatment=treatment)
        atoms = to_atoms(system, z)
        ref = atoms.copy()
        ref.calc = AseLJ(sigma=1.0, epsilon=1.0, rc=2.5, **ase_kwargs)
        atoms.calc = SymplearnCalculator(pair)
        e, e_ref = atoms.get_potential_energy(), ref.get_potential_energy()
        assert abs(e - e_ref) < 1e-10
        assert np.abs(atoms.get_forces() - ref.get_forces()).max() < 1e-10
        assert np.abs(atoms.get_stress() - ref.get_stress()).max() < 1e-10
        assert abs(e - float(md.potential_energy(system, z))) < 1e-10  # the system's own energy


def test_ase_velocity_verlet_tracks_symplearn_verlet():
    system = LennardJones(108, density=0.6, cutoff_treatment="switched", neighbor="all-pairs")
    z0 = system.sample(1, temperature=1.0, seed=2)[0]
    atoms = to_atoms(system, z0)
    atoms.calc = SymplearnCalculator(system)
    dyn = VelocityVerlet(atoms, timestep=0.005)
    ours = md.nve(system, z0, 0.005, 100, save_every=10)
    for k in range(1, 11):
        dyn.run(10)
        diff = (from_atoms(atoms) - ours.z[k]).abs().max()
        assert float(diff) < 1e-10
    # and ASE's own LJ (same potential, smooth cutoff) stays on the same trajectory to round-off
    ref = to_atoms(system, z0)
    ref.calc = AseLJ(sigma=1.0, epsilon=1.0, rc=2.5, ro=2.0, smooth=True)
    VelocityVerlet(ref, timestep=0.005).run(100)
    assert float((from_atoms(ref) - ours.z[-1]).abs().max()) < 1e-8


def test_extxyz_roundtrip_and_errors(tmp_path):
    system, z = random_configuration(0)
    traj = torch.stack([z, z + 0.01])
    path = tmp_path / "trajectory.extxyz"
    write_extxyz(path, system, traj, steps=[0, 10], dt=0.005, energies={"pe": [1.0, 2.0]})
    frames = read(path, index=":")
    assert len(frames) == 2 and frames[1].info["step"] == 10 and frames[1].info["time"] == pytest.approx(0.05)
    # positions come back wrapped, the unwrapped ones as an array (extxyz writes 8 decimals)
    assert np.abs(frames[1].arrays["unwrapped"].reshape(-1) - traj[1, : system.n_dof].numpy()).max() < 1e-8
    pos = frames[0].get_positions()
    assert pos.min() >= 0 and pos.max() < system.box_length
    assert np.abs(frames[0].get_momenta().reshape(-1) - traj[0, system.n_dof :].numpy()).max() < 1e-8
    atoms = to_atoms(system, z)
    atoms.calc = SymplearnCalculator(system)
    with pytest.raises(PropertyNotImplementedError):
        atoms.calc.get_property("magmom", atoms)
    with pytest.raises(SymplearnError, match="do not match"):
        small = to_atoms(LennardJones(32, density=0.2), LennardJones(32, density=0.2).sample(1)[0])
        small.calc = SymplearnCalculator(system)
        small.get_potential_energy()
    with pytest.raises(SymplearnError, match="PairPotential"):
        SymplearnCalculator("lj")
