"""The command line: outputs that agree with the library, and clear one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from symplearn.cli import main, parse_loop, parse_observable
from symplearn.systems import get_system


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_system_lists_valid_names_without_traceback():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "symplearn",
            "simulate",
            "pendulm",
            "--dt",
            "0.1",
            "--steps",
            "10",
            "--out",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    for name in ("oscillator", "pendulum", "double-pendulum", "kepler", "kepler-polar", "henon-heiles"):
        assert name in proc.stderr


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["simulate", "pendulum", "--integrator", "rk5", "--dt", "0.1", "--steps", "5"], "gauss-legendre-6"),
        (
            ["simulate", "double-pendulum", "--integrator", "verlet", "--dt", "0.01", "--steps", "5"],
            "implicit-midpoint",
        ),
        (["simulate", "pendulum", "--param", "gg=2", "--dt", "0.1", "--steps", "5"], "L"),
        (["simulate", "pendulum", "--z0", "1,2,3", "--dt", "0.1", "--steps", "5"], "2 (q's then p's)"),
        (["simulate", "pendulum", "--z0", "nan,0", "--dt", "0.1", "--steps", "5"], "non-finite"),
        (["experiment", "sprung", "--quick"], "spring"),
        (["experiment", "spring", "--set", "widht=3"], "width"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(capsys, tmp_path, argv, needle):
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "run"))
    assert code == 2
    assert needle in err
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_nonpositive_dt_is_refused(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "pendulum", "--dt", "-0.1", "--steps", "5", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "must be > 0" in capsys.readouterr().err


def test_simulate_writes_consistent_files(capsys, tmp_path, dtype):
    out = tmp_path / "sim"
    code, _, _ = run_cli(
        capsys,
        "simulate",
        "oscillator",
        "--param",
        "omega=2",
        "--integrator",
        "rk4",
        "--dt",
        "0.05",
        "--steps",
        "200",
        "--save-every",
        "4",
        "--z0",
        "1.0,0.0",
        "--z0",
        "0.0,0.5",
        "--dtype",
        "float64" if dtype == torch.float64 else "float32",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0
    with np.load(out / "trajectory.npz", allow_pickle=False) as f:
        t, z, energy = f["t"], f["z"], f["energy"]
    assert t.shape == (51,) and z.shape == (51, 2, 2) and energy.shape == (51, 2)
    # the saved states follow the exact solution (RK4 at omega*dt = 0.1 over 20 radians: ~3e-5)
    system = get_system("oscillator", omega=2.0)
    exact = system.exact_solution(
        torch.tensor([[1.0, 0.0], [0.0, 0.5]], dtype=torch.float64), torch.as_tensor(t, dtype=torch.float64)
    )
    assert np.abs(z - exact.numpy()).max() < 1e-4
    summary = json.loads((out / "summary.json").read_text())
    rel = np.abs(energy - energy[0]) / np.abs(energy[0])
    assert summary["max_rel_energy_error"] == pytest.approx(rel.max(), rel=1e-6, abs=1e-12)
    assert json.loads((out / "config.json").read_text())["params"] == {"omega": 2.0}
    assert (out / "energy_error.png").stat().st_size > 10_000
    assert (out / "phase_portrait.png").stat().st_size > 10_000
    assert not list(tmp_path.glob(".*tmp"))  # the staging folder is gone


def test_observable_parser_is_safe_and_checks_dimension():
    f = parse_observable("q0*p1 - q1*p0", 2)
    z = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    assert float(f(z)) == pytest.approx(1 * 4 - 2 * 3)
    assert float(parse_observable("sin(q)**2 + p/2", 1)(torch.tensor([[0.5, 1.0]]))) == pytest.approx(
        np.sin(0.5) ** 2 + 0.5, rel=1e-6
    )
    with pytest.raises(ValueError, match="valid names: q0, q1, p0, p1"):
        parse_observable("q2 * p0", 2)
    with pytest.raises(ValueError, match="only numbers"):
        parse_observable("__import__('os').system('true')", 1)


def test_loop_parser_requires_a_closed_loop():
    loop = parse_loop("0,0;1,0;1,1;0,1;0,0")
    assert loop.shape == (4, 2)
    with pytest.raises(ValueError, match="not closed"):
        parse_loop("0,0;1,0;1,1;0,1")


def test_experiment_list_names_each_experiment(capsys):
    code, out, _ = run_cli(capsys, "experiment", "--list")
    assert code == 0
    assert out.splitlines()[0].startswith("spring") and "pendulum" in out
