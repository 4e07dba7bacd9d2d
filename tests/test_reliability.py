"""Reliability (issue 9): folders appear whole or not at all, resume refuses other data, sizes and
paths are checked before the work, one run per folder, malformed files exit 2, no leftovers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import symplearn as sl
from symplearn import _files
from symplearn._errors import SymplearnError
from symplearn.cli import main
from symplearn.datasets import Dataset, generate_dataset
from symplearn.modelio import load_model, save_model
from symplearn.models import build_model
from symplearn.training import fit
from symplearn.training.checkpoint import load_checkpoint, save_checkpoint

SRC = str(Path(sl.__file__).resolve().parents[1])


def cli(*argv: str) -> tuple[int, str]:
    """Run the CLI in-process; return (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(list(argv))
        except SystemExit as exc:
            rc = exc.code
    return rc, err.getvalue()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _model(seed: int):
    torch.manual_seed(seed)
    return build_model("hnn", n_dof=1, width=8)


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- 1. a folder appears whole or not at all --------------------------------------------------
_KILLER = """
import os, signal, sys
sys.path.insert(0, {src!r})
import torch
from symplearn import _files
from symplearn.modelio import save_model
from symplearn.models import build_model
folder, k = sys.argv[1], int(sys.argv[2])
count = [0]
def killer(f):
    def g(*a, **kw):
        count[0] += 1
        if count[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return f(*a, **kw)
    return g
torch.manual_seed(1)
model = build_model("hnn", n_dof=1, width=8)
os.rename, os.replace, _files._exchange = killer(os.rename), killer(os.replace), killer(_files._exchange)
save_model(model, folder, config={{"cli": {{"seed": 1}}}})
"""


def _check_whole(folder: Path) -> int:
    """The folder loads, and its weights are those of the seed its config records."""
    _files.clean_stale(folder)  # what the next run into this place does first
    model = load_model(folder)
    seed = json.loads((folder / "config.json").read_text())["cli"]["seed"]
    assert _same_weights(model, _model(seed).eval())
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # nothing stale left
    return seed


def test_sigkill_at_every_rename_of_a_model_save_leaves_old_or_new_folder_whole(tmp_path):
    folder = tmp_path / "m"
    save_model(_model(0), folder, config={"cli": {"seed": 0}})
    (folder / "checkpoint").mkdir()
    (folder / "checkpoint" / "checkpoint.pt").write_bytes(b"kept")
    script = tmp_path / "killer.py"
    script.write_text(_KILLER.format(src=SRC))
    seen = []
    for k in range(1, 20):
        rc = subprocess.run([sys.executable, str(script), str(folder), str(k)]).returncode
        seed = _check_whole(folder)
        assert (folder / "checkpoint" / "checkpoint.pt").read_bytes() == b"kept"  # carried over
        seen.append((rc, seed))
        if rc == 0:
            break
        assert rc == -signal.SIGKILL and seed == 0  # killed before the folder appeared: the old one
    assert seen[-1] == (0, 1) and len(seen) >= 3  # several kill points tried, then the new folder


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_strace_sigkill_during_train_leaves_the_previous_model(tmp_path):
    """The issue's reproduction: SIGKILL injected at the k-th rename of `symplearn train` into a
    folder that holds a model of another seed."""
    base = ["--system", "oscillator", "--model", "hnn", "--n-traj", "4", "--traj-steps", "5"]
    base += ["--steps", "2", "--width", "8", "--quiet", "--out", str(tmp_path / "m")]
    env = {**os.environ, "PYTHONPATH": SRC}
    assert cli("train", *base, "--seed", "0")[0] == 0
    before = load_model(tmp_path / "m")
    calls = "rename,renameat,renameat2"
    for k in range(2, 20, 3):  # the checkpoint, then the files of the final save
        cmd = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={calls}"]
        cmd += ["-e", f"inject={calls}:signal=SIGKILL:when={k}", sys.executable, "-m", "symplearn"]
        proc = subprocess.run(cmd + ["train", *base, "--seed", "1"], env=env, capture_output=True)
        if proc.returncode == 0:
            break
        getattr(_files, "clean_stale", lambda p: None)(tmp_path / "m")  # (absent before issue 9)
        assert _same_weights(load_model(tmp_path / "m"), before)
        cfg = json.loads((tmp_path / "m" / "config.json").read_text())
        assert cfg["cli"]["seed"] == 0 and cfg["training"]["seed"] == 0


def test_a_folder_without_its_completion_marker_is_refused(tmp_path):
    folder = save_model(_model(0), tmp_path / "m")
    (folder / _files.COMPLETE_NAME).unlink()
    with pytest.raises(SymplearnError, match="not a complete model folder"):
        load_model(folder)
    save_model(_model(0), folder, metrics={"x": 1})
    (folder / "metrics.json").unlink()
    with pytest.raises(SymplearnError, match="has no metrics.json"):
        load_model(folder)


def test_an_interrupted_exchange_leaves_the_old_folder(tmp_path, monkeypatch):
    folder = save_model(_model(0), tmp_path / "m", config={"cli": {"seed": 0}})

    def fail(a, b):
        raise OSError("disk full")

    monkeypatch.setattr(_files, "_exchange", fail)
    with pytest.raises(OSError):
        save_model(_model(1), folder, config={"cli": {"seed": 1}})
    assert _check_whole(folder) == 0


# -- 2. resume refuses other data --------------------------------------------------------------
def test_resume_with_other_data_of_the_same_shapes_is_refused(tmp_path):
    data = generate_dataset("oscillator", n_traj=4, dt=0.1, n_steps=5, seed=0)
    noisy = generate_dataset("oscillator", n_traj=4, dt=0.1, n_steps=5, seed=0, noise_std=0.01)
    kw = dict(steps=2, batch_size=8, lr=1e-3, seed=0, progress=False, checkpoint_dir=tmp_path)
    fit(_model(0), data, **kw)
    with pytest.raises(SymplearnError, match="training_data_sha256") as err:
        fit(_model(0), noisy, resume=True, **kw)
    assert "settings differ" in str(err.value) and "steps" not in str(err.value).split("(")[1]
    assert fit(_model(0), data, resume=True, **kw).resumed_from == 2


# -- 3. sizes checked before the work ------------------------------------------------------------
def test_sizes_are_refused_before_the_work_with_the_estimate_and_the_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    rc, err = cli("simulate", "pendulum", "--dt", "0.1", "--steps", "1000000000000", "--out", "s")
    assert rc == 2 and "GiB" in err and "--save-every" in err
    rc, err = cli("generate", "pendulum", "--n-traj", "1000000000", "--out", "d.npz")
    assert rc == 2 and "GiB" in err and "--n-traj" in err
    rc, err = cli("train", "--system", "pendulum", "--model", "hnn", "--width", "1000000", "--out", "m")
    assert rc == 2 and "GiB" in err and "--width" in err
    assert time.perf_counter() - start < 10 and not list(tmp_path.iterdir())


def test_a_model_config_naming_a_huge_width_is_refused_before_building(tmp_path):
    folder = save_model(_model(0), tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["width"] = 20000
    (folder / "config.json").write_text(json.dumps(cfg))
    _files.write_complete_marker(folder)
    with pytest.raises(SymplearnError, match="does not belong to these weights"):
        load_model(folder)


# -- 4. output paths checked before the work -----------------------------------------------------
def test_output_paths_are_checked_before_the_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("mine")
    rc, err = cli("generate", "oscillator", "--out", ".", "--n-traj", "2", "--steps", "2")
    assert rc == 2 and "is a folder" in err
    rc, err = cli("train", "--system", "oscillator", "--model", "hnn", "--out", "file", "--steps", "1")
    assert rc == 2 and "not a folder" in err
    rc, err = cli("experiment", "spring", "--quick", "--out", "file/x")
    assert rc == 2 and "file" in err
    assert (tmp_path / "file").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == [
        "file"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_output_parent_is_refused_before_the_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = cli("simulate", "oscillator", "--dt", "0.1", "--steps", "2", "--out", str(ro / "x"))
        assert rc == 2 and "not writable" in err
    finally:
        ro.chmod(0o755)


# -- 5. threads -------------------------------------------------------------------------------------
def test_threads_beyond_the_cpu_count_are_refused():
    rc, err = cli("--threads", "100000", "systems")
    assert rc == 2 and f"has {os.cpu_count()} CPUs" in err


# -- 6. one run per folder ---------------------------------------------------------------------------
def test_a_second_run_into_a_locked_folder_exits_2_naming_the_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        Path(".s.lock").write_text(f"{holder.pid}\n")
        rc, err = cli("simulate", "oscillator", "--dt", "0.1", "--steps", "2", "--out", "s", "--quiet")
        assert rc == 2 and f"pid {holder.pid}" in err and not Path("s").exists()
    finally:
        holder.kill()
        holder.wait()
    Path(".s.lock").write_text(f"{_dead_pid()}\n")  # a stale lock is taken over
    assert cli("simulate", "oscillator", "--dt", "0.1", "--steps", "2", "--out", "s", "--quiet")[0] == 0
    assert Path("s/config.json").is_file() and not Path(".s.lock").exists()


def test_the_lock_is_exclusive_within_one_process(tmp_path):
    with _files.folder_lock(tmp_path / "out"):
        lock = tmp_path / ".out.lock"
        assert lock.read_text().strip() == str(os.getpid())
    assert not lock.exists()


# -- 7. malformed files exit 2 ------------------------------------------------------------------------
def _dataset(tmp_path) -> Path:
    path = tmp_path / "d.npz"
    generate_dataset("oscillator", n_traj=4, dt=0.1, n_steps=5, seed=0).save(path)
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.update(metadata="a string"), "field metadata must be a mapping"),
        (lambda s: s["metadata"]["system"].update(params=[1, 2]), "metadata.system.params must be a mapping"),
        (lambda s: s["metadata"].update(dt=-1), "metadata.dt must be a finite number > 0"),
        (lambda s: s["arrays"]["z"].update(shape="abc"), "shape must be a list"),
    ],
)
def test_a_malformed_dataset_sidecar_is_refused(tmp_path, edit, message):
    path = _dataset(tmp_path)
    side = json.loads(path.with_suffix(".json").read_text())
    edit(side)
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(SymplearnError, match=message):
        Dataset.load(path)
    rc, err = cli(
        "train", "--data", str(path), "--model", "hnn", "--out", str(tmp_path / "m"), "--steps", "1"
    )
    assert rc == 2 and "Traceback" not in err


