"""Quick modes of the experiments, end to end: the structural results that cannot fail by chance
(an HNN's field has no divergence and no loop gap, its flow keeps area, the true row is near
exact, Verlet's energy error is bounded and Euler's drifts, the exact flow keeps a square's area),
plus the run folder's contents and reproducibility. Comparisons between trained models are not
asserted: they depend on training."""

from __future__ import annotations

import json

import pytest

from symplearn.cli import main
from symplearn.experiments import EXPERIMENTS, get_experiment


def _metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


@pytest.fixture(scope="module")
def spring_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("spring")
    assert main(["experiment", "spring", "--quick", "--quiet", "--out", str(out)]) == 0
    return out


def test_spring_quick_structural_results(spring_run):
    rows = _metrics(spring_run)["rows"]
    assert {"true", "hnn", "mlp", "mlp-implicit-midpoint"} <= set(rows)
    for row in rows.values():
        for key in ("train_loss", "max_rel_energy_error", "final_energy_ratio", "area_ratio", "loop_gap"):
            assert key in row
    hnn, true = rows["hnn"], rows["true"]
    assert true["max_rel_energy_error"] < 1e-6  # RK4 on the true field over the quick horizon
    assert abs(true["area_ratio"] - 1) < 1e-6
    assert hnn["divergence_rms"] < 1e-10  # J grad H is divergence-free by construction
    assert hnn["loop_gap_rel"] < 1e-8  # and has an energy: the one-form integrates to zero
    assert abs(hnn["area_ratio"] - 1) < 1e-4  # RK4 on a Hamiltonian field: area error O(h^4) only


def test_spring_run_folder_is_complete_and_reproducible(spring_run, tmp_path):
    cfg = json.loads((spring_run / "config.json").read_text())
    assert cfg["quick"] is True and "symplearn_version" in cfg
    report = (spring_run / "report.md").read_text()
    assert "| `hnn` |" in report
    for name in ("energy_error.png", "long_horizon.png", "phase_portrait.png", "patch_mlp.png"):
        assert name in report and (spring_run / name).stat().st_size > 10_000
    assert _metrics(spring_run)["wall_time_s"] > 0
    again = tmp_path / "again"
    assert main(["experiment", "spring", "--quick", "--quiet", "--out", str(again)]) == 0
    a, b = _metrics(spring_run)["rows"], _metrics(again)["rows"]
    for name in a:
        for key in ("train_loss", "max_rel_energy_error", "area_ratio", "loop_gap"):
            assert a[name][key] == b[name][key], (name, key)


def test_pendulum_quick_structural_results(tmp_path):
    out = tmp_path / "pendulum"
    assert main(["experiment", "pendulum", "--quick", "--quiet", "--out", str(out)]) == 0
    m = _metrics(out)
    rows = m["rows"]
    euler = next(v for k, v in rows.items() if k.startswith("euler"))
    verlet = next(v for k, v in rows.items() if k.startswith("verlet"))
    assert verlet["energy_error_verdict"] == "bounded"
    assert euler["energy_error_verdict"] == "drifting"
    assert euler["max_rel_energy_error"] > 10 * verlet["max_rel_energy_error"]
    assert m["square"]["max_area_deviation"] < 1e-4  # Figure 2: area constant to four decimals
    assert m["square"]["perimeter_ratio"] > 1.2  # while the square really shears
    for kind in ("hnn", "sympnet-g", "sympnet-la"):  # symplectic flows keep area
        assert abs(rows[kind]["area_ratio"] - 1) < 1e-3, kind
    for name in ("fig4_energy.png", "fig4_phase.png", "fig2_square.png", "energy_error_models.png"):
        assert (out / name).stat().st_size > 10_000


def test_every_experiment_has_a_description_and_quick_config():
    for name in EXPERIMENTS:
        mod = get_experiment(name)
        assert mod.DESCRIPTION and mod.Config(quick=True).resolved().quick
