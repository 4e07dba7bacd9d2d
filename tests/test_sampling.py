"""Microcanonical sampling: samples on the shell, against time averages of true trajectories and
against rejection sampling of a thin energy band of uniform phase-space points."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import ks_2samp

from symplearn import SymplearnError
from symplearn.integrators import integrate
from symplearn.integrators.discretize import discretize
from symplearn.systems import get_system
from symplearn.systems.sampling import microcanonical_density, microcanonical_sample


@pytest.mark.parametrize(
    "name,energy",
    [
        ("double-pendulum", 29.43),
        ("double-pendulum", 2.0),
        ("pendulum", 5.0),
        ("pendulum", 25.0),
        ("henon-heiles", 0.12),
    ],
)
def test_samples_lie_on_the_shell(name, energy):
    s = get_system(name)
    z = microcanonical_sample(s, energy, 2000, seed=0)
    assert z.shape == (2000, 2 * s.n_dof)
    assert float((s.hamiltonian(z) - energy).abs().max()) < 1e-12 * max(1.0, energy)
    # same seed, same samples
    assert torch.equal(z, microcanonical_sample(s, energy, 2000, seed=0))


@pytest.mark.parametrize("energy", [5.0, 25.0])  # libration (turning points) and rotation
def test_pendulum_matches_the_time_average_of_its_orbit(energy):
    """n = 1: the q-marginal is 1/|q_dot|, i.e. the time average over a period of the orbit."""
    s = get_system("pendulum")
    z = microcanonical_sample(s, energy, 100_000, seed=1)
    if energy < 2 * s.g:
        z0 = torch.tensor([[math.acos(1 - energy / s.g), 0.0]], dtype=torch.float64)
    else:
        z0 = torch.tensor([[0.0, math.sqrt(2 * energy)]], dtype=torch.float64)
    tr = integrate(discretize(s, "rk4", 0.004), z0, 10_000)
    q = torch.remainder(tr.z[:, 0, 0] + math.pi, 2 * math.pi) - math.pi
    # 40 s is many periods (>= 10): the time average is exact to O(period / 40 s) < 1e-2 of a swing
    for f in (torch.cos, lambda x: torch.cos(2 * x)):
        a, b = float(f(z[:, 0]).mean()), float(f(q).mean())
        sem = float(f(z[:, 0]).std()) / math.sqrt(len(z))
        assert abs(a - b) < 5 * sem + 2e-3, (a, b, sem)


def test_double_pendulum_matches_long_chaotic_trajectories():
    """At E = 3 mgl (chaotic): means of cos q1, cos q2 and of the kinetic energy E - V along 64
    true trajectories of 50 s (RK4, dt = 0.01) against 200 000 samples, within 4 standard errors
    of the trajectory averages (spread over the 64 trajectories) plus 4 of the sampler's."""
    s = get_system("double-pendulum")
    E = 3 * 9.81
    z = microcanonical_sample(s, E, 200_000, seed=1)
    z0 = microcanonical_sample(s, E, 64, seed=2)
    with torch.no_grad():
        tr = integrate(discretize(s, "rk4", 0.01), z0, 5000, save_every=5)
    zz = tr.z[100:]  # drop the first 5 s
    obs = {
        "cos q1": (torch.cos(z[:, 0]), torch.cos(zz[..., 0]).mean(0)),
        "cos q2": (torch.cos(z[:, 1]), torch.cos(zz[..., 1]).mean(0)),
        "kinetic": (E - s.potential(z[:, :2]), (s.hamiltonian(zz) - s.potential(zz[..., :2])).mean(0)),
    }
    for name, (samp, per_traj) in obs.items():
        sem = float(per_traj.std()) / math.sqrt(per_traj.numel()) + float(samp.std()) / math.sqrt(
            samp.numel()
        )
        diff = abs(float(samp.mean()) - float(per_traj.mean()))
        assert diff < 4 * sem, (name, diff, sem)


