"""Learned-potential MD speed: NVE steps per second on the CPU.

What is measured, at N = 108 and 256 Lennard-Jones particles (density 0.8442, float64, one torch
thread, velocity Verlet at dt = 0.005 from one Langevin-equilibrated state at T = 1):

* ``true LJ``: the true fluid (jax-md switched cutoff 2.0-2.5) through ``discretize(system,
  "verlet", dt)`` and ``integrate``;
* ``conservative``: the symmetry-function model (:class:`~symplearn.models.potentials.
  SymmetryFunctionPotential`, 12 radial functions, width 32, depth 2) the same way;
* ``conservative, eager torch``: the same model with ``fused = False`` (the torch path that the
  fused C kernel of :mod:`symplearn.models._fused` replaces in MD);
* ``direct``: the direct-force model of the same size, the same way;
* ``conservative via ASE``: the same conservative model as an ASE calculator
  (:class:`symplearn.ase.SymplearnCalculator`) driven by ASE's ``VelocityVerlet``.

The models' weights do not change the cost (untrained, descriptors standardised on the state);
pass ``--model FOLDER`` to time a trained model (at its own N only). The process keeps freed
memory for reuse (``md.retain_freed_memory``), as ``symplearn md --potential`` runs a learned
potential (with glibc's defaults, freed arrays can be unmapped and faulted in again on the next
force call: a loop of eager force calls at N = 256 measured 3.1 vs 2.0 ms a call;
``--default-malloc`` keeps the defaults). At N = 108 the box is too small for a Verlet list
(``L / 2 - 2.5 < 0.1``): all pairs, filtered to the cutoff; at N = 256 the vesin list (skin
0.3). Every variant first runs one untimed round (its first calls build caches and warm the
allocator), then the variants are timed in interleaved rounds of 400 steps (median over 5
rounds), so that load bursts on a shared machine hit all alike. Rounds of 100 steps (0.04-0.1 s
each, the protocol before 2026-12-08) moved the ratio by +-15 % between runs of one commit. The
1-minute load is recorded before and after; a run that starts or ends above 1.5 is marked
``loaded`` (not a result).

Run ``taskset -c 0 python benchmarks/bench_learned_md.py`` (about two minutes); results in
``benchmarks/results/learned_md.json`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from symplearn import md
from symplearn._files import machine_info
from symplearn.integrators import integrate
from symplearn.integrators.discretize import discretize
from symplearn.md import langevin_baoab
from symplearn.models import _fused, build_model
from symplearn.systems.particles import LennardJones

MAX_LOAD = 1.5  # 1-minute load above which a run is marked loaded


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[108, 256], help="numbers of particles")
    ap.add_argument("--steps", type=int, default=400, help="NVE steps per timing")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", default=None, help="a trained model folder (default: an untrained one)")
    ap.add_argument("--default-malloc", action="store_true", help="keep glibc's default memory policy")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "learned_md.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    retained = False if args.default_malloc else md.retain_freed_memory()
    info_start = machine_info()
    per_n = {}
    for n in args.n:
        per_n[str(n)] = _measure(n, args)
    result = {
        "results": per_n,
        "settings": {
            "n_particles": args.n,
            "steps": args.steps,
            "rounds": args.rounds,
            "model": args.model,
            "freed_memory_retained": retained,
        },
        "machine_start": info_start,
        "machine_end": machine_info(),
    }
    loads = [info_start["load_average_1_5_15"], result["machine_end"]["load_average_1_5_15"]]
    result["loaded"] = any(x is not None and x[0] > MAX_LOAD for x in loads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    names = list(next(iter(per_n.values()))["steps_per_s"])
    print("| variant | " + " | ".join(f"N = {n} steps/s" for n in per_n) + " |")
    print("|---|" + "---:|" * len(per_n))
    for k in names:
        print(f"| {k} | " + " | ".join(f"{r['steps_per_s'][k]:.1f}" for r in per_n.values()) + " |")
    if result["loaded"]:
        print(f"\nLOADED: the 1-minute load was above {MAX_LOAD} ({loads}): these are not results")
    for n, r in per_n.items():
        print(
            f"N = {n}: conservative / true LJ {r['conservative_over_true']:.3f}; "
            f"fused / eager {r['fused_over_eager']:.2f}; "
            f"symplearn Verlet / ASE VelocityVerlet (same model) {r['symplearn_over_ase']:.2f}"
        )
    return result


def _measure(n: int, args) -> dict:
    """Steps per second of the four variants at N = n (interleaved rounds, medians)."""
    lj = LennardJones(n, density=0.8442, cutoff_treatment="switched")
    z = lj.sample(1, temperature=1.0, seed=0)[0]
    z, _ = langevin_baoab(lj, z, 0.005, 300, temperature=1.0, seed=1)
    if args.model:
        from symplearn.modelio import load_model

        cons = load_model(args.model).double()
        if cons.n_particles != n:
            raise SystemExit(f"--model is a model of N = {cons.n_particles}; pass --n {cons.n_particles}")
    else:
        torch.manual_seed(0)
        cons = build_model("symmetry-function", n_particles=n, box_length=lj.box_length).double()
        cons.fit_scales(z[None, : lj.n_dof])
    eager = copy.deepcopy(cons)
    eager.fused = False  # the same model through the eager torch path
    torch.manual_seed(0)
    direct = build_model("direct-force", n_particles=n, box_length=lj.box_length).double()
    direct.fit_scales(z[None, : lj.n_dof])

    def nve(system):
        flow = discretize(system, "verlet", 0.005)

        def f():
            with torch.no_grad():
                integrate(flow, z[None], args.steps, save_every=args.steps)

        return f

    def via_ase():
        from ase.md.verlet import VelocityVerlet

        from symplearn.ase import SymplearnCalculator, to_atoms

        atoms = to_atoms(cons, z)
        atoms.calc = SymplearnCalculator(cons)
        VelocityVerlet(atoms, timestep=0.005).run(args.steps)

    variants = {
        "true LJ": nve(lj),
        "conservative": nve(cons),
        "conservative, eager torch": nve(eager),
        "direct": nve(direct),
        "conservative via ASE": via_ase,
    }
    times = {k: [] for k in variants}
    names = list(variants)
    for f in variants.values():  # warm-up
        f()
    for r in range(args.rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            variants[k]()
            times[k].append(time.perf_counter() - t0)
    rate = {k: args.steps / statistics.median(v) for k, v in times.items()}
    return {
        "steps_per_s": rate,
        "conservative_over_true": rate["conservative"] / rate["true LJ"],
        "fused_over_eager": rate["conservative"] / rate["conservative, eager torch"],
        "force_path": "fused C kernel" if _fused.status() == "available" else f"eager ({_fused.status()})",
        "symplearn_over_ase": rate["conservative"] / rate["conservative via ASE"],
        "neighbor": lj.neighbor,
    }


if __name__ == "__main__":
    main()
