"""Langevin BAOAB as an integrator: ``integrate(discretize(system, LangevinBAOAB(T), dt))``
samples the canonical distribution, is reproducible from its seed, and is refused where its
splitting does not apply."""

from __future__ import annotations

import math

import pytest
import torch

from symplearn import discretize
from symplearn._errors import SymplearnError
from symplearn.integrators import LangevinBAOAB, integrate
from symplearn.systems import get_system


def test_baoab_samples_the_canonical_distribution_of_the_oscillator():
    # H = p^2/2 + q^2/2 (omega = 1): at T = 0.5 the canonical variances are <q^2> = <p^2> = T.
    # BAOAB's configurational marginal is exact for a harmonic potential at any dt < 2; its
    # momentum marginal has an O(dt^2) error (dt^2/4 = 0.25 % here). 4096 independent replicas
    # after 40 / gamma: a relative standard error of sqrt(2/4096) = 2.2 % on each variance
    osc = get_system("oscillator")
    T, dt, K = 0.5, 0.1, 4096
    z0 = torch.zeros(K, 2, dtype=torch.float64)
    flow = discretize(osc, LangevinBAOAB(T, friction=1.0, seed=7), dt)
    with torch.no_grad():
        z = integrate(flow, z0, 400, save_every=400).z[-1]
    q, p = z[:, 0], z[:, 1]
    se = math.sqrt(2.0 / K)
    assert abs(float((q * q).mean()) / T - 1.0) < 4 * se
    assert abs(float((p * p).mean()) / T - 1.0) < 4 * se
    assert abs(float((q * p).mean())) / T < 4 / math.sqrt(K)  # no correlation in equilibrium


def test_baoab_is_reproducible_from_its_seed_and_differs_across_seeds():
    osc = get_system("oscillator")
    z0 = torch.ones(8, 2, dtype=torch.float64)

    def run(seed):
        return integrate(discretize(osc, LangevinBAOAB(1.0, seed=seed), 0.05), z0, 50).z

    assert torch.equal(run(3), run(3))
    assert not torch.allclose(run(3), run(4))


def test_baoab_needs_a_separable_hamiltonian_and_a_physical_bath():
    with pytest.raises(SymplearnError, match="not separable"):
        discretize(get_system("double-pendulum"), LangevinBAOAB(1.0), 0.01)
    with pytest.raises(SymplearnError, match="temperature must be a positive number"):
        LangevinBAOAB(0.0)
    with pytest.raises(SymplearnError, match="friction must be a positive number"):
        LangevinBAOAB(1.0, friction=-1.0)
