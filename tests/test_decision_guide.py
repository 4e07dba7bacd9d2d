"""The decision-guide experiment (quick mode): every family on the spring and the pendulum."""

import json

import pytest

from symplearn._errors import SymplearnError
from symplearn.experiments import decision_guide as dg


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    out = tmp_path_factory.mktemp("guide") / "run"
    report = dg.run(dg.Config(quick=True, quiet=True), out)
    return report, out


def test_rows_cover_every_family_and_structure_is_exact_where_promised(guide):
    report, out = guide
    rows = json.loads((out / "decision_guide.json").read_text())["rows"]
    assert {(r["system"], r["family"]) for r in rows} == {
        (s, f) for s in ("spring", "pendulum") for f in ("baseline", "HNN", "LNN", "SympNet")
    }
    for r in rows:
        if r["family"] in ("HNN", "SympNet"):  # symplectic by construction (HNN: implicit midpoint)
            assert r["symplecticity_defect"] < 1e-10, r
        if r["family"] == "baseline":  # an MLP field under RK4 is not a symplectic map
            assert r["symplecticity_defect"] > 1e-8, r
        if r["family"] == "LNN":
            assert r["symplecticity_defect"] is None
        assert r["rollout_us_per_step"] > 0 and r["train_s"] > 0
        assert r["goal_met"] == (r["energy_verdict"] == "bounded" and r["long_horizon_stat"] <= 0.05)
    assert "decision_guide.png" in report.figures


def test_bad_settings_are_refused():
    with pytest.raises(SymplearnError, match="systems must be"):
        dg.Config(systems=("moon",)).resolved()
    with pytest.raises(SymplearnError, match="not a finished run folder"):
        dg.Config(double_pendulum_run="/nonexistent").resolved()