def _band(s, E, delta, n_batches, seed):
    """Uniform points of the box [-pi, pi]^2 x |p_i| <= sqrt(2 E M_ii^max) with |H - E| < delta."""
    gen = torch.Generator().manual_seed(seed)
    pmax = torch.tensor([math.sqrt(2 * E * 2.0), math.sqrt(2 * E * 1.0)], dtype=torch.float64)
    keep = []
    for _ in range(n_batches):
        q = math.pi * (2 * torch.rand(1_000_000, 2, generator=gen, dtype=torch.float64) - 1)
        p = pmax * (2 * torch.rand(1_000_000, 2, generator=gen, dtype=torch.float64) - 1)
        z = torch.cat([q, p], -1)
        keep.append(z[(s.hamiltonian(z) - E).abs() < delta])
    return torch.cat(keep)


def test_double_pendulum_matches_a_thin_energy_band():
    """Uniform phase-space points with |H - E| < 0.0025 E converge to the microcanonical measure
    as the band shrinks: every marginal passes a two-sample Kolmogorov-Smirnov test at the 1 %
    level against the sampler (fixed seeds), and the naive sampler (uniform q with V < E, a
    uniform momentum direction), which ignores sqrt(det M) and the ellipsoid's geometry, fails
    it for the momenta."""
    s = get_system("double-pendulum")
    E = 20.0
    band = _band(s, E, 0.05, 10, seed=0)
    assert len(band) > 4000
    ms = microcanonical_sample(s, E, 20_000, seed=3)
    naive = s.sample(20_000, energy_range=(E, E), seed=3)
    for i in range(4):
        assert ks_2samp(band[:, i].numpy(), ms[:, i].numpy()).pvalue > 0.01, i
    assert min(ks_2samp(band[:, i].numpy(), naive[:, i].numpy()).pvalue for i in (2, 3)) < 1e-3


def test_density_is_sqrt_det_m_for_two_degrees_of_freedom():
    s = get_system("double-pendulum")
    q = torch.tensor([[0.1, 0.5], [0.3, -0.2]], dtype=torch.float64)
    w1 = microcanonical_density(s, q, 20.0)
    w2 = microcanonical_density(s, q, 40.0)
    det = torch.linalg.det(s.mass_matrix(q))
    assert torch.allclose(w1, det.sqrt(), rtol=1e-12)
    assert torch.allclose(w2, det.sqrt(), rtol=1e-12)


def test_bad_input():
    s = get_system("double-pendulum")
    with pytest.raises(SymplearnError, match="positive integer"):
        microcanonical_sample(s, 10.0, 0)
    with pytest.raises(SymplearnError, match="finite"):
        microcanonical_sample(s, float("nan"), 10)
    with pytest.raises(SymplearnError, match="no admissible state"):
        microcanonical_sample(s, -1.0, 10)
    with pytest.raises(SymplearnError, match="no state"):
        microcanonical_sample(get_system("pendulum"), -1.0, 10)


def test_henon_heiles_energy_range_is_checked_as_system_sample_does():
    s = get_system("henon-heiles")  # lam = 1: escape energy 1/6, the saddle height
    assert s.escape_energy == pytest.approx(1 / 6)
    for e in (0.2, 1 / 6):  # above / at the saddles: the region V < E is unbounded
        with pytest.raises(SymplearnError, match="escape energy"):
            microcanonical_sample(s, e, 100)
        with pytest.raises(SymplearnError, match="escape energy"):
            s.sample(10, energy_range=(0.1, e))
    with pytest.raises(SymplearnError, match=">= 0"):
        microcanonical_sample(s, -0.01, 100)
    # just below the saddles the measure exists: every sample on the shell, inside the well
    z = microcanonical_sample(s, 0.16, 200, seed=3)
    assert float((s.hamiltonian(z) - 0.16).abs().max()) < 1e-12
    assert bool(s.in_well(z[:, :2]).all())
