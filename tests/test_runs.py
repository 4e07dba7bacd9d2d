"""The library runs (simulate, rollout, diagnose): numbers that follow from the mathematics, the
one run-folder layout, defaults that each kind declares, and bad input refused before any work."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

import symplearn as sl
from symplearn import cli
from symplearn._errors import SymplearnError
from symplearn.models import build_model
from symplearn.runs import diagnose, rollout, simulate
from symplearn.runs._states import to_canonical_states, to_model_states
from symplearn.systems import get_system

LAYOUT = ("config.json", "metrics.json", "report.md")


def _layout(folder, figures, run_module):
    """The files every run folder has, and no leftovers of the staging beside it."""
    for name in LAYOUT:
        assert (folder / name).is_file(), name
    for name in figures:
        assert (folder / name).stat().st_size > 10_000, name
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["run"] == run_module and "symplearn_version" in cfg and "torch_version" in cfg
    md = (folder / "report.md").read_text()
    assert all(f"]({name})" in md for name in figures)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left
    return json.loads((folder / "metrics.json").read_text())


@pytest.mark.parametrize("dt", [0.1, 0.05])
def test_simulate_oscillator_verlet_energy_error_is_the_dt2_band(tmp_path, dt):
    # Verlet conserves H~ = p^2/2 + (1 - dt^2/4) q^2/2 exactly on H = (q^2 + p^2)/2; from (1, 0)
    # the energy therefore swings between H0 and H0 - dt^2/8: a relative error of exactly dt^2/4
    # at q = 0, and never more.
    out = tmp_path / "sim"
    steps = int(round(20 * np.pi / dt))  # 10 periods: q passes near 0 many times
    report = simulate.run(
        simulate.Config(system="oscillator", dt=dt, steps=steps, z0=((1.0, 0.0),), quiet=True), out
    )
    m = _layout(out, ("energy_error.png", "phase_portrait.png"), "symplearn.runs.simulate")
    band = dt**2 / 4
    assert m["integrator"] == "verlet"  # the system's own default
    assert 0.99 * band < m["max_rel_energy_error"] <= band * (1 + 1e-9)
    assert m["energy_verdict"] == "bounded"
    assert m["max_rel_energy_error"] == report.metrics["max_rel_energy_error"]
    with np.load(out / "trajectory.npz", allow_pickle=False) as f:
        t, z, energy = f["t"], f["z"], f["energy"]
    assert t.shape == (steps + 1,) and z.shape == (steps + 1, 1, 2) and energy.shape == (steps + 1, 1)
    assert np.allclose(energy, 0.5 * (z**2).sum(-1), rtol=1e-15)


def test_simulate_same_seed_same_numbers(tmp_path):
    cfg = simulate.Config(system="pendulum", dt=0.05, steps=100, n_traj=3, seed=7, quiet=True)
    a, b = simulate.run(cfg, tmp_path / "a"), simulate.run(cfg, tmp_path / "b")
    assert a.metrics["max_rel_energy_error"] == b.metrics["max_rel_energy_error"]
    with np.load(tmp_path / "a" / "trajectory.npz") as fa, np.load(tmp_path / "b" / "trajectory.npz") as fb:
        assert np.array_equal(fa["z"], fb["z"])
    cfg2 = simulate.Config(system="pendulum", dt=0.05, steps=100, n_traj=3, seed=8, quiet=True)
    with np.load(tmp_path / "a" / "trajectory.npz") as fa:
        assert not np.array_equal(
            fa["z"][0], simulate.run(cfg2, tmp_path / "c").arrays["trajectory.npz"]["z"][0]
        )


def test_simulate_defaults_and_config_record_the_system(tmp_path):
    cfg = simulate.Config(system="double-pendulum", dt=0.01, steps=5).resolved()
    assert cfg.integrator == "implicit-midpoint"  # not separable: the system's default
    assert cfg.params == get_system("double-pendulum").params  # all parameters recorded
    assert simulate.Config(system="pendulum", dt=0.1, steps=5).resolved().integrator == "verlet"


def test_diagnose_henon_heiles_exact_structure(tmp_path):
    out = tmp_path / "diag"
    report = diagnose.run(diagnose.Config(target="henon-heiles", steps=200, n_points=32, quiet=True), out)
    m = _layout(out, ("energy_error.png", "transported_loop.png"), "symplearn.runs.diagnose")
    assert m["integrator"] == "verlet"  # separable: the exact flow's stand-in
    assert m["divergence_rms"] < 1e-13  # a Hamiltonian field: divergence zero to round-off
    assert m["loop_gap_relative"] < 1e-10  # i_X omega = -dH is exact: no gap around a loop
    assert m["symplecticity_defect_max"] < 1e-12  # Verlet's step is symplectic
    assert abs(m["area_ratio"] - 1) < 1e-4  # n = 2: the symplectic area sum_i A_i is invariant
    assert "area_ratio_plane0" in m and m["poincare_crossings"] > 0
    assert m["energy_error"]["verdict"] == "bounded"
    assert report.rows and "divergence RMS" in (out / "report.md").read_text()


def test_exact_flow_integrator_is_decided_by_type():
    assert diagnose.exact_flow_integrator(get_system("pendulum")) == "verlet"
    assert diagnose.exact_flow_integrator(get_system("henon-heiles")) == "verlet"
    assert diagnose.exact_flow_integrator(get_system("double-pendulum")) == "gauss-legendre-4"
    assert diagnose.exact_flow_integrator(build_model("hnn", n_dof=1, width=8)) == "gauss-legendre-4"
    assert diagnose.exact_flow_integrator(build_model("hnn-separable", n_dof=1, width=8)) == "verlet"


@pytest.fixture(scope="module")
def hnn_folder(tmp_path_factory):
    """An HNN trained briefly (200 steps) on oscillator slopes, saved as a model folder."""
    torch.manual_seed(0)
    system = get_system("oscillator")
    data = sl.generate_dataset(system, n_traj=16, dt=0.1, n_steps=30, seed=0)
    model = build_model("hnn", n_dof=1, width=16)
    result = sl.fit(model, data, steps=200, batch_size=128, lr=1e-2, seed=0, progress=False)
    folder = tmp_path_factory.mktemp("models") / "hnn"
    sl.save(model, folder, result=result)
    return folder


def test_rollout_of_a_trained_hnn(tmp_path, hnn_folder):
    out = tmp_path / "roll"
    rollout.run(rollout.Config(model_dir=str(hnn_folder), steps=200, dt=0.1, n_traj=3, quiet=True), out)
    m = _layout(out, ("energy_error.png", "phase_portrait.png"), "symplearn.runs.rollout")
    assert m["integrator"] == "implicit-midpoint"  # the HNN's own default_integrator
    assert m["model"] == "hnn" and m["system"] == "oscillator" and m["t_final"] == pytest.approx(20.0)
    assert np.isfinite(m["max_rel_energy_error"]) and np.isfinite(m["state_error_max"])
    with np.load(out / "trajectory.npz", allow_pickle=False) as f:
        z, z_true, e_true, e_model = f["z"], f["z_true"], f["energy_true"], f["energy_model"]
    assert z.shape == z_true.shape == (201, 3, 2)
    # the implicit midpoint rule conserves a quadratic energy exactly and any smooth one to
    # O(dt^3) per step: the model's own energy stays put however well it was trained
    assert m["max_rel_model_energy_error"] < 1e-3
    assert m["max_rel_model_energy_error"] == pytest.approx(
        (np.abs(e_model - e_model[0]) / np.abs(e_model[0])).max(), rel=1e-6
    )
    rel = np.abs(e_true - e_true[0]) / np.abs(e_true[0])
    assert m["max_rel_energy_error"] == pytest.approx(rel.max(), rel=1e-9)
    assert np.abs(z[0] - z_true[0]).max() == 0  # model and truth start from the same states


def test_rollout_refuses_an_integrator_that_does_not_suit_the_model(tmp_path, hnn_folder):
    with pytest.raises(SymplearnError, match="separable"):
        rollout.Config(model_dir=str(hnn_folder), steps=5, dt=0.1, integrator="verlet").resolved()
    with pytest.raises(SymplearnError, match="dt"):
        rollout.Config(model_dir=str(hnn_folder), steps=5).resolved()
    with pytest.raises(SymplearnError, match="no config.json"):
        rollout.Config(model_dir=str(tmp_path), steps=5, dt=0.1).resolved()


def test_legendre_map_conversions_round_trip():
    system = get_system("double-pendulum")  # a state-dependent mass matrix
    lnn = build_model("lnn", n_dof=2, width=8)
    z = system.sample(5, seed=1)
    x = to_model_states(lnn, system, z)
    assert torch.equal(x[:, :2], z[:, :2]) and not torch.allclose(x, z)
    assert torch.allclose(to_canonical_states(lnn, system, x), z, rtol=1e-14, atol=1e-14)
    hnn = build_model("hnn", n_dof=2, width=8)
    assert to_model_states(hnn, system, z) is z and to_canonical_states(hnn, system, z) is z


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (simulate.Config(system="pendulum", dt=-0.1, steps=5), "dt must be a positive finite number"),
        (simulate.Config(system="pendulum", dt=0.1, steps=0), "steps must be an integer >= 1"),
        (simulate.Config(system="pendulm", dt=0.1, steps=5), "did you mean 'pendulum'"),
        (simulate.Config(system="pendulum", dt=0.1, steps=5, dtype="float16"), "float64"),
        (simulate.Config(system="pendulum", dt=0.1, steps=5, z0=((1.0,),)), "2 (q's then p's)"),
        (simulate.Config(system="double-pendulum", dt=0.1, steps=5, integrator="verlet"), "separable"),
        (simulate.Config(system="pendulum", dt=0.1, steps=10**13), "--save-every"),
        (diagnose.Config(target="pendulum", observable="q2*p"), "valid names: q0, p0, q, p"),
        (diagnose.Config(target="pendulum", loop=((0.0, 0.0), (1.0, 0.0))), "at least 3"),
        (diagnose.Config(target="pendulum", n_points=1), "n_points must be an integer >= 2"),
        (diagnose.Config(target="pendulum", observable=""), "not an arithmetic expression"),
    ],
)
def test_bad_configs_say_what_is_wrong_before_any_work(tmp_path, config, needle):
    module = sys.modules[type(config).__module__]
    with pytest.raises(SymplearnError) as err:
        module.run(config, tmp_path / "out")
    assert needle in str(err.value)
    assert not (tmp_path / "out").exists()


def test_output_folder_checked_before_the_work_and_replaced_whole(tmp_path, monkeypatch):
    cfg = simulate.Config(system="oscillator", dt=0.1, steps=10, quiet=True)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(SymplearnError, match="not a folder"):
        simulate.run(cfg, afile)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.ods").write_text("precious")
    with pytest.raises(SymplearnError, match="notes.ods"):
        simulate.run(cfg, user)
    assert (user / "notes.ods").read_text() == "precious"
    # a previous run's folder is replaced whole: a figure the new run does not make is gone
    out = tmp_path / "run"
    diagnose.run(diagnose.Config(target="oscillator", steps=20, n_points=8, lyapunov=True, quiet=True), out)
    assert (out / "lyapunov.png").is_file()
    diagnose.run(diagnose.Config(target="oscillator", steps=20, n_points=8, quiet=True), out)
    assert not (out / "lyapunov.png").exists() and (out / "transported_loop.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine", "run"]  # nothing staged left
    monkeypatch.chdir(out)
    with pytest.raises(SymplearnError, match="current folder"):
        simulate.run(cfg, ".")


def test_cli_discovers_run_modules_skips_missing_and_reports_broken(tmp_path, monkeypatch, capsys):
    (tmp_path / "brokenrun.py").write_text("import symplearn_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "RUN_MODULES", [*cli.RUN_MODULES, "symplearn.runs.not_yet", "brokenrun"])
    choices = cli.build_parser()._subparsers._group_actions[0].choices
    assert {"simulate", "rollout", "diagnose", "brokenrun"} <= set(choices)
    assert "not_yet" not in choices  # a module that does not exist yet: no command
    assert cli.main(["brokenrun", "--anything"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "symplearn_no_such_dependency" in err


def test_cli_run_subcommands_exit_2_with_one_line(tmp_path, capsys):
    import subprocess

    afile = tmp_path / "f"
    afile.write_text("")
    for argv in (
        ["simulate", "oscillator", "--dt", "0.1", "--steps", "5", "--out", str(afile)],
        ["diagnose", "pendulum", "--param", "L=-1", "--out", str(tmp_path / "d")],
        ["diagnose", "pendulum", "--loop", "0,0;1,0;1,1", "--out", str(tmp_path / "d")],
    ):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"symplearn {argv[0]}: error:")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = ["rollout", str(tmp_path / "nothing"), "--steps", "5", "--dt", "0.1", "--out", str(tmp_path / "r")]
    proc = subprocess.run(
        [sys.executable, "-m", "symplearn", *argv], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "does not exist" in proc.stderr
    assert not list(tmp_path.glob("[dr]")) and not list(tmp_path.glob(".*"))


# -- names made objects once ---------------------------------------------------------------
def _count(monkeypatch, owner, name):
    """Replace ``owner.name`` by a wrapper that records each call (and still calls it)."""
    calls, real = [], getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_simulate_builds_system_and_flow_once_per_run_and_per_command(tmp_path, monkeypatch):
    systems = _count(monkeypatch, simulate, "get_system")
    flows = _count(monkeypatch, simulate, "discretize")
    cfg = simulate.Config(system="pendulum", dt=0.05, steps=20, n_traj=2, seed=3, quiet=True)
    report = simulate.run(cfg, tmp_path / "a")
    assert (len(systems), len(flows)) == (1, 1)
    argv = ["simulate", "pendulum", "--dt", "0.05", "--steps", "20", "--n-traj", "2", "--seed", "3"]
    assert cli.main([*argv, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert (len(systems), len(flows)) == (2, 2)
    setup = cfg.build()  # the built setup runs as it is: nothing is built again
    assert setup.config == cfg.resolved() and setup.flow.integrator.name == "verlet"
    assert (len(systems), len(flows)) == (4, 4)
    again = simulate.run(setup, tmp_path / "c")
    assert (len(systems), len(flows)) == (4, 4)
    z = report.arrays["trajectory.npz"]["z"]
    assert torch.equal(again.arrays["trajectory.npz"]["z"], z)
    with np.load(tmp_path / "b" / "trajectory.npz") as f:
        assert np.array_equal(f["z"], z.numpy())  # the command runs the same numbers


@pytest.fixture(scope="module")
def sympnet_folder(tmp_path_factory):
    """A G-SympNet trained briefly on oscillator pairs (a flow map of step 0.1)."""
    torch.manual_seed(0)
    data = sl.generate_dataset(get_system("oscillator"), n_traj=8, dt=0.1, n_steps=20, seed=0)
    model = build_model("sympnet-g", n_dof=1, layers=2, width=8, dt=0.1)
    result = sl.fit(model, data, steps=20, batch_size=64, lr=1e-2, seed=0, progress=False)
    folder = tmp_path_factory.mktemp("models") / "sympnet"
    sl.save(model, folder, result=result)
    return folder


@pytest.mark.parametrize("which", ["hnn", "sympnet"])
def test_rollout_loads_the_model_folder_once(tmp_path, monkeypatch, hnn_folder, sympnet_folder, which):
    folder = hnn_folder if which == "hnn" else sympnet_folder
    models = _count(monkeypatch, rollout, "load_model")
    configs = _count(monkeypatch, rollout, "load_run_config")
    flows = _count(monkeypatch, rollout, "discretize")
    dt = 0.1 if which == "hnn" else None
    rollout.run(rollout.Config(model_dir=str(folder), steps=10, dt=dt, n_traj=2, quiet=True), tmp_path / "a")
    assert (len(models), len(configs), len(flows)) == (1, 1, 1)
    argv = ["rollout", str(folder), "--steps", "10", "--n-traj", "2", *(["--dt", "0.1"] * (dt is not None))]
    assert cli.main([*argv, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert (len(models), len(configs), len(flows)) == (2, 2, 2)
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert a["integrator"] == b["integrator"] == ("implicit-midpoint" if which == "hnn" else "own step")
    assert a["state_error_max"] == b["state_error_max"]


def test_diagnose_builds_its_target_once(tmp_path, monkeypatch, hnn_folder):
    systems = _count(monkeypatch, diagnose, "get_system")
    models = _count(monkeypatch, diagnose, "load_model")
    flows = _count(monkeypatch, diagnose, "discretize")
    observables = _count(monkeypatch, diagnose, "parse_observable")
    cfg = diagnose.Config(target="oscillator", steps=10, n_points=8, observable="q*p", quiet=True)
    m = diagnose.run(cfg, tmp_path / "a").metrics
    assert (len(systems), len(models), len(flows), len(observables)) == (1, 0, 1, 1)
    argv = ["diagnose", str(hnn_folder), "--steps", "10", "--n-points", "8", "--out", str(tmp_path / "b")]
    assert cli.main([*argv, "--quiet"]) == 0
    assert (len(systems), len(models), len(flows), len(observables)) == (1, 1, 2, 1)
    # {q p, H} = p^2 - q^2 on the oscillator: not conserved, and measured with the parsed observable
    assert m["bracket"]["observable"] == "q*p" and m["bracket"]["max_abs_normalised"] > 0.1
