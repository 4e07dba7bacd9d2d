"""Training-step cost of the learnable models, on the CPU.

What is measured:

1. **HNN vs MLP, one training step** (forward, derivative-matching loss, backward, Adam step) at
   the same width, depth and batch (default: 2 degrees of freedom, width 128, depth 2, batch 512,
   float32), for torch thread counts 1 and 2. Three variants, timed in interleaved rounds (each
   round times every variant back to back, in rotating order; the median over rounds is
   reported, and the ratio is the median of the per-round ratios):

   * ``mlp``: :class:`~symplearn.models.MLPField`;
   * ``hnn``: :class:`~symplearn.models.HNN`, whose field ``J grad H`` uses the energy
     network's closed-form input gradient (two extra matrix products per layer, no autograd
     inside the forward pass, so the loss trains with one ordinary backward);
   * ``hnn-autograd``: the same HNN with the field by ``torch.autograd.grad(create_graph=True)``
     (double backward), the textbook implementation, for reference.

   Goal: ``hnn`` at most 2.0 times ``mlp``.
2. **LNN accelerations**: :class:`~symplearn.models.LNN` (2 degrees of freedom, width 64,
   depth 2, float32), ``acceleration(q, q_dot)`` on a batch (``torch.func`` vmap of forward-mode
   derivatives of the closed-form gradient, one batched solve) against Python loops over the
   samples: ``loop-same`` calls the same solver on one sample at a time; ``loop-autograd`` is
   the textbook per-sample code (``torch.autograd.functional.hessian`` and ``jacobian`` of
   ``L``, ``torch.linalg.solve``). The loops are timed on a subset and scaled per sample (their
   cost is linear in the number of samples). Goal: batched at least 20 times faster than the
   faster loop.
3. **SympNets**: steps per second of each kind (default sizes, 2 degrees of freedom, float32) on
   a batch of 4096 states, forward only (``torch.no_grad``) and as a training step (one-step
   rollout loss, backward, Adam).

Run ``python benchmarks/bench_training.py`` (under a minute on 2 cores); ``--quick`` for a smoke
run. Results: ``benchmarks/results/training.json`` and a markdown table on stdout. The machine
may be shared: the load average at start and end is recorded, and every number is a median of
interleaved rounds so that a burst of load hits all variants alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from symplearn._files import machine_info, write_json
from symplearn.dynamics import split
from symplearn.geometry import apply_J
from symplearn.models import HNN, LNN, MLPField, build_model

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"
GOAL_HNN_OVER_MLP = 2.0
GOAL_LNN_SPEEDUP = 20.0


@dataclass
class Config:
    """Benchmark settings (defaults are the published run)."""

    n_dof: int = 2
    width: int = 128
    depth: int = 2
    batch: int = 512
    threads: tuple[int, ...] = (1, 2)
    rounds: int = 15
    steps_per_round: int = 10
    lnn_batch: int = 1024
    lnn_loop_samples: int = 64
    lnn_rounds: int = 5
    sympnet_batch: int = 4096
    sympnet_rounds: int = 5
    sympnet_steps: int = 10
    seed: int = 0
    quick: bool = False
    out: Path = field(default_factory=lambda: RESULTS)

    @classmethod
    def quick_config(cls, out: Path) -> Config:
        return cls(
            rounds=2,
            steps_per_round=3,
            lnn_batch=128,
            lnn_loop_samples=8,
            lnn_rounds=2,
            sympnet_batch=512,
            sympnet_rounds=2,
            sympnet_steps=2,
            quick=True,
            out=out,
        )


def _timed(fn: Callable[[], object], n: int) -> float:
    """Seconds per call of ``fn``, over ``n`` calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def interleaved(
    fns: dict[str, Callable[[], object]], rounds: int, n: int, *, max_s: float = 0.25
) -> dict[str, list[float]]:
    """Per-round seconds per call of each function; each round runs all of them back to back, in
    an order rotated every round. One untimed warm-up call each first, which also sets the calls
    per timing: ``n``, or fewer so that one timing takes at most about ``max_s`` seconds (keeps
    the run short when the machine is oversubscribed)."""
    calls = {}
    for k, fn in fns.items():
        t = _timed(fn, 1)
        calls[k] = max(1, min(n, int(max_s / max(t, 1e-9))))
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for k in order:
            times[k].append(_timed(fns[k], calls[k]))
    return times


