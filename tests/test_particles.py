"""Lennard-Jones fluid in a periodic box: lattice energies against LAMMPS, forces, neighbour lists,
NVE energy behaviour of Verlet, the LAMMPS in.lj melt, g(r), NIST reference data (float64).

References (sources in docs/lennard_jones_references.md):
* LAMMPS bench/in.lj log (fcc, density 0.8442, lj/cut 2.5, T0 = 1.44, dt = 0.005, NVE):
  step 0: E_pair = -6.7733681; step 100: Temp = 0.7574531, E_pair = -5.7585055 (32000 atoms);
  the same input with 4000 atoms: Temp = 0.75715334, E_pair = -5.7581426.
* NIST SRSW Lennard-Jones (MC NVT, rc = 3 sigma with long-range corrections), T* = 0.85:
  rho* = 0.776: U/N = -5.5121 (+-4.55e-4), p = 6.7714e-3 (see NIST_T085 below).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch

from symplearn import md
from symplearn._errors import SymplearnError
from symplearn.systems import get_system
from symplearn.systems.particles import (
    LennardJones,
    LennardJonesPair,
    ParticleSystem,
    fcc_lattice,
    maxwell_boltzmann,
)

torch.set_num_threads(1)

LAMMPS_EPAIR0 = -6.7733681  # bench/in.lj log, step 0 (printed to 8 significant digits)
LAMMPS_T100 = 0.7574531  # bench/in.lj log (32000 atoms), step 100
LAMMPS_T100_4000 = 0.75715334  # same input with 4000 atoms
LAMMPS_EPAIR100 = -5.7585055


def lattice_sum(density: float, rc: float, shifted: bool) -> float:
    """Independent fcc lattice sum: 1/2 sum_{R != 0, |R| < rc} u(|R|), u = 4 (r^-12 - r^-6).

    fcc sites are (a/2) (i, j, k) with i + j + k even; no periodic box, no minimum image.
    """
    a = (4.0 / density) ** (1.0 / 3.0)
    m = int(math.ceil(2 * rc / a)) + 1
    total = 0.0
    urc = 4.0 * (rc**-12 - rc**-6)
    for i, j, k in itertools.product(range(-m, m + 1), repeat=3):
        if (i + j + k) % 2 or (i, j, k) == (0, 0, 0):
            continue
        r = 0.5 * a * math.sqrt(i * i + j * j + k * k)
        if r < rc:
            total += 4.0 * (r**-12 - r**-6) - (urc if shifted else 0.0)
    return 0.5 * total


@pytest.mark.parametrize("treatment", ["truncated", "shifted"])
def test_fcc_lattice_energy_matches_lammps_and_lattice_sum(treatment):
    reference = lattice_sum(0.8442, 2.5, shifted=treatment == "shifted")
    for n, neighbor in [(256, "vesin"), (500, "all-pairs")]:
        s = LennardJones(n, cutoff_treatment=treatment, neighbor=neighbor)
        e = float(md.potential_energy(s, s.sample(1)[0])) / n
        assert abs(e - reference) < 1e-10
    if treatment == "truncated":
        assert abs(reference - LAMMPS_EPAIR0) < 1e-6  # LAMMPS prints 8 digits: agreement to 5e-8
        assert abs(reference - LAMMPS_EPAIR0) < 5e-8


def liquid_state(n=108, density=0.8442, temperature=1.2, steps=100, seed=0, **kw):
    """A disordered configuration: fcc + Langevin at a high temperature."""
    s = LennardJones(n, density=density, **kw)
    z0 = s.sample(1, temperature=temperature, seed=seed)[0]
    z, _ = md.langevin_baoab(s, z0, 0.005, steps, temperature=temperature, seed=seed)
    return s, z


@pytest.mark.parametrize("treatment", ["truncated", "shifted", "switched"])
def test_forces_are_minus_gradient(treatment):
    s, z = liquid_state(cutoff_treatment=treatment, steps=60)
    q = z[: s.n_dof].clone()
    forces = s.compute(q)["forces"]
    qg = q.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(s.potential_energy(qg), qg)
    scale = forces.abs().max()
    assert (forces + grad).abs().max() < 1e-12 * scale
    # central finite differences on 12 coordinates, h = 1e-5: truncation error ~ h^2 |V'''| / 6
    gen = torch.Generator().manual_seed(1)
    idx = torch.randperm(s.n_dof, generator=gen)[:12]
    h = 1e-5
    for k in idx:
        e = torch.zeros_like(q)
        e[k] = h
        fd = (s.potential_energy(q + e) - s.potential_energy(q - e)) / (2 * h)
        assert abs(float(fd + forces[k])) < 1e-6 * max(1.0, abs(float(forces[k])))


def test_switched_potential_is_force_continuous_and_matches_jax_md_formula():
    pair = LennardJonesPair(cutoff=2.5, treatment="switched")
    assert pair.r_onset == 2.0  # jax-md lennard_jones_pair: r_onset=2.0, r_cutoff=2.5 (sigma = 1)
    r = torch.tensor([1.5, 2.2, 2.5 - 1e-9, 2.5 + 1e-9], dtype=torch.float64)
    u, f = pair.energy_force(r * r)
    lj = 4 * (r**-12 - r**-6)
    rc2, ro2, x = 6.25, 4.0, r * r
    S = torch.where(r < 2.0, torch.ones_like(r), (rc2 - x) ** 2 * (rc2 + 2 * x - 3 * ro2) / (rc2 - ro2) ** 3)
    S = torch.where(r < 2.5, S, torch.zeros_like(r))
    assert torch.allclose(u, lj * S, rtol=0, atol=1e-15)
    # at rc - 1e-9: u = O(delta^3) (S ~ (rc - r)^2), force = O(delta) -> continuous; zero beyond
    assert abs(float(u[2])) < 1e-15 and abs(float(f[2])) < 1e-8 and float(u[3]) == float(f[3]) == 0.0
    rr = torch.tensor([2.2], dtype=torch.float64, requires_grad=True)
    (du,) = torch.autograd.grad(pair.energy(rr).sum(), rr)
    assert abs(float(-du / rr.detach() - pair.energy_force(rr.detach() ** 2)[1])) < 1e-14


def test_neighbor_list_matches_all_pairs_after_many_box_crossings():
    # a hot dilute fluid: particles cross the box faces (L = 7.1) many times in 10 tau
    s_nl = LennardJones(108, density=0.3, neighbor="vesin", cutoff_treatment="switched")
    s_ap = LennardJones(108, density=0.3, neighbor="all-pairs", cutoff_treatment="switched")
    z0 = s_nl.sample(2, temperature=3.0, seed=3)  # two replicas in one batch
    traj = md.nve(s_nl, z0, 0.005, 2000, save_every=200)
    L = s_nl.box_length
    x0, x1 = s_nl.positions(traj.z[0]), s_nl.positions(traj.z[-1])
    crossings = (torch.floor(x1 / L) - torch.floor(x0 / L)).abs().sum((-1, -2))  # net face crossings
    assert bool((crossings > 100).all())
    assert bool(((x1 - x0).abs().amax((-1, -2)) > L).all())  # some particle went over a box away
    assert s_nl._nl.builds > 20
    for z in traj.z[1:]:
        a = s_nl.compute(z[:, : s_nl.n_dof])
        b = s_ap.compute(z[:, : s_ap.n_dof])
        for key in ("forces", "energy", "virial"):
            assert (a[key] - b[key]).abs().max() < 1e-12 * (1 + b[key].abs().max())
    # wrapped positions give the same forces and do not trigger a rebuild
    builds = s_nl._nl.builds
    zw = s_nl.wrap(traj.z[-1])
    assert float((zw - traj.z[-1]).abs().max()) > L  # wrapping moved particles by whole boxes
    a = s_nl.compute(zw[:, : s_nl.n_dof])["forces"]
    b = s_nl.compute(traj.z[-1][:, : s_nl.n_dof])["forces"]
    assert s_nl._nl.builds == builds
    assert (a - b).abs().max() < 1e-12 * b.abs().max()
    # replicas in one batch equal separate calls
    single = s_ap.compute(traj.z[-1][1, : s_ap.n_dof])["forces"]
    assert (single - b[1]).abs().max() < 1e-12 * b.abs().max()


def test_neighbor_list_is_not_rebuilt_by_a_call_in_another_dtype():
    # a float32 run with a float64 energy check between chunks (as a benchmark or a thermo log
    # does) builds the list as often as the run alone; the float64 forces stay exact
    s_a = LennardJones(256, density=0.8442, neighbor="vesin")
    s_b = LennardJones(256, density=0.8442, neighbor="vesin")
    s_ap = LennardJones(256, density=0.8442, neighbor="all-pairs")
    z = s_a.sample(1, temperature=1.44, seed=0)[0].float()
    za = zb = z
    for _ in range(10):
        za = md.nve(s_a, za, 0.005, 5, save_every=5).z[-1]
        zb = md.nve(s_b, zb, 0.005, 5, save_every=5).z[-1]
        q64 = zb[: s_b.n_dof].double()
        f = s_b.compute(q64)["forces"]
        assert f.dtype == torch.float64
        assert (f - s_ap.compute(q64)["forces"]).abs().max() < 1e-12 * f.abs().max()
    assert torch.equal(za, zb)
    assert s_b._nl.builds == s_a._nl.builds < 10


@pytest.fixture(scope="module")
def lammps_melt():
    """LAMMPS in.lj protocol at N = 256 (LAMMPS: 32000), 6 replicas: fcc at density 0.8442,
    lj/cut 2.5 (truncated), velocities at T = 1.44 exactly, NVE dt = 0.005, 100 steps."""
    s = LennardJones(256, density=0.8442, cutoff=2.5, cutoff_treatment="truncated")
    z0 = s.sample(6, temperature=1.44, seed=87287)
    traj = md.nve(s, z0, 0.005, 100, save_every=20)
    return s, traj


def test_lammps_in_lj_melts_to_the_reported_temperature(lammps_melt):
    s, traj = lammps_melt
    th = md.thermo(s, traj.z)
    assert torch.allclose(th["temperature"][0], torch.full((6,), 1.44, dtype=torch.float64), atol=1e-12)
    assert float(th["pe"][0, 0]) / 256 == pytest.approx(LAMMPS_EPAIR0, abs=1e-7)
    T100 = th["temperature"][-1]
    pe100 = th["pe"][-1] / 256
    # replica-to-replica spread sets the statistical error of the mean (N = 256 vs LAMMPS' 32000)
    for values, ref in ((T100, LAMMPS_T100), (pe100, LAMMPS_EPAIR100)):
        se = float(values.std() / math.sqrt(len(values)))
        assert abs(float(values.mean()) - ref) < 4 * se + abs(LAMMPS_T100 - LAMMPS_T100_4000)
        assert se < 0.01
    # momentum stays zero
    assert float(md.total_momentum(s, traj.z).abs().max()) < 1e-10


def test_g_r_first_peak_of_the_melt(lammps_melt):
    s, traj = lammps_melt
    z = md.nve(s, traj.z[-1], 0.005, 200, save_every=20).z[1:]  # 1 tau more of the liquid
    r, g = md.radial_distribution(s, z, n_bins=160)
    r_peak, g_peak = md.first_peak(r, g)
    # liquid LJ near the triple point (T ~ 0.75, rho = 0.844): first peak near 1.1 sigma,
    # height about 3 (Verlet 1968, Fig. 1; see docs/lennard_jones_references.md); g -> 1 at L/2
    assert 1.05 < r_peak < 1.15
    assert 2.6 < g_peak < 3.4
    assert float(g[r < 0.85].abs().max()) == 0.0
    assert abs(float(g[-20:].mean()) - 1.0) < 0.1


@pytest.fixture(scope="module")
def switched_liquid():
    s = LennardJones(256, density=0.8442, cutoff=2.5, cutoff_treatment="switched")
    z0 = s.sample(1, temperature=1.44, seed=5)[0]
    z = md.nve(s, z0, 0.005, 200, save_every=200).z[-1]  # melted liquid at T ~ 0.75
    return s, z


def test_nve_energy_error_scales_as_dt_squared_and_is_small(switched_liquid):
    s, z = switched_liquid
    stds = []
    for dt in (0.005, 0.0025):
        steps = round(1.0 / dt)  # 1 tau
        tr = md.nve(s, z, dt, steps)
        th = md.thermo(s, tr.z)
        stds.append(float(th["energy"].std()))
        if dt == 0.005:
            ratio_ke = float(th["energy"].std() / th["ke"].std())
    assert stds[0] / stds[1] == pytest.approx(4.0, abs=0.6)
    assert ratio_ke < 0.01


def test_nve_energy_drift_is_bounded(switched_liquid):
    s, z = switched_liquid
    tr = md.nve(s, z, 0.005, 2000, save_every=10)  # 10 tau
    e = md.thermo(s, tr.z)["energy"].numpy() / s.n_particles
    slope = np.polyfit(tr.t.numpy(), e, 1)[0]
    assert abs(slope) < 1e-4  # epsilon / tau per particle
    assert np.ptp(e) < 1e-3


#: NIST SRSW MC NVT, T* = 0.85, rc = 3 + LRC (https://mmlapps.nist.gov/srs/LJ_PURE/mc.htm):
#: (rho*, U/N, sd of U/N, p*) at the state point checked and its neighbours. sd of U/N at 0.776:
#: 4.55e-4 (as quoted from that table by HOOMD-blue's hpmc LJ validation test); the page's p*
#: uncertainty at 0.776 was not retrieved (its neighbour rho* = 0.780 lists 3.18e-3), so the
#: pressure check uses none: it is far below this test's own standard error (about 0.03).
NIST_T085 = {
    0.776: (-5.5121, 4.55e-4, 6.7714e-3),
    0.780: (-5.5386, 7.26e-4, 4.7924e-2),
    0.820: (-5.7947, None, 5.5355e-1),
}
NIST_T090_RHO0776_P = 2.4056e-1  # the same density on the T* = 0.90 isotherm


def nist_check(values, ref, ref_sd):
    """|mean - ref| < k sqrt(se^2 + sd_ref^2), se from 2R blocks (two 5-tau halves of each of R
    replicas; values ``(T, R)``), k the Student-t quantile with 2R - 1 degrees of freedom at the
    two-sided level of a normal 4 sigma (p = 6.3e-5): the se is itself estimated from 2R blocks,
    so a fixed k = 4 would fail a correct run about once in 200 (t with 7 dof), and more where
    the block means are correlated. Returns (passed, tolerance)."""
    n_t, n_rep = values.shape
    blocks = values.reshape(2, n_t // 2, n_rep).mean(1).reshape(-1)
    se = float(blocks.std(ddof=1) / math.sqrt(len(blocks)))
    k = float(scipy.stats.t.isf(scipy.stats.norm.sf(4.0), len(blocks) - 1))
    tol = k * math.sqrt(se**2 + ref_sd**2)
    return abs(float(values.mean()) - ref) < tol, tol


@pytest.mark.slow  # 3000 Langevin steps of 8 x 256 particles (~70 s on one free core)
def test_nist_reference_energy_and_pressure_at_t085_rho0776():
    # NIST SRSW, MC NVT, N = 500, T* = 0.85, rho* = 0.776, rc = 3 sigma truncated + long-range
    # corrections. Here N = 256, 8 replicas, Langevin BAOAB.
    s = LennardJones(256, density=0.776, cutoff=3.0, cutoff_treatment="truncated")
    z0 = s.sample(8, temperature=2.0, seed=11)
    z, _ = md.langevin_baoab(s, z0, 0.005, 200, temperature=2.0, friction=5.0, seed=1)  # melt
    z, _ = md.langevin_baoab(s, z, 0.005, 800, temperature=0.85, friction=1.0, seed=2)  # 4 tau
    _, zs = md.langevin_baoab(s, z, 0.005, 2000, temperature=0.85, friction=1.0, seed=3, save_every=10)
    c = s.compute(zs[..., : s.n_dof])
    e_lrc, p_lrc = s.pair.tail_corrections(s.density)
    u = (c["energy"] / s.n_particles + e_lrc).numpy()  # (200, 8)
    # configurational pressure at the bath temperature (as MC): rho T + W / (3V) + LRC
    p = (s.density * 0.85 + c["virial"] / (3 * s.volume) + p_lrc).numpy()
    u_ref, u_sd, p_ref = NIST_T085[0.776]
    ok_u, tol_u = nist_check(u, u_ref, u_sd)
    ok_p, tol_p = nist_check(p, p_ref, 0.0)
    assert ok_u and ok_p, (float(u.mean()), tol_u, float(p.mean()), tol_p)
    # not vacuous: the run rejects NIST's state points at rho* = 0.82 (U/N gap 0.28, p gap 0.55)
    # and, by pressure, the T* = 0.90 isotherm at this density (p gap 0.234). It cannot resolve
    # rho* = 0.780 (gaps 0.0265 in U/N, 0.041 in p: below this run's tolerances)
    assert not nist_check(u, NIST_T085[0.820][0], 0.0)[0]
    assert not nist_check(p, NIST_T085[0.820][2], 0.0)[0]
    assert not nist_check(p, NIST_T090_RHO0776_P, 0.0)[0]
    assert tol_u < 0.05  # U/N resolved to a fifth of the gap to rho* = 0.82


def test_maxwell_boltzmann_and_fcc():
    p = maxwell_boltzmann(torch.full((108,), 2.0, dtype=torch.float64), 0.7, n_replicas=3, seed=4)
    s = LennardJones(108, mass=2.0, neighbor="all-pairs")
    z = torch.cat([torch.zeros_like(p), p], -1)
    assert float(md.total_momentum(s, z).abs().max()) < 1e-12
    assert torch.allclose(md.temperature(s, z), torch.full((3,), 0.7, dtype=torch.float64), atol=1e-12)
    x, L = fcc_lattice(3, 0.8442)
    assert x.shape == (108, 3) and L == pytest.approx(3 * (4 / 0.8442) ** (1 / 3))
    d = torch.cdist(x, x) + 10 * torch.eye(108, dtype=torch.float64)
    assert float(d.min()) == pytest.approx((4 / 0.8442) ** (1 / 3) / math.sqrt(2))


def test_msd_is_ballistic_at_short_times(switched_liquid):
    s, z = switched_liquid
    tr = md.nve(s, z, 0.001, 5)
    msd = md.mean_squared_displacement(s, tr.z)
    v2 = float((z[s.n_dof :] ** 2).sum()) / s.n_particles  # m = 1
    assert float(msd[1]) == pytest.approx(v2 * 0.001**2, rel=1e-2)
    assert float(msd[0]) == 0.0


def test_registered_with_defaults_and_bad_input():
    s = get_system("lennard-jones")
    assert s.n_particles == 256 and s.pair.treatment == "shifted" and s.neighbor == "vesin"
    z = s.sample(2)
    assert z.shape == (2, 6 * 256) and z.dtype == torch.float64
    with pytest.raises(SymplearnError, match="half the box"):
        LennardJones(108, cutoff=3.0)
    with pytest.raises(SymplearnError, match="density"):
        LennardJones(256, density=-1.0)
    with pytest.raises(SymplearnError, match="temperature"):
        LennardJones(256, temperature=0.0)
    with pytest.raises(SymplearnError, match="cutoff treatment"):
        LennardJones(256, cutoff_treatment="smooth")
    with pytest.raises(SymplearnError, match="4 k"):
        LennardJones(200).sample(1)


# -- total momentum, temperature's degrees of freedom, MSD in the centre-of-mass frame -----------
def _com_frame_kinetic(s, z):
    """Independent of md: 1/2 sum m |v_i - v_cm|^2 from the velocities."""
    m = s.masses
    v = z[..., s.n_dof :].reshape(*z.shape[:-1], s.n_particles, 3) / m[:, None]
    vcm = (m[:, None] * v).sum(-2, keepdim=True) / m.sum()
    return 0.5 * (m[:, None] * (v - vcm) ** 2).sum((-1, -2))


def test_langevin_preparation_removes_the_total_momentum_and_nve_keeps_it():
    s = LennardJones(108, density=0.8442, cutoff_treatment="switched", neighbor="all-pairs")
    z0 = s.sample(2, temperature=1.2, seed=3)
    raw, _ = md.langevin_baoab(s, z0, 0.005, 60, temperature=1.2, seed=4, zero_momentum=False)
    z, _ = md.langevin_baoab(s, z0, 0.005, 60, temperature=1.2, seed=4)
    # the thermostat's noise leaves a thermal total momentum (per component ~ sqrt(M T) = 11.4) ...
    assert float(md.total_momentum(s, raw).abs().max()) > 0.1
    # ... which the preparation removes (to round-off), leaving the relative motion untouched
    assert float(md.total_momentum(s, z).abs().max()) < 1e-12
    assert torch.equal(z[..., : s.n_dof], raw[..., : s.n_dof])
    assert torch.allclose(_com_frame_kinetic(s, z), _com_frame_kinetic(s, raw), rtol=1e-13, atol=0)
    traj = md.nve(s, z, 0.005, 100, save_every=50)
    assert float(md.total_momentum(s, traj.z).abs().max()) < 1e-11
    x = s.positions(traj.z)
    com_shift = (x - x[:1]).mean(-2)  # m = 1: the centre of mass does not move
    assert float(com_shift.abs().max()) < 1e-11


def test_temperature_counts_the_degrees_of_freedom_of_the_state():
    # unequal masses, so that KE - |P|^2/2M = sum 1/2 m |v - v_cm|^2 is not trivially true
    masses = torch.linspace(0.5, 2.0, 108, dtype=torch.float64)
    s = ParticleSystem(108, 6.0, LennardJonesPair(), mass=masses.tolist(), neighbor="all-pairs")
    gen = torch.Generator().manual_seed(7)
    p = torch.randn(3, s.n_dof, generator=gen, dtype=torch.float64) * masses.repeat_interleave(3).sqrt()
    z = torch.cat([torch.zeros_like(p), p], -1)  # a thermal state with a random total momentum
    ke = md.kinetic_energy(s, z)
    assert torch.allclose(md.temperature(s, z), 2 * _com_frame_kinetic(s, z) / (3 * 108 - 3), rtol=1e-12)
    assert torch.allclose(md.temperature(s, z, frame="lab"), 2 * ke / (3 * 108), rtol=1e-12)
    # zero total momentum: the LAMMPS 2 KE / (3N - 3)
    z0 = md.remove_total_momentum(s, z)
    assert float(md.total_momentum(s, z0).abs().max()) < 1e-12
    assert torch.allclose(md.temperature(s, z0), 2 * md.kinetic_energy(s, z0) / (3 * 108 - 3), rtol=1e-12)
    # a uniform boost of every velocity changes KE, not the temperature of the relative motion
    v = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    boosted = z0.clone()
    boosted[:, s.n_dof :] += (masses[:, None] * v).reshape(-1)
    assert float((md.kinetic_energy(s, boosted) - md.kinetic_energy(s, z0)).min()) > 10.0
    assert torch.allclose(md.temperature(s, boosted), md.temperature(s, z0), rtol=1e-12)
    assert torch.allclose(md.thermo(s, boosted)["temperature"], md.temperature(s, boosted), rtol=1e-14)
    with pytest.raises(SymplearnError, match="frame"):
        md.temperature(s, z, frame="moving")


def test_msd_of_a_uniform_translation_is_zero(switched_liquid):
    s, z = switched_liquid
    shift = torch.tensor([0.7, -1.3, 2.9], dtype=torch.float64)  # more than a box length in total
    moved = z.clone()
    moved[: s.n_dof] += shift.repeat(s.n_particles)
    traj = torch.stack([z, moved])
    assert float(md.mean_squared_displacement(s, traj)[1]) < 1e-24
    raw = md.mean_squared_displacement(s, traj, remove_drift=False)
    assert float(raw[1]) == pytest.approx(float((shift**2).sum()), rel=1e-12)
    # a real displacement on top of the drift is kept: NVE for 0.05 tau, then the translation
    tr = md.nve(s, z, 0.005, 10).z[[0, -1]]
    drifted = tr.clone()
    drifted[1, : s.n_dof] += shift.repeat(s.n_particles)
    msd = md.mean_squared_displacement(s, tr)
    assert float(msd[1]) > 1e-4
    assert float(md.mean_squared_displacement(s, drifted)[1]) == pytest.approx(float(msd[1]), rel=1e-9)


@pytest.mark.slow
def test_compiled_pair_kernel_gives_the_eager_forces_and_trajectory():
    # compile=True runs the stepping path through torch.compile (a C++ compiler is needed);
    # it must give the eager forces to round-off, keep the same rebuilds, and stay eager
    # (differentiable) where a graph is recorded
    s_e = LennardJones(256, density=0.8442, neighbor="vesin")
    s_c = LennardJones(256, density=0.8442, neighbor="vesin", compile=True)
    z0 = s_e.sample(2, temperature=1.44, seed=4)
    te = md.nve(s_e, z0, 0.005, 60, save_every=20)
    tc = md.nve(s_c, z0, 0.005, 60, save_every=20)
    assert s_c._nl.builds == s_e._nl.builds >= 2
    assert float((te.z - tc.z).abs().max()) < 1e-9
    # the compiled system's list keeps no images: its energy and virial take each pair's
    # minimum image instead, which is the stored image for every pair within the cutoff
    assert not s_c._nl.images
    q_end = tc.z[-1][:, : s_c.n_dof]
    out_c, out_e = s_c.compute(q_end), s_e.compute(q_end)
    for key in ("energy", "virial", "forces"):
        assert torch.allclose(out_c[key], out_e[key], rtol=1e-12, atol=1e-12), key
    # the compiled scatter adds in pair order whatever the thread count: the same bits each call
    # (inductor's multi-threaded loops would add with atomics)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        runs = [s_c.compute(q_end, energy=False, virial=False)["forces"] for _ in range(4)]
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(r, runs[0]) for r in runs)
    q = tc.z[-1][:, : s_c.n_dof].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(s_c.potential_energy(q).sum(), q)
    assert float((-g - s_e.compute(q.detach())["forces"]).abs().max()) < 1e-10
    with pytest.raises(SymplearnError, match="compile must be True or False"):
        LennardJones(256, compile="yes")
