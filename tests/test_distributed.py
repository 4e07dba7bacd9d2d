"""Data-parallel fit() under torch.distributed: 2 CPU processes (gloo, loopback 127.0.0.1 only)
launched by torchrun train the same seeded model as one process with the same global batch, and a
killed-and-resumed DDP run ends where an uninterrupted one does; the documented command
`torchrun --standalone --nproc-per-node 2 -m symplearn train ...` writes one model folder (rank 0)
equal to a one-process run's, and its errors reach every rank."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import symplearn
from symplearn._errors import SymplearnError
from symplearn._files import check_complete
from symplearn.cli import main
from symplearn.datasets import generate_dataset
from symplearn.modelio import load_model
from symplearn.models import build_model
from symplearn.training import distributed, fit, seed_everything
from symplearn.training.distributed import ShardedBatchSampler

STEPS, BATCH, EVERY, KILL_AT = 20, 32, 10, 15

WORKER = (
    textwrap.dedent(
        """
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    import symplearn.training.fit
    fit_module = sys.modules["symplearn.training.fit"]  # the attribute `fit` is the function
    from symplearn.datasets import generate_dataset
    from symplearn.models import build_model
    from symplearn.training import distributed, fit, seed_everything

    def run(out, resume=False, kill_at=0):
        ds = generate_dataset("pendulum", n_traj=8, dt=0.1, n_steps=20, seed=0)
        seed_everything(0)
        model = build_model("hnn", n_dof=1, width=16, depth=2).double()
        if kill_at:  # die abruptly (no cleanup, like SIGKILL) after step kill_at, on every rank
            class Killer(fit_module.Progress):
                def update(self, n=1, **info):
                    super().update(n, **info)
                    self.done = getattr(self, "done", 0) + n
                    if self.done >= kill_at:
                        os._exit(3)
            fit_module.Progress = Killer
        r = fit(model, ds, steps=STEPS, batch_size=BATCH, seed=0, progress=False,
                checkpoint_dir=os.path.join(out, "ckpt"), checkpoint_every=EVERY, resume=resume)
        if distributed.is_main_process():
            torch.save(model.state_dict(), os.path.join(out, "weights.pt"))
            with open(os.path.join(out, "history.json"), "w") as f:
                json.dump({"history": r.history, "world": distributed.world_size()}, f)

    distributed.init_from_env("cpu")
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "full-then-killed":
        run(os.path.join(out, "full"))
        run(os.path.join(out, "killed"), kill_at=KILL_AT)
    else:
        run(os.path.join(out, "killed"), resume=True)
    distributed.shutdown()
    """
    )
    .replace("STEPS", str(STEPS))
    .replace("BATCH", str(BATCH))
    .replace("EVERY", str(EVERY))
)
WORKER = WORKER.replace("KILL_AT", str(KILL_AT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    src = str(Path(symplearn.__file__).resolve().parents[1])
    return {
        **os.environ,
        "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
    }


def _torchrun(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = _env()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2"]
    cmd += ["--master-addr", "127.0.0.1", "--master-port", str(_free_port()), "--max-restarts", "0"]
    return subprocess.run(cmd + [str(script), *args], env=env, capture_output=True, text=True, timeout=300)


def test_sampler_shards_partition_the_global_batch():
    # the two ranks' shards, concatenated, are the single-process minibatch
    # (10 examples on 3 ranks: shards of 4, 3, 3)
    values = torch.randn(100, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    one = ShardedBatchSampler(100, 10, seed=4)
    ranks = [ShardedBatchSampler(100, 10, seed=4, rank=r, world=3) for r in range(3)]
    for _ in range(3):
        idx, w = one.next()
        parts = [s.next() for s in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), idx) and w == 1.0
        # weights W b_r / B: the weighted shard means, averaged over ranks (what DDP does with
        # the gradients), give the mean over the global batch
        ddp_mean = sum(wr * values[ir].mean() for ir, wr in parts) / 3
        assert float(ddp_mean) == pytest.approx(float(values[idx].mean()), rel=1e-14)


@pytest.mark.slow
def test_ddp_two_processes_match_one_process_and_resume(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    first = _torchrun(script, "full-then-killed", str(tmp_path))
    assert first.returncode != 0, "the killed run should have died"
    assert (tmp_path / "full" / "weights.pt").is_file(), first.stderr[-3000:]
    assert not (tmp_path / "killed" / "weights.pt").exists()
    ckpt = torch.load(tmp_path / "killed" / "ckpt" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == EVERY  # died between checkpoints: steps 11..15 are lost
    second = _torchrun(script, "resume", str(tmp_path))
    assert second.returncode == 0, second.stderr[-3000:]

    full = torch.load(tmp_path / "full" / "weights.pt", weights_only=True)
    resumed = torch.load(tmp_path / "killed" / "weights.pt", weights_only=True)
    # (b) resumed DDP == uninterrupted DDP, bit for bit (same ops in the same order)
    for name, w in full.items():
        assert torch.equal(resumed[name], w), name

    # (a) DDP (2 x 16 examples, gradients averaged) == one process (32 examples), float64: the
    # sums reassociate, so equality to round-off (measured max difference ~1e-16; bound 1e-12)
    ds = generate_dataset("pendulum", n_traj=8, dt=0.1, n_steps=20, seed=0)
    seed_everything(0)
    model = build_model("hnn", n_dof=1, width=16, depth=2).double()
    single = fit(model, ds, steps=STEPS, batch_size=BATCH, seed=0, progress=False)
    for name, w in model.state_dict().items():
        torch.testing.assert_close(full[name], w, rtol=0, atol=1e-12)
    record = json.loads((tmp_path / "full" / "history.json").read_text())
    assert record["world"] == 2
    torch.testing.assert_close(
        torch.tensor(record["history"]["train_loss"]),
        torch.tensor(single.history["train_loss"]),
        rtol=1e-12,
        atol=0,
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none present here)")
def test_fit_on_cuda_matches_cpu_float64():
    # same seed, data, batches (the sampler's generator lives on the CPU on purpose, so the
    # minibatches are the same on every device); the deferred finiteness checks keep the
    # stepping loop free of host syncs; float64 weights agree to amplified round-off (bound 1e-9;
    # not run here: no GPU)
    ds = generate_dataset("pendulum", n_traj=8, dt=0.1, n_steps=20, seed=0)
    out = {}
    for device in ("cpu", "cuda"):
        seed_everything(0)
        model = build_model("hnn", n_dof=1, width=16, depth=2).double()
        result = fit(model, ds, steps=STEPS, batch_size=BATCH, seed=0, progress=False, device=device)
        out[device] = (model.cpu().state_dict(), result)
    for name, w in out["cpu"][0].items():
        torch.testing.assert_close(out["cuda"][0][name], w, rtol=0, atol=1e-9)
    assert out["cuda"][1].train_loss == pytest.approx(out["cpu"][1].train_loss, rel=1e-9)


# -- the command line under torchrun ------------------------------------------------------
#: the command of docs/cli.md; `torchrun` is `python -m torch.distributed.run` of this interpreter
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "symplearn"]
#: a small model on a small data set; a global batch of 32 drawn from ~130 training states, so
#: the minibatches are sampled (with replacement) and each rank's shard is half of each one
TRAIN = ["train", "--data", "d.npz", "--model", "hnn", "--width", "16", "--steps", "30", "--batch-size", "32"]


def _readme_torchrun(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, *TORCHRUN, *args]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)


def _data(folder: Path) -> None:
    # the documented way to a data set file: `symplearn generate` (8 pendulum trajectories)
    assert (
        main(
            [
                "generate",
                "pendulum",
                "--n-traj",
                "8",
                "--steps",
                "20",
                "--out",
                str(folder / "d.npz"),
                "--quiet",
            ]
        )
        == 0
    )


@pytest.mark.slow
def test_readme_torchrun_train_matches_one_process(tmp_path, monkeypatch):
    """`torchrun --standalone --nproc-per-node 2 -m symplearn train ... --out ddp` (2 CPU
    processes, gloo) against `symplearn train ... --out single` (one process), same seed.

    Semantics: `--batch-size` is the global batch. Every rank draws the same 32 indices from the
    generator seeded with `--seed` (as the single process does) and evaluates its contiguous half;
    each shard's mean loss is weighted by its share and DDP averages the gradients, so every step
    applies the gradient of the same global-batch mean loss as the single process, up to the
    reassociation of the sums. So the two model folders hold the same weights to round-off: in
    float32 (the command's default dtype) measured max |difference| 1.5e-8 (weights of size ~0.1
    to 1); bound 1e-6. (A DDP run whose ranks do not average their gradients, each stepping on its
    own half batch, differs by 8.5e-3.)

    Rank 0 alone takes the folder's lock and writes it: the run leaves exactly one folder, whole
    (completion marker), no lock and no staging leftovers beside it, and one progress and one
    result line.
    """
    _data(tmp_path)
    ddp = _readme_torchrun(tmp_path, *TRAIN, "--out", "ddp")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    monkeypatch.chdir(tmp_path)
    assert main([*TRAIN, "--out", "single", "--quiet"]) == 0

    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.npz", "ddp", "single"]
    check_complete(tmp_path / "ddp", "model folder")
    assert ddp.stdout.count("model in ddp") == 1, ddp.stdout  # rank 0 alone prints
    assert ddp.stderr.count("fit: 30/30") == 1, ddp.stderr  # and shows progress
    a = load_model(tmp_path / "ddp").state_dict()
    b = load_model(tmp_path / "single").state_dict()
    assert a.keys() == b.keys()
    for name, w in b.items():
        assert w.dtype == torch.float32
        torch.testing.assert_close(a[name], w, rtol=0, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")
    m_ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    m_one = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert m_ddp["train_loss"] == pytest.approx(m_one["train_loss"], rel=1e-5)


@pytest.mark.slow
def test_readme_torchrun_lock_held_every_rank_reports_it(tmp_path):
    # another living symplearn run (this test's process) holds the folder's lock: rank 0 fails to
    # take it after the process group exists, rank 1 learns it from rank 0 instead of waiting;
    # both print one line, rank 0 exits 2, nothing is written, the other run's lock stays
    _data(tmp_path)
    lock = tmp_path / ".ddp.lock"
    lock.write_text(f"{os.getpid()}\n")
    run = _readme_torchrun(tmp_path, *TRAIN, "--out", "ddp")
    assert run.returncode != 0
    held = f"'ddp' is being written by another symplearn run (pid {os.getpid()}"
    assert f"symplearn train: error (rank 0): {held}" in run.stderr, run.stderr[-3000:]
    assert (
        f"symplearn train: error (rank 1): rank 0 could not take and create the output folder 'ddp': {held}"
        in run.stderr
    )
    assert "exitcode  : 2 " in run.stderr  # torchrun's summary: rank 0 exited 2 (no traceback)
    assert (
        f"{os.sep}symplearn{os.sep}" not in run.stderr
    )  # no traceback through symplearn (torchrun has its own)
    assert not (tmp_path / "ddp").exists()
    assert lock.read_text() == f"{os.getpid()}\n"


def test_train_under_torchrun_env_checks_input_before_the_group(tmp_path, monkeypatch, capsys):
    # rank 1 of 2 (as torchrun sets it): bad input is reported before any process group (which
    # would wait for rank 0), exit 2; and rank 1 does not take the folder's lock (held here)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    (tmp_path / ".out.lock").write_text(f"{os.getppid()}\n")  # a living process (our parent)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "missing.npz", "--model", "hnn", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symplearn train: error (rank 1): cannot load dataset 'missing.npz'"), err
    assert not dist.is_initialized()
    # --ensemble and the other commands run as one process: refused on every rank
    assert main(["train", "--system", "pendulum", "--model", "hnn", "--out", "e", "--ensemble", "2"]) == 2
    assert "--ensemble trains its K models in one process" in capsys.readouterr().err
    assert main(["simulate", "pendulum", "--dt", "0.1", "--steps", "10", "--out", "sim"]) == 2
    assert "symplearn simulate runs as one process; run it without torchrun" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock"]


def test_other_ranks_wait_for_rank_zero_with_a_timeout():
    store = dist.HashStore()
    with pytest.raises(SymplearnError, match=r"rank 0 did not write the folder within 0.2 s"):
        distributed._wait_outcome(store, "k", "write the folder", 0.2)
    store.set("k", "error:disk full")
    with pytest.raises(SymplearnError, match=r"^rank 0 could not write the folder: disk full$"):
        distributed._wait_outcome(store, "k", "write the folder", 0.2)
    store.set("ok-key", "ok")
    assert distributed._wait_outcome(store, "ok-key", "write the folder", 0.2) is None
    # without a process group the step simply runs here
    assert distributed.run_on_main("compute", lambda: 42) == 42