# -- 1. HNN vs MLP -----------------------------------------------------------------------------
class _AutogradHNN(HNN):
    """The HNN field by double backward (reference implementation, benchmark only)."""

    def vector_field(self, t, z: Tensor) -> Tensor:
        with torch.enable_grad():
            x = z if z.requires_grad else z.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.energy_net(x).sum(), x, create_graph=True)
        return apply_J(g)


def _train_step(model, loss_fn) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model)
        loss.backward()
        opt.step()

    return step


def bench_hnn_vs_mlp(cfg: Config) -> dict:
    d = 2 * cfg.n_dof
    gen = torch.Generator().manual_seed(cfg.seed)
    z = torch.randn(cfg.batch, d, generator=gen)
    dzdt = torch.randn(cfg.batch, d, generator=gen)

    def loss(model):
        return (model.vector_field(0.0, z) - dzdt).pow(2).sum(-1).mean()

    out = {}
    for nt in cfg.threads:
        torch.set_num_threads(nt)
        torch.manual_seed(cfg.seed)
        kw = {"n_dof": cfg.n_dof, "width": cfg.width, "depth": cfg.depth, "activation": "tanh"}
        models = {"mlp": MLPField(**kw), "hnn": HNN(**kw), "hnn-autograd": _AutogradHNN(**kw)}
        steps = {k: _train_step(m, loss) for k, m in models.items()}
        times = interleaved(steps, cfg.rounds, cfg.steps_per_round)
        ratio = [h / m for h, m in zip(times["hnn"], times["mlp"])]
        ratio_ag = [h / m for h, m in zip(times["hnn-autograd"], times["mlp"])]
        out[str(nt)] = {
            "ms_per_step": {k: 1e3 * statistics.median(v) for k, v in times.items()},
            "ms_per_step_per_round": {k: [1e3 * t for t in v] for k, v in times.items()},
            "ms_per_step_best": {k: 1e3 * min(v) for k, v in times.items()},
            "hnn_over_mlp": statistics.median(ratio),
            "hnn_over_mlp_per_round": ratio,
            "hnn_over_mlp_best_times": min(times["hnn"]) / min(times["mlp"]),
            "hnn_autograd_over_mlp": statistics.median(ratio_ag),
            "goal_met": statistics.median(ratio) <= GOAL_HNN_OVER_MLP,
        }
        print(
            f"[hnn vs mlp] {nt} thread(s): hnn/mlp = {out[str(nt)]['hnn_over_mlp']:.2f} "
            f"(autograd hnn/mlp = {out[str(nt)]['hnn_autograd_over_mlp']:.2f})",
            file=sys.stderr,
        )
    torch.set_num_threads(1)
    return out


