"""Time through fit (every loss at the data's t) and a user's trajectory files (npz, CSV) through
`symplearn train --data` and `symplearn rollout`, with one clear line for each bad input."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from symplearn.cli import main
from symplearn.datasets import TrainingData, generate_dataset, load_trajectories
from symplearn.integrators.discretize import discretize
from symplearn.modelio import load_model
from symplearn.models import PHNN, build_model
from symplearn.systems import get_port_system
from symplearn.training import fit, fit_ensemble, seed_everything
from symplearn.training.losses import derivative_loss, rollout_loss


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- time through fit ------------------------------------------------------------------------
def _forcing_fit(F: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Least-squares ``F ~ a sin(3t) + b cos(3t) + c``: ``(a, b, c)``."""
    B = torch.stack([torch.sin(3 * t), torch.cos(3 * t), torch.ones_like(t)], -1)
    return torch.linalg.lstsq(B, F[:, None]).solution[:, 0]


def test_losses_evaluate_the_field_at_the_samples_time():
    # the true forced field matches its own data exactly only at the right times
    system = get_port_system("forced-spring")  # q'' = -q + sin(3t)
    ds = generate_dataset(system, n_traj=3, dt=0.1, n_steps=30, seed=0)
    td = TrainingData.from_dataset(ds)
    z, dzdt, t = td.z.reshape(-1, 2), td.dzdt.reshape(-1, 2), td.t.reshape(-1)
    assert float(derivative_loss(system, z, dzdt, t)) < 1e-24
    assert float(derivative_loss(system, z, dzdt)) > 0.1  # t = 0: the forcing sin(0) = 0 is wrong
    # rollout windows starting at t = 1.0 (index 10): exact with their start time, not at t = 0
    flow = discretize(system, "rk4", 0.01)
    window = td.z[10:13]  # (3, K, 2)
    assert float(rollout_loss(flow, window, substeps=10, t0=td.t[10])) < 1e-12
    assert float(rollout_loss(flow, window, substeps=10)) > 1e-4


def test_autonomous_fit_unchanged_by_times():
    # the same seed gives the same weights whether the data carries its times or not
    ds = generate_dataset("oscillator", n_traj=6, dt=0.1, n_steps=20, seed=1)
    weights = []
    for data in (ds, replace(TrainingData.from_dataset(ds), t=None)):
        seed_everything(0)
        model = build_model("hnn", n_dof=1, width=16, depth=2).double()
        fit(model, data, steps=40, batch_size=32, seed=2, progress=False)
        weights.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_ensemble_of_a_time_dependent_model_sees_the_times_as_fit_does():
    ds = generate_dataset("forced-spring", n_traj=8, dt=0.1, n_steps=30, seed=0)
    config = build_model("mlp-t", n_dof=1, width=16, depth=2).config
    ens = fit_ensemble(config, ds, seeds=[0], steps=50, batch_size=64, progress=False, dtype=torch.float64)
    seed_everything(0)
    model = build_model("mlp-t", n_dof=1, width=16, depth=2).double()
    alone = fit(model, ds, steps=50, batch_size=64, seed=0, progress=False)
    assert ens.results[0].train_loss == pytest.approx(alone.train_loss, rel=1e-9)


def test_fit_recovers_the_forcing_of_time():
    # a PHNN trained through fit on the forced spring learns F(t) = sin(3t): amplitude within
    # 10 %, phase (the cos part) within 0.1. Without the times (t = 0 everywhere) it cannot.
    ds = generate_dataset("forced-spring", n_traj=16, dt=0.1, n_steps=50, seed=0)
    tf = torch.linspace(0, 5, 101, dtype=torch.float64)
    coef = {}
    for name, data in (("times", ds), ("no times", replace(TrainingData.from_dataset(ds), t=None))):
        seed_everything(0)
        model = PHNN(1, width=32, depth=2, dissipation="diagonal-p", forcing_width=16).double()
        fit(model, data, steps=800, batch_size=128, lr=3e-3, seed=0, progress=False)
        with torch.no_grad():
            coef[name] = _forcing_fit(model.forcing(tf)[..., 1], tf)
    a, b, _ = coef["times"].tolist()
    assert abs(math.hypot(a, b) - 1.0) < 0.1, coef["times"]
    assert abs(b) < 0.1, coef["times"]
    assert math.hypot(*coef["no times"][:2].tolist()) < 0.2, coef["no times"]


def test_cli_trains_phnn_on_the_forced_spring(tmp_path, capsys):
    code, out, err = run_cli(
        capsys,
        "train",
        "--system",
        "forced-spring",
        "--model",
        "phnn",
        "--n-traj",
        16,
        "--steps",
        800,
        "--width",
        32,
        "--lr",
        3e-3,
        "--dtype",
        "float64",
        "--out",
        tmp_path / "m",
        "--quiet",
    )
    assert code == 0, err
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["system"]["name"] == "forced-oscillator"
    model = load_model(tmp_path / "m")
    tf = torch.linspace(0, 5, 101, dtype=torch.float64)
    with torch.no_grad():
        a, b, _ = _forcing_fit(model.forcing(tf)[..., 1].double(), tf).tolist()
    assert abs(math.hypot(a, b) - 1.0) < 0.1 and abs(b) < 0.1, (a, b)


