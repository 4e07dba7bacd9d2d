"""Seed ensemble on one device against sequential runs, on the CPU.

What is measured: K = 32 HNNs (1 degree of freedom, pendulum data, width 64, depth 2, tanh,
float32, batch 256, Adam, cosine schedule) trained for the same number of steps

* ``sequential``: 32 calls of :func:`symplearn.training.fit`, seeds 0..31, one after another;
* ``ensemble``: one call of :func:`symplearn.training.fit_ensemble` with seeds 0..31 (stacked
  weights, one optimizer, the batched closed-form HNN gradient: one ``baddbmm``/``bmm`` per layer
  for all 32 networks);
* ``ensemble-vmap``: the same ensemble through the generic path (``torch.vmap`` over
  ``functional_call`` of the HNN), for reference.

Both train the same models on the same minibatches (per-model minibatches, seed k's sampler), so
the work is the same; one log point at the end (``log_every = steps``), so test-set evaluations
do not dominate. Timed for torch thread counts 1 and 2; each variant ``rounds`` times, in
rotating order, median reported; the speed-up is the median of per-round ratios. The machine is
shared (about 8 engineers on 2 cores while this was measured): the load average at start and
end is recorded; treat absolute times as noisy, ratios as the result.

Run ``nice -n 5 python benchmarks/bench_ensemble.py`` (a few minutes); ``--quick`` for a smoke
run. Results: ``benchmarks/results/ensemble.json`` and a table on stdout. Goal: ensemble at least
3x faster than sequential.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from symplearn._files import machine_info, write_json
from symplearn.datasets import generate_dataset
from symplearn.models import build_model
from symplearn.training import ensemble as ens
from symplearn.training import fit, seed_everything

RESULTS = Path(__file__).resolve().parent / "results" / "ensemble.json"
GOAL = 3.0


@dataclass
class Config:
    k: int = 32
    width: int = 64
    depth: int = 2
    batch: int = 256
    steps: int = 100
    threads: tuple[int, ...] = (1, 2)
    rounds: int = 3
    n_traj: int = 64
    quick: bool = False


def run_sequential(cfg: Config, model_config, ds) -> float:
    t0 = time.perf_counter()
    for s in range(cfg.k):
        seed_everything(s)
        m = build_model(**model_config)
        fit(m, ds, steps=cfg.steps, batch_size=cfg.batch, seed=s, progress=False, log_every=cfg.steps)
    return time.perf_counter() - t0


def run_ensemble(cfg: Config, model_config, ds, vmap: bool) -> float:
    orig = ens._batched_field
    if vmap:  # force the generic path

        def generic(base, P, B, x):
            def one(p, b, z):
                return torch.func.functional_call(base, (p, b), (0.0, z))

            return torch.vmap(one)(P, B, x)

        ens._batched_field = generic
    try:
        t0 = time.perf_counter()
        ens.fit_ensemble(
            model_config,
            ds,
            seeds=cfg.k,
            steps=cfg.steps,
            batch_size=cfg.batch,
            progress=False,
            log_every=cfg.steps,
        )
        return time.perf_counter() - t0
    finally:
        ens._batched_field = orig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    cfg = Config(quick=args.quick)
    if cfg.quick:
        cfg.k, cfg.steps, cfg.rounds, cfg.threads = 4, 10, 1, (1,)
    load_start = os.getloadavg()
    ds = generate_dataset("pendulum", n_traj=cfg.n_traj, dt=0.1, n_steps=100, seed=0, dtype=torch.float32)
    model_config = {"kind": "hnn", "n_dof": 1, "width": cfg.width, "depth": cfg.depth, "activation": "tanh"}
    # warm-up: the first optimizer imports torch._dynamo (seconds); keep that out of the timings
    run_ensemble(Config(k=2, steps=2), model_config, ds, vmap=False)
    run_sequential(Config(k=1, steps=2), model_config, ds)
    rows = []
    variants = ["sequential", "ensemble", "ensemble-vmap"]
    for threads in cfg.threads:
        torch.set_num_threads(threads)
        times = {v: [] for v in variants}
        for r in range(cfg.rounds):
            order = variants[r % 3 :] + variants[: r % 3]
            for v in order:
                if v == "sequential":
                    times[v].append(run_sequential(cfg, model_config, ds))
                else:
                    times[v].append(run_ensemble(cfg, model_config, ds, vmap=v == "ensemble-vmap"))
        speed = statistics.median(s / e for s, e in zip(times["sequential"], times["ensemble"]))
        speed_vmap = statistics.median(s / e for s, e in zip(times["sequential"], times["ensemble-vmap"]))
        rows.append(
            {
                "threads": threads,
                "seconds": {v: statistics.median(t) for v, t in times.items()},
                "all_seconds": times,
                "speedup_ensemble": speed,
                "speedup_vmap": speed_vmap,
                "goal_met": speed >= GOAL,
            }
        )
        print(
            f"threads {threads}: sequential {statistics.median(times['sequential']):.2f} s, "
            f"ensemble {statistics.median(times['ensemble']):.2f} s ({speed:.2f}x), "
            f"vmap {statistics.median(times['ensemble-vmap']):.2f} s ({speed_vmap:.2f}x)",
            flush=True,
        )
    record = {
        "benchmark": "ensemble",
        "config": asdict(cfg),
        "goal_speedup": GOAL,
        "results": rows,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "note": "shared machine (about 8 engineers on 2 cores): absolute times are noisy",
        "machine": machine_info(),
    }
    if not cfg.quick:
        write_json(args.out, record)
    print("| threads | sequential (s) | ensemble (s) | speed-up | vmap (s) | vmap speed-up |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        s = r["seconds"]
        print(
            f"| {r['threads']} | {s['sequential']:.2f} | {s['ensemble']:.2f} "
            f"| {r['speedup_ensemble']:.2f}x | "
            f"{s['ensemble-vmap']:.2f} | {r['speedup_vmap']:.2f}x |"
        )


if __name__ == "__main__":
    main()