# -- 2. LNN accelerations -------------------------------------------------------------------
def bench_lnn(cfg: Config) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    n = cfg.n_dof
    model = LNN(n, width=64, depth=2)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    x = torch.randn(cfg.lnn_batch, 2 * n, generator=gen)
    q, qdot = split(x)
    m = cfg.lnn_loop_samples

    def batched() -> Tensor:
        return model.acceleration(q, qdot)

    def loop_same() -> Tensor:
        return torch.stack([model.acceleration(q[i], qdot[i]) for i in range(m)])

    def L(xi: Tensor) -> Tensor:
        return model.lagrangian(xi[:n], xi[n:])

    def loop_autograd() -> Tensor:
        out = []
        for i in range(m):
            xi = x[i]
            H = torch.autograd.functional.hessian(L, xi)
            g = torch.autograd.functional.jacobian(L, xi)
            rhs = g[:n] - H[n:, :n] @ xi[n:]
            out.append(torch.linalg.solve(H[n:, n:], rhs))
        return torch.stack(out)

    # the three agree (float32 round-off)
    ref = batched()
    err_same = float((loop_same() - ref[:m]).abs().max())
    err_ag = float((loop_autograd() - ref[:m]).abs().max())
    times = interleaved(
        {"batched": batched, "loop-same": loop_same, "loop-autograd": loop_autograd}, cfg.lnn_rounds, 1
    )
    per_sample = {
        "batched": [t / cfg.lnn_batch for t in times["batched"]],
        "loop-same": [t / m for t in times["loop-same"]],
        "loop-autograd": [t / m for t in times["loop-autograd"]],
    }
    speed_same = [ls / b for ls, b in zip(per_sample["loop-same"], per_sample["batched"])]
    speed_ag = [la / b for la, b in zip(per_sample["loop-autograd"], per_sample["batched"])]
    best_loop = min(statistics.median(speed_same), statistics.median(speed_ag))
    out = {
        "batch": cfg.lnn_batch,
        "loop_samples_timed": m,
        "us_per_sample": {k: 1e6 * statistics.median(v) for k, v in per_sample.items()},
        "speedup_vs_loop_same": statistics.median(speed_same),
        "speedup_vs_loop_autograd": statistics.median(speed_ag),
        "speedup_vs_faster_loop": best_loop,
        "max_abs_difference_vs_loops": [err_same, err_ag],
        "goal_met": best_loop >= GOAL_LNN_SPEEDUP,
    }
    print(
        f"[lnn] batched vs loop: {out['speedup_vs_loop_same']:.0f}x (same solver), "
        f"{out['speedup_vs_loop_autograd']:.0f}x (autograd.functional)",
        file=sys.stderr,
    )
    return out


# -- 3. SympNets ------------------------------------------------------------------------------
def bench_sympnets(cfg: Config) -> dict:
    torch.set_num_threads(1)
    n, B = cfg.n_dof, cfg.sympnet_batch
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    z = torch.randn(B, 2 * n, generator=gen)
    target = torch.randn(B, 2 * n, generator=gen)
    fns, models = {}, {}
    for kind in ("sympnet-la", "sympnet-g", "sympnet-grad"):
        torch.manual_seed(cfg.seed)
        model = build_model(kind, n_dof=n, dt=0.1)
        models[kind] = model

        def forward(model=model) -> Tensor:
            with torch.no_grad():
                return model.step(0.0, z)

        fns[f"{kind}/forward"] = forward
        fns[f"{kind}/train"] = _train_step(
            model, lambda mdl: (mdl.step(0.0, z) - target).pow(2).sum(-1).mean()
        )
    times = interleaved(fns, cfg.sympnet_rounds, cfg.sympnet_steps)
    out = {}
    for kind, model in models.items():
        fwd = statistics.median(times[f"{kind}/forward"])
        trn = statistics.median(times[f"{kind}/train"])
        out[kind] = {
            "config": model.config,
            "parameters": sum(p.numel() for p in model.parameters()),
            "batch": B,
            "forward_steps_per_s": 1.0 / fwd,
            "forward_state_steps_per_s": B / fwd,
            "train_steps_per_s": 1.0 / trn,
            "train_ms_per_step": 1e3 * trn,
        }
    print(
        "[sympnet] " + ", ".join(f"{k}: {v['forward_steps_per_s']:.0f} fwd/s" for k, v in out.items()),
        file=sys.stderr,
    )
    return out


