"""The command line: outputs that agree with the library, and clear one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from symplearn.cli import main
from symplearn.runs.diagnose import parse_loop, parse_observable
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
        (["experiment", "pendulum", "--set", "square_center=abc"], "2.0,0.0"),
        (["experiment", "spring", "--set", "periods=1.5"], "like the default 50"),
        # a fixed-size tuple (a range) needs both ends; a variable-length one takes any number,
        # so the error is the next setting's
        (["experiment", "double-pendulum", "--set", "energy_band=3.0"], "like the default 2.5,3.5"),
        (
            ["experiment", "double-pendulum", "--set", "lyap_energies=1.0,3.0", "--set", "lyap_dt=-1"],
            "lyap_dt must be a positive number",
        ),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(capsys, tmp_path, argv, needle):
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "run"))
    assert code == 2
    assert needle in err
    assert not (tmp_path / "run").exists()  # nothing half-written


@pytest.mark.parametrize(
    "argv",
    [
        ["experiment", "spring", "--quick"],
        ["train", "--system", "oscillator", "--model", "hnn", "--steps", "5"],
        ["simulate", "oscillator", "--dt", "0.1", "--steps", "5"],
    ],
)
def test_an_output_path_that_is_a_file_is_refused_before_the_work(capsys, tmp_path, argv):
    afile = tmp_path / "results"
    afile.write_text("keep me")
    code, _, err = run_cli(capsys, *argv, "--out", str(afile))
    assert code == 2 and "is not a folder" in err and len(err.strip().splitlines()) == 1
    assert afile.read_text() == "keep me"


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
    summary = json.loads((out / "metrics.json").read_text())
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
    with pytest.raises(ValueError, match="'q,p' pairs.*'1,1,1'"):
        parse_loop("0,0;1,0;1,1,1;0,0")


def test_experiment_list_names_each_experiment(capsys):
    code, out, _ = run_cli(capsys, "experiment", "--list")
    assert code == 0
    assert out.splitlines()[0].startswith("spring") and "pendulum" in out


def test_diagnose_a_system_reports_exact_geometry(capsys, tmp_path):
    out = tmp_path / "diag"
    code, _, _ = run_cli(
        capsys,
        "diagnose",
        "pendulum",
        "--steps",
        "200",
        "--n-points",
        "64",
        "--observable",
        "p**2/2 + 9.81*(1 - cos(q))",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0
    d = json.loads((out / "metrics.json").read_text())
    assert d["integrator"] == "verlet"
    assert d["divergence_rms"] < 1e-12
    assert d["loop_gap_relative"] < 1e-10
    assert d["symplecticity_defect_max"] < 1e-12  # Verlet's step is symplectic
    assert abs(d["area_ratio"] - 1) < 1e-5  # Verlet keeps area; the rest is the loop's discretisation
    assert d["energy_error"]["verdict"] == "bounded"
    assert d["bracket"]["max_abs_normalised"] < 1e-12  # {H, H} = 0
    for name in ("energy_error.png", "transported_loop.png", "vector_field.png", "phase_portrait.png"):
        assert (out / name).stat().st_size > 10_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An HNN and a G-SympNet trained briefly on the oscillator through the command line."""
    root = tmp_path_factory.mktemp("models")
    for kind in ("hnn", "sympnet-g"):
        argv = [
            "train",
            "--system",
            "oscillator",
            "--model",
            kind,
            "--steps",
            "150",
            "--n-traj",
            "12",
            "--width",
            "16",
            "--out",
            str(root / kind),
            "--quiet",
        ]
        assert main(argv) == 0
    return root


def test_train_rollout_and_diagnose_a_model(capsys, trained, tmp_path):
    folder = trained / "hnn"
    for name in ("model.safetensors", "config.json", "metrics.json", "loss.png"):
        assert (folder / name).is_file()
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model"]["kind"] == "hnn" and cfg["system"]["name"] == "oscillator"
    out = tmp_path / "roll"
    code, _, _ = run_cli(
        capsys,
        "rollout",
        str(folder),
        "--steps",
        "100",
        "--dt",
        "0.1",
        "--n-traj",
        "3",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0
    with np.load(out / "trajectory.npz", allow_pickle=False) as f:
        z, z_true, e_true, e_model = f["z"], f["z_true"], f["energy_true"], f["energy_model"]
    assert z.shape == z_true.shape == (101, 3, 2) and e_model.shape == (101, 3)
    summary = json.loads((out / "metrics.json").read_text())
    rel = np.abs(e_true - e_true[0]) / np.abs(e_true[0])
    assert summary["max_rel_energy_error"] == pytest.approx(rel.max(), rel=1e-9)
    assert summary["integrator"] == "implicit-midpoint"
    # implicit midpoint conserves a learned energy only to its tolerance in general, but the
    # model's own energy must stay far closer to constant than an untrained field would allow
    assert np.abs(e_model - e_model[0]).max() < 1e-3 * np.abs(e_model).max()
    diag = tmp_path / "diag"
    assert (
        run_cli(
            capsys,
            "diagnose",
            str(folder),
            "--steps",
            "100",
            "--n-points",
            "32",
            "--out",
            str(diag),
            "--quiet",
        )[0]
        == 0
    )
    d = json.loads((diag / "metrics.json").read_text())
    assert d["integrator"] == "gauss-legendre-4"  # an HNN is not separable: the exact flow's stand-in
    assert d["divergence_rms"] < 1e-10 and d["loop_gap_relative"] < 1e-8  # structural, any weights


def test_sympnet_rolls_out_with_its_own_step_and_is_symplectic(capsys, trained, tmp_path):
    folder = trained / "sympnet-g"
    code, _, err = run_cli(
        capsys, "rollout", str(folder), "--steps", "10", "--dt", "0.05", "--out", str(tmp_path / "bad")
    )
    assert code == 2 and "flow map of step 0.1" in err
    diag = tmp_path / "diag"
    assert (
        run_cli(
            capsys,
            "diagnose",
            str(folder),
            "--steps",
            "50",
            "--n-points",
            "32",
            "--out",
            str(diag),
            "--quiet",
        )[0]
        == 0
    )
    d = json.loads((diag / "metrics.json").read_text())
    assert d["integrator"] == "own step"
    assert d["symplecticity_defect_max"] < 1e-10
    assert abs(d["area_ratio"] - 1) < 1e-6
