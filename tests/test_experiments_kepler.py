"""Quick modes of the Kepler and Noether experiments, end to end. Asserted: only what cannot fail
by chance (the truth rows under each integrator, and charges and invariances that hold to
round-off whatever the training reached)."""

import json
import math

import pytest

from symplearn._errors import SymplearnError
from symplearn.experiments import get_experiment

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def kepler_run(tmp_path_factory):
    exp = get_experiment("kepler")
    out = tmp_path_factory.mktemp("kepler") / "run"
    exp.run(exp.Config(quick=True, quiet=True), out)
    return out, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def noether_run(tmp_path_factory):
    exp = get_experiment("noether")
    out = tmp_path_factory.mktemp("noether") / "run"
    exp.run(exp.Config(quick=True, quiet=True), out)
    return out, json.loads((out / "metrics.json").read_text())


def test_kepler_truth_rows(kepler_run):
    out, m = kepler_run
    assert {"config.json", "metrics.json", "report.md", "kepler_drift.png"} <= {p.name for p in out.iterdir()}
    rows = m["rows"]
    for row in rows.values():
        assert {
            "max_rel_energy_error",
            "max_rel_angular_momentum_error",
            "orbits",
            "escaped_at_orbit",
        } <= set(row)
    # the exact H: Verlet and implicit midpoint keep L to round-off, RK4 drifts far above it
    assert rows["true/verlet"]["max_rel_angular_momentum_error"] < 1e-12
    assert rows["true/implicit-midpoint"]["max_rel_angular_momentum_error"] < 1e-12
    assert rows["true/rk4"]["max_rel_angular_momentum_error"] > 1e-6
    # Verlet's energy error is a bounded O(dt^2) band on these orbits (dt = 2 pi / 64)
    assert rows["true/verlet"]["max_rel_energy_error"] < 0.1
    for name in ("true/rk4", "true/verlet", "true/implicit-midpoint"):
        assert rows[name]["escaped_at_orbit"] is None


def test_kepler_rotation_invariant_models_keep_angular_momentum(kepler_run):
    """L is kept to round-off, measured over the whole run: at the quick run's seed no test orbit
    of either model escapes (an error measured over orbits that escaped at once would prove
    nothing, so at least half the orbits must stay bound for all the run's orbits)."""
    _, m = kepler_run
    for name in ("hnn-rotation/implicit-midpoint", "hnn-rotation-separable/verlet"):
        row = m["rows"][name]
        assert row["n_escaped"] <= row["n_test_orbits"] // 2, (
            name,
            row["n_escaped"],
            row["escaped_at_orbit"],
        )
        assert row["orbits"] >= 4 and row["solver_failed_at_orbit"] is None, name
        assert row["max_rel_angular_momentum_error"] is not None, name
        assert row["max_rel_angular_momentum_error"] < 1e-10, name


def test_noether_invariant_model_is_the_same_at_every_shift(noether_run):
    out, m = noether_run
    assert "noether_shift.png" in {p.name for p in out.iterdir()}
    assert m["shifts"] == [0.0, 10.0, 100.0, 1000.0]
    inv = m["rows"]["hnn-translation"]
    assert len(inv["field_error_by_shift"]) == len(inv["rollout_error_by_shift"]) == 4
    f0, r0 = inv["field_error_by_shift"][0], inv["rollout_error_by_shift"][0]
    for f, r in zip(inv["field_error_by_shift"], inv["rollout_error_by_shift"]):
        assert math.isclose(f, f0, rel_tol=1e-6) and math.isclose(r, r0, rel_tol=1e-6)
    assert inv["max_momentum_drift"] < 1e-12
    rot = m["rotation"]["rows"]["hnn-rotation"]
    a0 = rot["field_error_by_angle"][0]
    assert all(math.isclose(f, a0, rel_tol=1e-6) for f in rot["field_error_by_angle"])
    assert rot["max_momentum_drift"] < 1e-12
    assert set(m["rows"]) == {"hnn", "hnn-translation"}


def test_configs_refuse_bad_settings():
    with pytest.raises(SymplearnError, match="steps_per_orbit must be an integer >= 16"):
        get_experiment("kepler").Config(steps_per_orbit=4).resolved()
    with pytest.raises(SymplearnError, match="shifts must be finite numbers starting with 0"):
        get_experiment("noether").Config(shifts=(10.0, 100.0)).resolved()
