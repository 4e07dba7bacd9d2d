"""Quick mode of the lennard-jones experiment: what cannot fail by chance at its fixed seed."""

from __future__ import annotations

import json

import pytest

from symplearn.experiments import get_experiment
from symplearn.experiments.lennard_jones import DIRECT_FLOORS, Config

KEYS = (
    "force_rmse",
    "energy_drift_per_particle_per_tau",
    "energy_std_over_ke_std",
    "temperature_start",
    "temperature_end",
    "gr_distance",
    "jacobian_asymmetry",
    "loop_work",
)


def test_quick_run(tmp_path):
    mod = get_experiment("lennard-jones")
    mod.run(Config(quick=True, quiet=True), tmp_path / "run")
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    rows = m["rows"]
    assert set(rows) == {"true", "conservative", "direct"}
    for row in rows.values():
        for k in KEYS:
            assert k in row
    assert m["wall_time_s"] > 0
    # the g(r) noise floor: the truth's g(r) from two independently prepared liquid states agree
    # (0.058 at the quick run's seed; an fcc start melting during the NVE run instead of a
    # Langevin-prepared liquid gives 0.21) but are not identical (independent states)
    assert 0 < m["gr_noise_floor"] < 0.15
    # truth row: float64 round-off, Verlet bounded at dt = 0.005
    t = rows["true"]
    assert t["jacobian_asymmetry"] < 1e-13
    assert t["energy_std_over_ke_std"] < 0.05
    # forces = -grad E by construction: lambda at round-off; loop work within its quadrature error
    c = rows["conservative"]
    assert c["jacobian_asymmetry"] < 1e-13
    assert c["loop_work_abs"] <= 10 * c["loop_quadrature_error"] + 1e-12
    assert c["loop_work"] < 1e-6
    # the direct model (fixed seed): far above round-off
    d = rows["direct"]
    assert d["jacobian_asymmetry"] > DIRECT_FLOORS["jacobian_asymmetry"]
    assert d["loop_work"] > DIRECT_FLOORS["loop_work"]
    assert d["loop_work_abs"] > 10 * d["loop_quadrature_error"]
    for name in ("fig5_lennard_jones.png", "learning_curves.png", "report.md", "model_direct/config.json"):
        assert (tmp_path / "run" / name).exists()


def test_config_validation():
    with pytest.raises(ValueError, match="conservative_kind"):
        Config(conservative_kind="mlp").resolved()
    with pytest.raises(ValueError, match="nve_steps"):
        Config(nve_steps=50, save_every=10).resolved()