def test_a_text_file_named_npz_is_not_called_pickled(tmp_path):
    path = _dataset(tmp_path)
    path.write_text("hello")
    with pytest.raises(SymplearnError, match="not a zip archive"):
        Dataset.load(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(data="a string"), "field data must be a mapping"),
        (lambda c: c.update(system={"params": {}}), "system.name is missing"),
        (lambda c: c["model"].update(width="8"), "model.width must be an integer"),
        (lambda c: c.update(model=[1]), "field model must be a mapping"),
    ],
)
def test_a_malformed_model_config_is_refused(tmp_path, edit, message):
    folder = save_model(_model(0), tmp_path / "m", config={"system": {"name": "oscillator", "params": {}}})
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    _files.write_complete_marker(folder)
    with pytest.raises(SymplearnError, match=message):
        load_model(folder)
    rc, err = cli("rollout", str(folder), "--steps", "2", "--out", str(tmp_path / "r"))
    assert rc == 2 and "Traceback" not in err and message in err


@pytest.fixture(scope="module")
def checkpoint_state(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    data = generate_dataset("oscillator", n_traj=4, dt=0.1, n_steps=5, seed=0)
    fit(_model(0), data, steps=2, batch_size=8, lr=1e-3, seed=0, progress=False, checkpoint_dir=d)
    return load_checkpoint(d / "checkpoint.pt")


def _other_optimizer(state):
    other = torch.optim.Adam(build_model("hnn", n_dof=1, width=5).parameters())
    for p in other.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    other.step()
    state["optimizer"] = other.state_dict()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("settings"), "settings is missing"),
        (lambda s: s["rng"].update(sampler=torch.zeros(3, dtype=torch.uint8)), "rng.sampler"),
        (_other_optimizer, "belongs to another model"),
        (lambda s: s.update(step="abc"), "step must be an integer"),
        (lambda s: s.update(step=-100), "step must be >= 0"),
        (lambda s: next(iter(s["model"].values())).fill_(float("nan")), "NaN"),
    ],
)
def test_a_malformed_checkpoint_is_refused_on_resume(tmp_path, checkpoint_state, edit, message):
    import copy

    state = copy.deepcopy(checkpoint_state)
    edit(state)
    save_checkpoint(tmp_path / "checkpoint.pt", {k: v for k, v in state.items() if k != "format"})
    data = generate_dataset("oscillator", n_traj=4, dt=0.1, n_steps=5, seed=0)
    with pytest.raises(SymplearnError, match=message):
        fit(
            _model(0),
            data,
            steps=4,
            batch_size=8,
            lr=1e-3,
            progress=False,
            checkpoint_dir=tmp_path,
            resume=True,
        )


