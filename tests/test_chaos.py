"""Lyapunov exponent over microcanonical ensembles per energy shell."""

from __future__ import annotations

import math

import pytest
import torch

from symplearn import SymplearnError
from symplearn.diagnostics import lyapunov_exponent
from symplearn.diagnostics.chaos import lyapunov_vs_energy
from symplearn.integrators import get_integrator
from symplearn.integrators.discretize import discretize
from symplearn.systems import get_system
from symplearn.systems.sampling import microcanonical_sample


def test_matches_lyapunov_exponent_on_the_same_states():
    s = get_system("double-pendulum")
    rk4 = get_integrator("rk4")
    res = lyapunov_vs_energy(s, [9.81, 29.43], 3, 0.01, 2.0, rk4, seed=5)
    assert res.exponents.shape == (2, 3)
    z0 = torch.cat([microcanonical_sample(s, e, 3, seed=5 + i) for i, e in enumerate([9.81, 29.43])])
    direct = lyapunov_exponent(discretize(s, rk4, 0.01), z0, 200, seed=5, renorm_every=10).exponent
    assert torch.allclose(res.exponents.reshape(-1), direct, rtol=1e-12, atol=0)
    d = res.as_dict()
    assert d["q25"][0] <= d["q75"][0] and len(d["mean"]) == 2


def test_integrable_pendulum_has_no_exponential_growth():
    """One degree of freedom: tangent vectors grow at most linearly (shear), so the finite-time
    exponent is below log(1 + c t) / t; with |d omega / dE| |dE| ~ 1 over t = 40 s it is < 0.15."""
    s = get_system("pendulum")
    res = lyapunov_vs_energy(s, [2.0, 8.0], 4, 0.01, 40.0, get_integrator("rk4"), seed=1)
    assert float(res.exponents.max()) < math.log(1 + 40.0 * 5) / 40.0


def test_empty_energies():
    with pytest.raises(SymplearnError, match="empty"):
        lyapunov_vs_energy(get_system("pendulum"), [], 2, 0.01, 1.0, "rk4")