# -- a user's trajectory files ---------------------------------------------------------------
def _spring(n_traj=8, T=41, dt=0.1, seed=0):
    """Exact unit-spring trajectories q = A cos(t + phi), p = -A sin(t + phi): t (T,), q, p (K, T)."""
    rng = np.random.default_rng(seed)
    amp, phase = rng.uniform(0.5, 1.5, n_traj), rng.uniform(0, 2 * np.pi, n_traj)
    t = dt * np.arange(T)
    arg = t[None] + phase[:, None]
    return t, amp[:, None] * np.cos(arg), -amp[:, None] * np.sin(arg)


def _write_csv(path, t, q, p, *, header="traj,t,q1,p1"):
    with open(path, "w") as fh:
        fh.write(header + "\n")
        for k in range(q.shape[0]):
            for i in range(len(t)):
                fh.write(f"{k},{t[i]:.6f},{q[k, i]:.8f},{p[k, i]:.8f}\n")
    return path


def _field_error(folder, q, p) -> float:
    """Relative RMS error of the learned field against the truth (q' = p, p' = -q) at the states."""
    model = load_model(folder).double()
    z = torch.tensor(np.stack([q, p], -1).reshape(-1, 2))
    with torch.no_grad():
        v = model.vector_field(0.0, z)
    truth = torch.stack([z[:, 1], -z[:, 0]], -1)
    return float((v - truth).norm() / truth.norm())


@pytest.mark.parametrize("fmt", ["npz", "csv"])
def test_cli_trains_and_rolls_out_on_a_trajectory_file(tmp_path, capsys, fmt):
    t, q, p = _spring(n_traj=16)
    if fmt == "npz":
        data = tmp_path / "spring.npz"
        np.savez(data, t=t, q=q[..., None], p=p[..., None])
    else:
        data = _write_csv(tmp_path / "spring.csv", t, q, p)
    code, out, err = run_cli(
        capsys,
        "train",
        "--data",
        data,
        "--model",
        "hnn",
        "--steps",
        1500,
        "--width",
        32,
        "--out",
        tmp_path / "m",
    )
    assert code == 0, err
    assert "spring." + fmt in out
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "system" not in config and config["data"]["source"] == "trajectory file"
    assert config["data"]["dt"] == pytest.approx(0.1)
    # the field learned from finite differences (O(dt^2) = 0.2 %) is the spring's to 5 %
    assert _field_error(tmp_path / "m", q, p) < 0.05
    # rollout: from the held-out trajectories' first states, compared with their records
    code, out, err = run_cli(
        capsys, "rollout", tmp_path / "m", "--dt", 0.05, "--steps", 80, "--out", tmp_path / "r"
    )
    assert code == 0, err
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["system"] is None and m["t_compared"] == pytest.approx(4.0)
    assert m["n_trajectories"] == 3  # 20 % of 16 trajectories held out
    arrays = np.load(tmp_path / "r" / "trajectory.npz")
    np.testing.assert_allclose(arrays["z"][0], arrays["z_data"][0], atol=1e-6)  # the records' first states
    # a field 2-3 % off drifts by about that share of the amplitude (0.5..1.5) per unit of time
    assert m["state_error_max"] < 0.2
    # a command that needs a system says so and points to rollout
    code, _, err = run_cli(
        capsys, "diagnose", tmp_path / "m", "--dt", 0.1, "--steps", 10, "--out", tmp_path / "d"
    )
    assert code == 2 and "names no system" in err and "symplearn rollout" in err


def test_trajectory_file_shapes_split_and_derivatives(tmp_path):
    t, q, p = _spring(n_traj=5, T=21)
    # z (K, T, 2n), per-trajectory times with different starts, given derivatives
    z = np.stack([q, p], -1)
    tt = t[None] + np.arange(5)[:, None] * 0.37
    np.savez(tmp_path / "z.npz", t=tt, z=z, dzdt=np.stack([p, -q], -1))
    ds = load_trajectories(tmp_path / "z.npz", seed=3)
    assert ds.z.shape == (21, 5, 2) and ds.t.shape == (21, 5)
    assert torch.allclose(ds.t[0], torch.tensor(tt[:, 0]))
    assert len(ds.test_idx) == 1 and len(ds.train_idx) == 4
    assert ds.metadata["derivatives"] == "given (dzdt)"
    # without dzdt: second-order finite differences, error O(dt^2) against the exact derivatives
    np.savez(tmp_path / "fd.npz", t=np.broadcast_to(t, q.shape), q=q, p=p)  # (K, T): one degree of freedom
    fd = load_trajectories(tmp_path / "fd.npz")
    exact = torch.tensor(np.stack([p, -q], -1)).transpose(0, 1)
    err = float((fd.dzdt - exact).abs().max())
    assert 1e-5 < err < 0.1**2, err  # second order: below dt^2, but not exact
    # one trajectory: no axis for it, all of it trains
    np.savez(tmp_path / "one.npz", t=t, z=z[0])
    one = load_trajectories(tmp_path / "one.npz")
    assert one.z.shape == (21, 1, 2) and len(one.test_idx) == 0
    # q, qdot: Lagrangian data
    _write_csv(tmp_path / "l.csv", t, q, p, header="traj,t,q1,qdot1")
    assert load_trajectories(tmp_path / "l.csv").metadata["state_kind"] == "lagrangian"