# -- 8. library gaps ------------------------------------------------------------------------------
def test_library_edges():
    system = sl.get_system("pendulum")
    with pytest.raises(SymplearnError, match="floating-point"):
        sl.integrate(sl.discretize(system, "verlet", 0.1), torch.tensor([[1, 0]]), 3)
    empty = sl.integrate(
        sl.discretize(system, "gauss-legendre-4", 0.1), torch.zeros(0, 2, dtype=torch.float64), 3
    )
    assert tuple(empty.z.shape) == (4, 0, 2)
    traj = sl.integrate(
        sl.discretize(system, "verlet", np.float32(0.1)), torch.zeros(1, 2, dtype=torch.float64), 3
    )
    assert traj.t[-1].item() == pytest.approx(0.3, rel=1e-6)


def test_hamiltonian_of_a_wrongly_shaped_state_is_refused():
    system = sl.get_system("pendulum")
    with pytest.raises(SymplearnError, match=r"states have shape \(\.\.\., 2\); got shape \(3, 5\)"):
        system.hamiltonian(torch.zeros(3, 5, dtype=torch.float64))


def test_a_learning_rate_that_overflows_float32_is_caught(tmp_path):
    rc, err = cli(
        "train", "--system", "oscillator", "--model", "hnn", "--lr", "1e38", "--out", str(tmp_path / "m")
    )
    assert rc == 2 and "overflows float32" in err and not (tmp_path / "m").exists()


