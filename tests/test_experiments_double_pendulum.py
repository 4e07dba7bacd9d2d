"""The double-pendulum experiment end to end in quick mode: only what cannot fail by chance."""

from __future__ import annotations

import json
import math

import pytest
import torch

from symplearn import SymplearnError
from symplearn.experiments import double_pendulum as dp
from symplearn.experiments import get_experiment
from symplearn.systems import get_system


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp") / "run"
    torch.set_num_threads(1)
    dp.run(dp.Config(quick=True, quiet=True), out)
    return out, json.loads((out / "metrics.json").read_text())


def test_registered():
    assert get_experiment("double-pendulum") is dp


def test_run_folder_and_contract(quick_run):
    out, m = quick_run
    for name in ("config.json", "metrics.json", "report.md", "poincare.png", "marginals.png"):
        assert (out / name).exists(), name
    truth = m["truth"]
    curve = truth["lyapunov_vs_energy"]
    assert len(curve["energy"]) == len(curve["mean"]) == len(curve["q25"]) == len(curve["q75"])
    assert math.isclose(truth["reference_energy"], 3 * 9.81)
    assert set(truth["w1_floor"]) == {"q1", "q2", "kinetic"}
    for kind in ("mlp", "hnn", "sympnet-g"):
        row = m["rows"][kind]
        for key in (
            "lyapunov", "w1_q1", "w1_q2", "w1_kinetic", "mean_kinetic_energy",
            "max_rel_energy_error", "energy_verdict", "train_s", "rollout_s",
        ):  # fmt: skip
            assert key in row, (kind, key)


def test_truth_exponent_positive_and_stable(quick_run):
    """Chaos at 3 mgl: both integrators give a clearly positive exponent from rest at
    q1 = q2 = pi/2 and agree within 30 % even over the quick run's 20 s; the shell at 3 mgl is
    far more chaotic than the nearly regular shell at 1 mgl."""
    _, m = quick_run
    ref = m["truth"]["lyapunov_from_rest"]
    a, b = ref["rk4"]["mean"], ref["gauss-legendre-4"]["mean"]
    assert 0.3 < a < 2.0 and 0.3 < b < 2.0
    assert ref["relative_difference"] < 0.3
    curve = m["truth"]["lyapunov_vs_energy"]
    e = curve["energy_mgl"]
    assert curve["mean"][e.index(3.0)] > 3 * curve["mean"][e.index(1.0)]


def test_sampler_moments_match_true_trajectories(quick_run):
    """Mean kinetic energy of the microcanonical sample against the true trajectories' time
    average (8 trajectories of 20 s in quick mode: agreement to 10 %)."""
    _, m = quick_run
    mc = m["truth"]["mean_kinetic_energy_microcanonical"]
    traj = m["rows"]["truth (rk4)"]["mean_kinetic_energy"]
    assert abs(mc - traj) < 0.1 * mc


def test_hnn_conserves_its_own_energy(quick_run):
    """Structural: the implicit midpoint rule keeps the HNN's learned energy in a band of size
    O(dt^2) whatever the training (the angle-embedded energy is periodic, so wrapping the angles
    does not change it)."""
    _, m = quick_run
    row = m["rows"]["hnn"]
    assert row["learned_energy_verdict"] == "bounded"
    assert row["learned_energy_max_rel_error"] < 1e-2


def test_config_validation():
    with pytest.raises(SymplearnError, match="energy_band"):
        dp.Config(energy_band=(3.5, 4.0)).resolved()
    with pytest.raises(SymplearnError, match="unknown models"):
        dp.Config(models=("hnn", "resnet")).resolved()
    with pytest.raises(SymplearnError, match="save_dt"):
        dp.Config(save_dt=0.03).resolved()


def test_torus_lift_equals_the_true_flow():
    """The lift z -> z + Phi(wrap z) - wrap z is the true flow for states with unwrapped angles
    (the flow commutes with 2 pi shifts of the angles)."""
    s = get_system("double-pendulum")
    z = torch.tensor([[7.0, -9.5, 1.0, -2.0]], dtype=torch.float64)
    lift = dp.TorusLift(s, "rk4", 0.01)
    direct = dp._one_step(s, "rk4", 0.01)(z)
    assert torch.allclose(lift.step(0.0, z), direct, atol=1e-12, rtol=0)
