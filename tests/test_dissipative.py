"""The dissipative experiment in quick mode: the run folder's structure and what cannot fail by
chance (R positive semi-definite, the D-HNN's parts divergence- and curl-free to round-off, the
HNN's field divergence-free, the truth's exact energy balance)."""

import json

import numpy as np
import pytest

from symplearn._errors import SymplearnError
from symplearn.experiments import dissipative as exp


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dissipative") / "run"
    report = exp.run(exp.Config(quick=True, quiet=True), out)
    return out, report, json.loads((out / "metrics.json").read_text())


def test_run_folder_and_metrics_schema(run):
    out, report, metrics = run
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.json", "report.md", "forcing.png"}
    assert set(metrics["systems"]) == set(exp.SYSTEM_NAMES)
    assert metrics["wall_time_s"] > 0
    for key, s in metrics["systems"].items():
        proto = exp.PROTOCOLS[key]
        assert set(s["rows"]) == {"mlp", "hnn", "dhnn", "phnn"}
        assert (out / f"phase_{key}.png").exists()
        for name, row in s["rows"].items():
            assert "trajectory_mse" in row and "energy_error" in row
            assert (row["energy_error"] is None) == (name == "mlp")
            assert ("damping_error" in row) == proto.damped
            assert ("forcing_error" in row) == proto.forced
        if proto.forced:  # models without a forcing term have 100 % forcing error, exactly
            assert s["rows"]["hnn"]["forcing_error"] == pytest.approx(1.0, abs=1e-12)
            assert s["rows"]["dhnn"]["forcing_error"] == pytest.approx(1.0, abs=1e-12)


def test_structure_by_construction(run):
    _, _, metrics = run
    for s in metrics["systems"].values():
        rows = s["rows"]
        R = np.array(rows["phnn"]["learned_R"])
        assert np.allclose(R, R.T) and np.linalg.eigvalsh(R).min() >= -1e-7
        assert rows["dhnn"]["rotational_divergence_max"] < 1e-12
        assert rows["dhnn"]["dissipative_curl_max"] < 1e-12
        # natural Helmholtz-Hodge: a divergence-free field has no gradient part (finite
        # differences of a smooth network: truncation only)
        assert rows["hnn"]["helmholtz_gradient_share"] < 1e-4
        # the truth's energy balance along its exact trajectories: quadrature error only
        assert s["truth_balance_residual"] < 1e-4
        # the PHNN's own ports account for its own energy along its rollouts (RK4 error only)
        assert rows["phnn"]["own_balance_residual"] < 1e-3


def test_bad_settings_say_what_would_work():
    with pytest.raises(SymplearnError, match="unknown system.*valid: damped-spring"):
        exp.Config(systems=("damped",)).resolved()
    with pytest.raises(SymplearnError, match="steps must be a positive integer"):
        exp.Config(steps=0).resolved()
