"""Data-parallel fit() under torch.distributed: 2 CPU processes (gloo, loopback 127.0.0.1 only)
launched by torchrun train the same seeded model as one process with the same global batch, and a
killed-and-resumed DDP run ends where an uninterrupted one does."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import symplearn
from symplearn.datasets import generate_dataset
from symplearn.models import build_model
from symplearn.training import fit, seed_everything
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


def _torchrun(script: Path, *args: str) -> subprocess.CompletedProcess:
    src = str(Path(symplearn.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
    }
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