# -- report ---------------------------------------------------------------------------------
def _si(x: float) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def markdown(report: dict) -> str:
    cfg, mach = report["config"], report["machine"]
    load = mach["load_average_1_5_15"][0] if mach["load_average_1_5_15"] else float("nan")
    lines = [
        f"# Training-step cost{' (QUICK SMOKE RUN, not the published numbers)' if cfg['quick'] else ''}",
        "",
        f"CPU ({mach['cpu']}, {mach['cpus_available']} cores available, load average {load:.2f} at "
        f"start, {report['machine_end']['load_average_1']:.2f} at end), torch {mach['torch_version']}, "
        f"float32. Medians of interleaved rounds; total {report['total_wall_s']:.0f} s.",
        "",
        f"HNN vs MLP: {cfg['n_dof']} dof, width {cfg['width']}, depth {cfg['depth']}, batch "
        f"{cfg['batch']}, tanh; one step = forward + derivative loss + backward + Adam.",
        "",
        "| torch threads | MLP ms/step | HNN ms/step | HNN/MLP (range over rounds) | ratio of best times "
        "| goal | HNN by double backward: ms/step, ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for nt, r in report["hnn_vs_mlp"].items():
        ms, rr = r["ms_per_step"], r["hnn_over_mlp_per_round"]
        lines.append(
            f"| {nt} | {ms['mlp']:.2f} | {ms['hnn']:.2f} | **{r['hnn_over_mlp']:.2f}x** "
            f"({min(rr):.2f}-{max(rr):.2f}) | {r['hnn_over_mlp_best_times']:.2f}x | "
            f"<= {GOAL_HNN_OVER_MLP:g}x {'met' if r['goal_met'] else 'MISSED'} | "
            f"{ms['hnn-autograd']:.2f}, {r['hnn_autograd_over_mlp']:.2f}x |"
        )
    lines += [
        "",
        "ms/step: median over rounds; HNN/MLP: median of the per-round ratios (each round times both "
        "back to back), range in parentheses; best times: the ratio of the fastest rounds (the "
        "least disturbed by other load).",
    ]
    lnn = report["lnn"]
    us = lnn["us_per_sample"]
    lines += [
        "",
        f"LNN accelerations ({cfg['n_dof']} dof, width 64, depth 2, batch {lnn['batch']}, 1 thread):",
        "",
        "| batched us/sample | loop (same solver) us/sample | loop (autograd.functional) us/sample "
        "| speed-up vs faster loop | goal |",
        "|---|---|---|---|---|",
        f"| {us['batched']:.2f} | {us['loop-same']:.0f} | {us['loop-autograd']:.0f} | "
        f"**{lnn['speedup_vs_faster_loop']:.0f}x** | >= {GOAL_LNN_SPEEDUP:g}x "
        f"{'met' if lnn['goal_met'] else 'MISSED'} |",
        "",
        f"SympNets ({cfg['n_dof']} dof, default sizes, batch {cfg['sympnet_batch']}, 1 thread):",
        "",
        "| kind | parameters | forward steps/s | state-steps/s | training steps/s |",
        "|---|---|---|---|---|",
    ]
    for kind, r in report["sympnet"].items():
        lines.append(
            f"| {kind} | {r['parameters']} | {r['forward_steps_per_s']:.0f} | "
            f"{_si(r['forward_state_steps_per_s'])} | {r['train_steps_per_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def run(cfg: Config) -> dict:
    t0 = time.perf_counter()
    machine = machine_info()
    report = {
        "benchmark": "training",
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k != "out"},
        "machine": machine,
        "hnn_vs_mlp": bench_hnn_vs_mlp(cfg),
        "lnn": bench_lnn(cfg),
        "sympnet": bench_sympnets(cfg),
    }
    report["machine_end"] = {"load_average_1": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    report["threads_note"] = (
        "torch.set_num_threads is set explicitly for every measurement (1 and 2 for HNN vs MLP, "
        "1 elsewhere); the test suite and training default to 1 thread per process"
    )
    report["total_wall_s"] = time.perf_counter() - t0
    write_json(cfg.out, report)
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: small batches, 2 rounds (written to a temp file)"
    )
    ap.add_argument("--out", type=Path, default=None, help=f"JSON file (default {RESULTS})")
    args = ap.parse_args(argv)
    # a smoke run never overwrites the published results
    out = args.out or (
        Path(tempfile.gettempdir()) / "symplearn-bench-training-quick.json" if args.quick else RESULTS
    )
    cfg = Config.quick_config(out) if args.quick else Config(out=out)
    report = run(cfg)
    print(markdown(report))
    print(f"wrote {cfg.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
