"""NVE molecular-dynamics speed: symplearn beside ASE, torch-sim and jax-md on the same system.

System: the LAMMPS ``in.lj`` benchmark (fcc at density 0.8442, Lennard-Jones rc = 2.5 sigma,
Maxwell-Boltzmann momenta at T = 1.44 with zero total momentum, NVE velocity Verlet, dt = 0.005,
neighbour skin 0.3), N = 256, 4000 and 32000, float64 and float32. Every engine starts from the
same positions and momenta (made by symplearn) and runs the melt that LAMMPS times.

Engines, each at its best settings found here:

* **symplearn**: ``LennardJones(cutoff_treatment="shifted")`` (ASE's convention), vesin neighbour
  list (``neighbor="auto"``), ``integrate(discretize(system, "verlet", dt))`` under
  ``torch.no_grad`` in chunks; torch threads 1 and 2.
* **ASE**: ``ase.calculators.lj.LennardJones(rc=2.5)`` (shifted energy, its default) with
  ``ase.md.verlet.VelocityVerlet``; float64 only (numpy).
* **torch-sim** (``torch-sim-atomistic``): ``LennardJonesModel(cutoff=2.5)`` (vesin-torch neighbour
  list rebuilt every call) with ``ts.integrators.nve``; torch threads 1.
* **jax-md**: ``energy.lennard_jones_neighbor_list`` (its multiplicative switch from r_onset = 2.0
  to rc = 2.5, ``dr_threshold = 0.3``, OrderedSparse format, its default) with ``simulate.nve``,
  the whole chunk of steps in one ``jit(lax.fori_loop)`` with the neighbour update inside; XLA
  threads 1 (``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``) and default.

Each measurement runs in its own subprocess (threads settings do not leak; jax and torch do not
share a process), warms up (jit compile, first neighbour list) for a few steps that are not
timed, then runs timed chunks until about ``--target`` seconds have passed. Between chunks
(untimed) it records the total energy; the report gives ``std(E) / std(KE)`` over the chunks (a
correct NVE integrator keeps E far steadier than the KE that the melt exchanges) and the force
ratio ``<F_engine . F_ref> / <F_ref . F_ref>`` at the start against symplearn's force for the
same cutoff treatment (1 for correct forces).

Replicas: K = 64 systems of N = 256 in one call (state ``(64, 1536)``) against 64 separate runs.

The machine: 2 cores shared with other engineers' jobs; load averages are recorded before and
after each measurement. Run with the private venv that has the peers installed::

    /work/wt/benchvenv/bin/python benchmarks/bench_md.py            # ~15 min on a busy machine
    /work/wt/benchvenv/bin/python benchmarks/bench_md.py --quick    # N = 256 only

Writes ``benchmarks/results/md.json`` (``md-quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
DT = 0.005
DENSITY = 0.8442
T0 = 1.44


def initial_state(n: int):
    """fcc + Maxwell-Boltzmann (float64 numpy): positions (n, 3), momenta (n, 3), box length."""
    from symplearn.systems.particles import LennardJones

    s = LennardJones(n, density=DENSITY, cutoff=2.5, neighbor="all-pairs" if n < 100 else "auto")
    z = s.sample(1, temperature=T0, seed=0)[0]
    x = z[: s.n_dof].reshape(-1, 3).numpy()
    p = z[s.n_dof :].reshape(-1, 3).numpy()
    return x, p, s.box_length


def jittered(n: int):
    """Positions of :func:`initial_state` moved by up to 0.1 sigma per axis (seeded): the perfect
    lattice has zero forces, so force checks use this configuration."""
    import numpy as np

    x, _, L = initial_state(n)
    return x + np.random.default_rng(1).uniform(-0.1, 0.1, x.shape), L


def reference_forces(x, L, treatment):
    import torch

    from symplearn.systems.particles import LennardJonesPair, ParticleSystem

    s = ParticleSystem(len(x), L, LennardJonesPair(cutoff=2.5, treatment=treatment, r_onset=2.0))
    return (
        s.compute(torch.as_tensor(x).reshape(-1), energy=False, virial=False)["forces"].reshape(-1, 3).numpy()
    )


def force_ratio(f, f_ref):
    import numpy as np

    f, f_ref = np.asarray(f, dtype=float), np.asarray(f_ref, dtype=float)
    return float((f * f_ref).sum() / (f_ref * f_ref).sum())


def timed_loop(advance, energies, warmup: int, chunk: int, target: float, max_steps: int):
    """Warm up, then run timed chunks until ``target`` seconds (or max_steps)."""
    advance(warmup)
    e = [energies()]
    wall, steps = 0.0, 0
    while (wall < target and steps < max_steps) or len(e) < 3:
        t0 = time.perf_counter()
        advance(chunk)
        wall += time.perf_counter() - t0
        steps += chunk
        e.append(energies())
    return wall, steps, e


def summarize(n, wall, steps, e, **extra):
    import numpy as np

    E = np.array([a for a, _ in e])
    KE = np.array([b for _, b in e])
    return {
        "n": n,
        "steps": steps,
        "wall_s": wall,
        "steps_per_s": steps / wall,
        "particle_steps_per_s": steps * n / wall,
        "energy_std_over_ke_std": float(E.std() / KE.std()) if KE.std() > 0 else None,
        "energy_change_per_particle": float(abs(E[-1] - E[0]) / n),
        **extra,
    }


# -- workers (run in subprocesses) ----------------------------------------------------------
def worker_symplearn(n, dtype_name, threads, target, replicas=0):
    import torch

    torch.set_num_threads(threads)
    from symplearn import md
    from symplearn.systems.particles import LennardJones

    dtype = getattr(torch, dtype_name)
    s = LennardJones(n, density=DENSITY, cutoff=2.5, cutoff_treatment="shifted")
    z0 = s.sample(1, temperature=T0, seed=0)[0]
    if replicas:
        return replicas_symplearn(s, z0, dtype, replicas)
    xj, L = jittered(n)
    fj = s.compute(torch.as_tensor(xj).reshape(-1), energy=False, virial=False)["forces"]
    ratio = force_ratio(fj.reshape(-1, 3), reference_forces(xj, L, "shifted"))
    state = {"z": z0.to(dtype)}
    chunk = 50 if n <= 1000 else (10 if n <= 10000 else 2)

    def advance(k):
        state["z"] = md.nve(s, state["z"], DT, k, save_every=k).z[-1]

    def energies():
        th = md.thermo(s, state["z"].double())
        return float(th["energy"]), float(th["ke"])

    wall, steps, e = timed_loop(advance, energies, 5, chunk, target, 100000)
    return summarize(n, wall, steps, e, force_ratio=ratio, neighbor=s.neighbor, nl_builds=s._nl.builds)


def replicas_symplearn(s, z0, dtype, K):
    import torch

    from symplearn import md

    zK = s.sample(K, temperature=T0, seed=1).to(dtype)
    md.nve(s, zK, DT, 2, save_every=2)
    steps_batch = 40
    t0 = time.perf_counter()
    zb = md.nve(s, zK, DT, steps_batch, save_every=steps_batch).z[-1]
    wall_batch = time.perf_counter() - t0
    steps_sep = 20
    t0 = time.perf_counter()
    outs = []
    for k in range(K):
        outs.append(md.nve(s, zK[k], DT, steps_sep, save_every=steps_sep).z[-1])
    wall_sep = time.perf_counter() - t0
    # the batched run equals the separate runs (same steps) to round-off
    zb20 = md.nve(s, zK, DT, steps_sep, save_every=steps_sep).z[-1]
    diff = float((zb20 - torch.stack(outs)).abs().max())
    rate_batch = K * steps_batch / wall_batch
    rate_sep = K * steps_sep / wall_sep
    return {
        "K": K,
        "n": s.n_particles,
        "replica_steps_per_s_batched": rate_batch,
        "replica_steps_per_s_separate": rate_sep,
        "speedup": rate_batch / rate_sep,
        "max_abs_difference_batched_vs_separate": diff,
        "finite": bool(torch.isfinite(zb).all()),
    }


def worker_ase(n, dtype_name, threads, target):
    import torch
    from ase.calculators.lj import LennardJones as AseLJ
    from ase.md.verlet import VelocityVerlet

    from symplearn.ase import to_atoms
    from symplearn.systems.particles import LennardJones

    s = LennardJones(n, density=DENSITY, cutoff=2.5, cutoff_treatment="shifted")
    z0 = s.sample(1, temperature=T0, seed=0)[0]
    atoms = to_atoms(s, z0)
    atoms.calc = AseLJ(sigma=1.0, epsilon=1.0, rc=2.5)
    xj, L = jittered(n)
    aj = atoms.copy()
    aj.set_positions(xj)
    aj.calc = AseLJ(sigma=1.0, epsilon=1.0, rc=2.5)
    ratio = force_ratio(aj.get_forces(), reference_forces(xj, L, "shifted"))
    dyn = VelocityVerlet(atoms, timestep=DT)
    chunk = 10 if n <= 1000 else 1

    def energies():
        return float(atoms.get_potential_energy() + atoms.get_kinetic_energy()), float(
            atoms.get_kinetic_energy()
        )

    wall, steps, e = timed_loop(dyn.run, energies, 1, chunk, target, 100000)
    del torch
    return summarize(n, wall, steps, e, force_ratio=ratio)


def worker_torchsim(n, dtype_name, threads, target):
    import torch

    torch.set_num_threads(threads)
    import torch_sim as ts
    from torch_sim.models.lennard_jones import LennardJonesModel

    from symplearn.ase import to_atoms
    from symplearn.systems.particles import LennardJones

    dtype = getattr(torch, dtype_name)
    s = LennardJones(n, density=DENSITY, cutoff=2.5, cutoff_treatment="truncated")
    z0 = s.sample(1, temperature=T0, seed=0)[0]
    atoms = to_atoms(s, z0)
    sim = ts.io.atoms_to_state(atoms, device=torch.device("cpu"), dtype=dtype)
    model = LennardJonesModel(sigma=1.0, epsilon=1.0, cutoff=2.5, dtype=dtype, compute_forces=True)
    init_fn, update_fn = ts.integrators.nve(
        model, dt=torch.tensor(DT, dtype=dtype), kT=torch.tensor(T0, dtype=dtype)
    )
    st = init_fn(sim)
    st.momenta = torch.as_tensor(z0[s.n_dof :].reshape(-1, 3).numpy(), dtype=dtype)
    xj, L = jittered(n)
    aj = atoms.copy()
    aj.set_positions(xj)
    fj = model(ts.io.atoms_to_state(aj, device=torch.device("cpu"), dtype=dtype))["forces"]
    ratio = force_ratio(fj.double().numpy(), reference_forces(xj, L, "truncated"))
    state = {"st": st}
    chunk = 10 if n <= 1000 else 2

    def advance(k):
        for _ in range(k):
            state["st"] = update_fn(state["st"])

    def energies():
        st = state["st"]
        ke = float(0.5 * (st.momenta.double() ** 2 / st.masses.double()[:, None]).sum())
        return float(st.energy.double().sum()) + ke, ke

    with torch.no_grad():
        wall, steps, e = timed_loop(advance, energies, 2, chunk, target, 100000)
    return summarize(n, wall, steps, e, force_ratio=ratio, version=metadata.version("torch-sim-atomistic"))


def worker_jaxmd(n, dtype_name, threads, target):
    if threads == 1:
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    from jax import config

    config.update("jax_enable_x64", dtype_name == "float64")
    import jax
    import jax.numpy as jnp
    from jax_md import energy, quantity, simulate, space

    x, p, L = initial_state(n)
    xj, _ = jittered(n)
    dt_j = jnp.float64 if dtype_name == "float64" else jnp.float32
    R = jnp.asarray(x, dtype=dt_j)
    P = jnp.asarray(p, dtype=dt_j)
    displacement, shift = space.periodic(L)
    neighbor_fn, energy_fn = energy.lennard_jones_neighbor_list(
        displacement, L, sigma=1.0, epsilon=1.0, r_onset=2.0, r_cutoff=2.5, dr_threshold=0.3
    )
    nbrs = neighbor_fn.allocate(R)
    init_fn, apply_fn = simulate.nve(energy_fn, shift, DT)
    st = init_fn(jax.random.PRNGKey(0), R, kT=T0, neighbor=nbrs)
    st = st.set(momentum=P)
    nj = neighbor_fn.allocate(jnp.asarray(xj, dtype=dt_j))
    fj = -jax.grad(energy_fn)(jnp.asarray(xj, dtype=dt_j), neighbor=nj)
    ratio = force_ratio(jax.device_get(fj), reference_forces(xj, L, "switched"))
    chunk = 50 if n <= 1000 else (10 if n <= 10000 else 5)

    @jax.jit
    def run(st, nbrs):
        def body(i, carry):
            st, nbrs = carry
            st = apply_fn(st, neighbor=nbrs)
            return st, nbrs.update(st.position)

        return jax.lax.fori_loop(0, chunk, body, (st, nbrs))

    state = {"st": st, "nbrs": nbrs}

    def advance(k):
        for _ in range(k // chunk):
            state["st"], state["nbrs"] = run(state["st"], state["nbrs"])
        jax.block_until_ready(state["st"].position)
        if bool(state["nbrs"].did_buffer_overflow):
            raise RuntimeError("jax-md neighbour buffer overflow")

    def energies():
        st = state["st"]
        ke = float(quantity.kinetic_energy(momentum=st.momentum, mass=st.mass))
        return float(energy_fn(st.position, neighbor=state["nbrs"])) + ke, ke

    wall, steps, e = timed_loop(advance, energies, chunk, chunk, target, 100000)
    return summarize(
        n, wall, steps, e, force_ratio=ratio, version=metadata.version("jax-md"), jax=jax.__version__
    )


WORKERS = {
    "symplearn": worker_symplearn,
    "ase": worker_ase,
    "torch-sim": worker_torchsim,
    "jax-md": worker_jaxmd,
}


def measure(engine, n, dtype, threads, target, replicas=0, timeout=900):
    """Run one measurement in a fresh subprocess; returns its JSON result (or an error)."""
    args = [sys.executable, __file__, "--worker", engine, str(n), dtype, str(threads), str(target)]
    if replicas:
        args += ["--replicas", str(replicas)]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": str(threads)}
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    try:
        out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
        if out.returncode:
            res = {
                "error": out.stderr.strip().splitlines()[-1]
                if out.stderr.strip()
                else f"exit {out.returncode}"
            }
        else:
            res = json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        res = {"error": f"timeout after {timeout} s"}
    res.update(
        engine=engine,
        n=n,
        dtype=dtype,
        threads=threads,
        load_before=load0,
        load_after=os.getloadavg(),
        process_s=time.perf_counter() - t0,
    )
    print(json.dumps(res), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=5, metavar=("ENGINE", "N", "DTYPE", "THREADS", "TARGET"))
    ap.add_argument("--replicas", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--target", type=float, default=4.0, help="seconds of timed steps per measurement")
    ap.add_argument(
        "--only",
        action="append",
        metavar="ENGINE:N:DTYPE:THREADS",
        help="re-measure these entries and replace them in the existing md.json (repeatable)",
    )
    ap.add_argument("--table", action="store_true", help="print the markdown tables of md.json")
    args = ap.parse_args()
    if args.worker:
        engine, n, dtype, threads, target = args.worker
        res = WORKERS[engine](
            int(n),
            dtype,
            int(threads),
            float(target),
            **({"replicas": args.replicas} if args.replicas else {}),
        )
        print(json.dumps(res))
        return
    sys.path.insert(0, str(SRC))
    from symplearn._files import machine_info, read_json, write_json

    path = HERE / "results" / "md.json"
    if args.table:
        print(tables(read_json(path)))
        return
    if args.only:
        data = read_json(path)
        for item in args.only:
            engine, n, dtype, threads = item.split(":")
            n, threads = int(n), int(threads)
            res = measure(engine, n, dtype, threads, args.target if n < 32000 else 2 * args.target)
            res["remeasured"] = True
            data["results"] = [
                res if (r["engine"], r["n"], r["dtype"], r["threads"]) == (engine, n, dtype, threads) else r
                for r in data["results"]
            ]
        write_json(path, data)
        print(tables(data))
        return
    sizes = [256] if args.quick else [256, 4000, 32000]
    results = []
    for n in sizes:
        tgt = args.target if n < 32000 else 2 * args.target
        for dtype in ("float64", "float32"):
            for threads in (1, 2):
                results.append(measure("symplearn", n, dtype, threads, tgt))
            results.append(measure("torch-sim", n, dtype, 1, tgt))
            for threads in (1, 2) if n != 4000 else (1,):
                results.append(measure("jax-md", n, dtype, threads, tgt))
        results.append(measure("ase", n, "float64", 1, tgt))
    replicas = [measure("symplearn", 256, dt, 1, 0, replicas=64) for dt in ("float64", "float32")]
    name = "md-quick.json" if args.quick else "md.json"
    write_json(
        HERE / "results" / name,
        {
            "system": "LAMMPS in.lj: fcc 0.8442, LJ rc 2.5, T0 1.44, NVE dt 0.005, skin 0.3",
            "machine": machine_info(),
            "results": results,
            "replicas": replicas,
        },
    )
    print(f"wrote {HERE / 'results' / name}")


def tables(data) -> str:
    """Markdown: every measurement, then symplearn's ratios to each peer (best peer setting)."""
    rows = data["results"]
    out = [
        "| N | dtype | engine (threads) | steps/s | particle-steps/s | std(E)/std(KE) | force ratio | load |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        head = f"| {r['n']} | {r['dtype']} | {r['engine']} ({r['threads']}) |"
        if "error" in r:
            out.append(f"{head} error: {r['error'][:60]} | | | | |")
            continue
        out.append(
            f"{head} {r['steps_per_s']:.4g} | {r['particle_steps_per_s']:.3g} | "
            f"{r['energy_std_over_ke_std']:.2g} | {r['force_ratio']:.4f} | {r['load_before'][0]:.1f} |"
        )
    out += [
        "",
        "| N | dtype | symplearn steps/s (1 thread) | x ASE | x torch-sim | x jax-md |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    ok = [r for r in rows if "error" not in r]
    for n in sorted({r["n"] for r in ok}):
        for dt in ("float64", "float32"):
            key = ("symplearn", n, dt, 1)
            mine = [r for r in ok if (r["engine"], r["n"], r["dtype"], r["threads"]) == key]
            if not mine:
                continue
            cells = []
            for e in ("ase", "torch-sim", "jax-md"):
                want = "float64" if e == "ase" else dt  # ASE is numpy float64 only
                peers = [r for r in ok if r["engine"] == e and r["n"] == n and r["dtype"] == want]
                best = max((r["steps_per_s"] for r in peers), default=None)
                cells.append(f"{mine[0]['steps_per_s'] / best:.2f}" if best else "—")
            out.append(f"| {n} | {dt} | {mine[0]['steps_per_s']:.4g} | " + " | ".join(cells) + " |")
    for r in data.get("replicas", []):
        if "error" in r:
            out.append(f"\nreplicas: error {r['error']}")
            continue
        out.append(
            f"\nK = {r['K']} replicas of N = {r['n']} ({r['dtype']}): one batched call "
            f"{r['replica_steps_per_s_batched']:.4g} replica-steps/s, 64 separate runs "
            f"{r['replica_steps_per_s_separate']:.4g}: speed-up {r['speedup']:.2f}x "
            f"(max |batched - separate| = {r['max_abs_difference_batched_vs_separate']:.1e})."
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