def _bad_inputs(tmp_path):
    t, q, p = _spring(n_traj=3, T=11)
    z = np.stack([q, p], -1)
    cases = {}

    def npz(name, expect, **arrays):
        np.savez(tmp_path / f"{name}.npz", **arrays)
        cases[name] = (tmp_path / f"{name}.npz", expect)

    def csv(name, expect, text):
        (tmp_path / f"{name}.csv").write_text(text)
        cases[name] = (tmp_path / f"{name}.csv", expect)

    npz("no_t", "no array t", z=z)
    npz("no_states", "no states", t=t)
    npz("lengths", "t has shape (10,)", t=t[:10], z=z)
    npz("odd", "odd number of coordinates (3)", t=t, z=np.concatenate([z, z[..., :1]], -1))
    npz("unknown", "unknown array(s) dz_dt", t=t, z=z, dz_dt=z)
    npz("nan", "array z has NaN", t=t, z=np.where(np.arange(11)[None, :, None] == 4, np.nan, z))
    npz("monotone", "do not increase (t = 0.2 after 0.3", t=t[[0, 1, 3, 2, 4, 5, 6, 7, 8, 9, 10]], z=z)
    npz("uneven", "not equally spaced", t=t**1.5, z=z)
    npz("q_only", "without p (or qdot)", t=t, q=q)
    npz("p_and_qdot", "not both", t=t, q=q, p=p, qdot=p)
    npz("qp_shapes", "q has shape (3, 11) but p has shape (3, 10)", t=t, q=q, p=p[:, :10])
    npz("pickle", "not a readable .npz", t=t, z=np.array([z, "x"], dtype=object))
    npz("short", "at least 3", t=t[:2], z=z[:, :2])
    rows = "".join(f"{t[i]},{q[0, i]},{p[0, i]}\n" for i in range(11))
    csv("csv_no_t", "no t column", "time,q1,p1\n" + rows)
    csv("csv_unknown", "unknown column(s) energy", "t,q1,p1,energy\n" + rows.replace("\n", ",1\n"))
    csv("csv_odd", "3 state columns (q1, q2, p1)", "t,q1,q2,p1\n" + rows.replace("\n", ",0\n"))
    csv("csv_nan", "column p1: nan (NaN", "t,q1,p1\n" + rows.replace(f",{p[0, 5]}\n", ",nan\n", 1))
    csv("csv_text", "'abc' is not a number", "t,q1,p1\n" + rows.replace(f"{q[0, 3]},", "abc,", 1))
    csv("csv_row", "line 3: 2 values", "t,q1,p1\n" + rows.replace(f",{p[0, 1]}\n", "\n", 1))
    csv(
        "csv_lengths",
        "different numbers of rows",
        "traj,t,q,p\n" + "a,0,1,0\na,0.1,1,0\na,0.2,1,0\nb,0,1,0\n",
    )
    csv("csv_empty", "is empty", "\n")
    cases["suffix"] = (tmp_path / "x.txt", "a .npz or a .csv file")
    (tmp_path / "x.txt").write_text("t,q,p\n")
    return cases


def test_each_bad_trajectory_file_gets_one_clear_line(tmp_path, capsys):
    cases = _bad_inputs(tmp_path)
    for name, (path, expect) in cases.items():
        code, out, err = run_cli(
            capsys, "train", "--data", path, "--model", "hnn", "--out", tmp_path / f"o_{name}"
        )
        assert code == 2, (name, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, (name, err)
        assert expect in lines[0], (name, lines[0])
        assert not (tmp_path / f"o_{name}").exists(), name


def test_system_with_a_trajectory_file_is_refused(tmp_path, capsys):
    t, q, p = _spring(n_traj=2, T=11)
    data = _write_csv(tmp_path / "s.csv", t, q, p)
    code, _, err = run_cli(
        capsys, "train", "--data", data, "--system", "oscillator", "--model", "hnn", "--out", tmp_path / "o"
    )
    assert code == 2 and "names no system" in err