# -- 9. leftovers ------------------------------------------------------------------------------------
def test_a_failed_training_leaves_no_folder(tmp_path):
    out = tmp_path / "a" / "m"
    args = ["train", "--system", "oscillator", "--model", "mlp", "--n-traj", "4", "--traj-steps", "5"]
    rc, err = cli(*args, "--steps", "3", "--lr", "1e30", "--width", "8", "--out", str(out), "--quiet")
    assert rc == 2 and "loss became inf" in err
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_dead_processes_are_cleaned_on_the_next_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dead = _dead_pid()
    (tmp_path / f".s.{dead}.abc.tmp").mkdir()
    (tmp_path / f".s.{dead}.abc.tmp" / "metrics.json").write_text("{}")
    (tmp_path / f".s.{os.getpid()}.live.tmp").mkdir()  # a living writer's: kept
    assert cli("simulate", "oscillator", "--dt", "0.1", "--steps", "2", "--out", "s", "--quiet")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".s.{os.getpid()}.live.tmp", "s"]
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / f".checkpoint.pt.{dead}.x.tmp").write_bytes(b"half")
    data = generate_dataset("oscillator", n_traj=4, dt=0.1, n_steps=5, seed=0)
    fit(_model(0), data, steps=1, batch_size=8, lr=1e-3, progress=False, checkpoint_dir=ck)
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint.pt"]


def test_sigterm_is_an_interrupt_that_leaves_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    cmd = [sys.executable, "-m", "symplearn", "simulate", "pendulum", "--n-traj", "64", "--dt", "0.01"]
    cmd += ["--steps", "5000000", "--save-every", "1000", "--out", "s", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / ".s.lock").exists() and time.monotonic() < deadline:  # the run has begun
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and b"interrupted" in err and b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_rerunning_diagnose_without_lyapunov_drops_the_old_figure(tmp_path):
    args = [
        "diagnose",
        "oscillator",
        "--steps",
        "20",
        "--n-points",
        "8",
        "--out",
        str(tmp_path / "d"),
        "--quiet",
    ]
    assert cli(*args, "--lyapunov")[0] == 0 and (tmp_path / "d" / "lyapunov.png").is_file()
    assert cli(*args)[0] == 0 and not (tmp_path / "d" / "lyapunov.png").exists()


# -- 10. smaller ones ---------------------------------------------------------------------------------
def test_smaller_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _dataset(tmp_path)
    rc, err = cli("train", "--data", str(data), "--param", "g=1", "--model", "hnn", "--out", "m")
    assert rc == 2 and "--param" in err and not Path("m").exists()
    (tmp_path / "pendulum").mkdir()  # a folder named like a system does not shadow it
    (tmp_path / "pendulum" / "config.json").write_text("{}")
    rc, err = cli("diagnose", "pendulum", "--steps", "5", "--n-points", "4", "--out", "d", "--quiet")
    assert rc == 0, err
    rc, err = cli("diagnose", "oscillator", "--observable", "", "--out", "e")
    assert rc == 2 and "observable" in err
    rc, err = cli("diagnose", "oscillator", "--observable", "+".join(["q"] * 1500), "--out", "e")
    assert rc == 2 and "observable" in err and "Traceback" not in err
    limit = sys.getrecursionlimit()  # the same answer where a library raised the limit (dynamo does)
    try:
        sys.setrecursionlimit(100_000)
        rc, err = cli("diagnose", "oscillator", "--observable", "+".join(["q"] * 1500), "--out", "e")
    finally:
        sys.setrecursionlimit(limit)
    assert rc == 2 and "1500 levels deep" in err
    rc, err = cli("diagnose", "oscillator", "--n-points", "1", "--out", "e")
    assert rc == 2 and "nan" not in err
