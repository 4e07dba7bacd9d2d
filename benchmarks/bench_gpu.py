"""Device checks on CUDA, in one go: correctness against CPU float64, and throughput.

Run ``python benchmarks/bench_gpu.py`` on a machine with a GPU (about a minute; ``--quick`` for a
smaller run); it writes ``benchmarks/results/gpu.json`` and prints a summary. Without CUDA it
says so and exits with status 2 (nothing written). Each check is independent: one that fails is
recorded with its error and the others still run (exit status 1 when any failed or missed its
bound).

Correctness (float64 on both devices, the CPU result is the reference):

* ``integrate``: a pendulum (ground truth) and a random HNN integrated by Verlet, implicit
  midpoint, Gauss-Legendre 4 and RK4 over 200 steps from 256 states; max |z_cuda - z_cpu|
  (bound 1e-10: round-off of different summation orders, amplified by the dynamics);
* ``diagnostics``: energy error of those trajectories and the map symplecticity of an HNN flow
  (bound 1e-10 absolute on the reported numbers);
* ``fit``: 50 steps of an HNN on pendulum data (same seed and minibatches: the sampler's
  generator lives on the CPU), max weight difference (bound 1e-9);
* ``ensemble``: ``fit_ensemble`` of 4 HNNs, 50 steps, max weight difference (bound 1e-9).

Throughput (float32, CUDA, with a CPU number at a smaller size for scale):

* ``rollout``: HNN (width 128, depth 2) under Verlet and RK4, ``N`` states x 100 steps, under
  ``torch.inference_mode``, states * steps per second;
* ``training``: ``fit`` steps per second at batch 256 and 4096; and K = 32 HNNs (width 64,
  batch 256) trained together by ``fit_ensemble`` against 32 sequential ``fit`` runs (the
  ensemble speed-up the issue asks for on a GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import torch

from symplearn._files import machine_info, write_json
from symplearn.datasets import generate_dataset
from symplearn.diagnostics import energy_error, map_symplecticity, transport_loop
from symplearn.integrators import integrate
from symplearn.integrators.discretize import discretize
from symplearn.models import build_model
from symplearn.systems import get_system
from symplearn.training import fit, fit_ensemble, seed_everything

#: the device under test; ``--device cpu`` runs the same code on the CPU (a smoke test of this
#: script where no GPU is present: the numbers then mean nothing)
DEV = "cuda"
RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"
INTEGRATORS = ("verlet", "implicit-midpoint", "gauss-legendre-4", "rk4")


def _sync():
    if DEV.startswith("cuda"):
        torch.cuda.synchronize()


def _hnn(width=32, dtype=torch.float64, kind="hnn-separable"):
    seed_everything(0)
    return build_model(kind, n_dof=1, width=width, depth=2).to(dtype)


def check_integrate(q: bool) -> dict:
    n, steps = (32, 50) if q else (256, 200)
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(n, 2, dtype=torch.float64, generator=g)
    out = {}
    for name in ("pendulum", "hnn"):
        dyn = get_system("pendulum") if name == "pendulum" else _hnn()
        for integ in INTEGRATORS:
            with torch.inference_mode():
                a = integrate(discretize(dyn, integ, 0.05), z0, steps).z
                dyn_c = dyn.to(DEV) if isinstance(dyn, torch.nn.Module) else dyn
                b = integrate(discretize(dyn_c, integ, 0.05), z0.to(DEV), steps).z
                if isinstance(dyn, torch.nn.Module):
                    dyn.cpu()
            out[f"{name}/{integ}"] = float((b.cpu() - a).abs().max())
    worst = max(out.values())
    return {"max_abs_diff": out, "worst": worst, "bound": 1e-10, "ok": worst <= 1e-10}


def check_diagnostics(q: bool) -> dict:
    n, steps = (16, 50) if q else (128, 200)
    z0 = torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    sysm = get_system("pendulum")
    res = {}
    for dev in ("cpu", DEV):
        with torch.inference_mode():
            traj = integrate(discretize(sysm, "verlet", 0.05), z0.to(dev), steps)
        e = energy_error(sysm, traj)
        model = _hnn().to(dev)
        sym = map_symplecticity(discretize(model, "implicit-midpoint", 0.05), z0.to(dev))
        res[dev] = {"energy_max": float(e.max), "symplecticity": sym.max_defect}
    diff = max(abs(res[DEV][k] - res["cpu"][k]) for k in res["cpu"])
    return {"values": res, "max_abs_diff": diff, "bound": 1e-10, "ok": diff <= 1e-10}


def check_transport_loop(q: bool) -> dict:
    th = 2 * torch.pi * torch.arange(64, dtype=torch.float64) / 64
    loop = torch.stack([1.0 + 0.3 * th.cos(), 0.3 * th.sin()], -1)
    areas = {}
    for dev in ("cpu", DEV):
        flow = discretize(get_system("pendulum"), "verlet", 0.05)
        res = transport_loop(flow, loop.to(dev), 40 if q else 200, save_every=20)
        areas[dev] = res.areas.detach().cpu().double()
    diff = float((areas[DEV] - areas["cpu"]).abs().max())
    return {"max_area_diff": diff, "bound": 1e-10, "ok": diff <= 1e-10}


def check_fit(q: bool) -> dict:
    ds = generate_dataset("pendulum", n_traj=16, dt=0.1, n_steps=50, seed=0)
    weights = {}
    for dev in ("cpu", DEV):
        model = _hnn(kind="hnn")
        fit(model, ds, steps=20 if q else 50, batch_size=64, seed=0, progress=False, device=dev)
        weights[dev] = {k: v.cpu() for k, v in model.state_dict().items()}
    diff = max(float((weights[DEV][k] - w).abs().max()) for k, w in weights["cpu"].items())
    return {"max_weight_diff": diff, "bound": 1e-9, "ok": diff <= 1e-9}


def check_ensemble(q: bool) -> dict:
    ds = generate_dataset("pendulum", n_traj=16, dt=0.1, n_steps=50, seed=0)
    cfg = {"kind": "hnn", "n_dof": 1, "width": 32, "depth": 2}
    kw = {"seeds": 4, "steps": 20 if q else 50, "batch_size": 64, "dtype": torch.float64, "progress": False}
    a = fit_ensemble(cfg, ds, **kw)
    b = fit_ensemble(cfg, ds, device=DEV, **kw)
    diff = max(
        float((mb.state_dict()[k].cpu() - w).abs().max())
        for ma, mb in zip(a.models, b.models)
        for k, w in ma.state_dict().items()
    )
    return {"max_weight_diff": diff, "bound": 1e-9, "ok": diff <= 1e-9}


def bench_rollout(q: bool) -> dict:
    seed_everything(0)
    model = build_model("hnn-separable", n_dof=1, width=128, depth=2)
    steps = 20 if q else 100
    out = {}
    for dev, sizes in (("cpu", [4096]), (DEV, [4096, 65536] if q else [4096, 65536, 1048576])):
        model.to(dev)
        for integ in ("verlet", "rk4"):
            flow = discretize(model, integ, 0.01)
            for n in sizes:
                z = torch.randn(n, 2, device=dev)
                with torch.inference_mode():
                    integrate(flow, z, 2, check_finite=False)  # warm-up
                    _sync()
                    t0 = time.perf_counter()
                    integrate(flow, z, steps, save_every=steps, check_finite=False)
                    _sync()
                    dt = time.perf_counter() - t0
                out[f"{dev}/{integ}/N={n}"] = {"seconds": dt, "state_steps_per_s": n * steps / dt}
    model.cpu()
    return out


def bench_training(q: bool) -> dict:
    ds = generate_dataset("pendulum", n_traj=64, dt=0.1, n_steps=100, seed=0, dtype=torch.float32)
    steps = 20 if q else 200
    out = {}
    for batch in (256, 4096):
        model = _hnn(width=64, dtype=torch.float32, kind="hnn")
        fit(model, ds, steps=2, batch_size=batch, progress=False, device=DEV)  # warm-up
        _sync()
        t0 = time.perf_counter()
        fit(model, ds, steps=steps, batch_size=batch, progress=False, device=DEV, log_every=steps)
        _sync()
        out[f"fit/batch={batch}"] = {"steps_per_s": steps / (time.perf_counter() - t0)}
    K = 8 if q else 32
    cfg = {"kind": "hnn", "n_dof": 1, "width": 64, "depth": 2}
    t0 = time.perf_counter()
    for s in range(K):
        seed_everything(s)
        fit(
            build_model(**cfg),
            ds,
            steps=steps,
            batch_size=256,
            seed=s,
            progress=False,
            device=DEV,
            log_every=steps,
        )
    _sync()
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit_ensemble(cfg, ds, seeds=K, steps=steps, batch_size=256, progress=False, device=DEV, log_every=steps)
    _sync()
    ens = time.perf_counter() - t0
    out["ensemble"] = {"k": K, "steps": steps, "sequential_s": seq, "ensemble_s": ens, "speedup": seq / ens}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--device", default="cuda", help="device under test (cpu: smoke test only)")
    args = ap.parse_args()
    global DEV
    DEV = args.device
    if DEV.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; nothing to check (run it where a GPU is present)")
        return 2
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    record: dict = {
        "benchmark": "gpu",
        "quick": args.quick,
        "device": torch.cuda.get_device_name(0) if DEV.startswith("cuda") else DEV,
        "torch": torch.__version__,
        "cuda_version": torch.version.cuda,
        "machine": machine_info(),
    }
    failed = False
    for name, fn in (
        ("integrate", check_integrate),
        ("diagnostics", check_diagnostics),
        ("transport_loop", check_transport_loop),
        ("fit", check_fit),
        ("ensemble", check_ensemble),
        ("rollout", bench_rollout),
        ("training", bench_training),
    ):
        t0 = time.perf_counter()
        try:
            record[name] = fn(args.quick)
            if record[name].get("ok") is False:
                failed = True
        except Exception as err:  # record and go on: one broken check must not hide the others
            failed = True
            record[name] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        record[name]["wall_s"] = time.perf_counter() - t0
        print(f"{name}: { ({k: v for k, v in record[name].items() if k != 'traceback'}) }", flush=True)
    write_json(args.out, record)
    print(f"written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
