"""The ``symplearn`` command line: a thin layer that turns names into objects and files into
arrays, then calls the library. User errors print one line and exit with code 2."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from . import __version__
from ._errors import SymplearnError

DTYPES = {"float64": torch.float64, "float32": torch.float32}


# -- parsing helpers ----------------------------------------------------------------------
def parse_params(items: list[str] | None) -> dict[str, float]:
    """``["g=9.81", "L=2"] -> {"g": 9.81, "L": 2.0}``."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SymplearnError(f"--param expects NAME=VALUE (e.g. --param g=9.81), got {item!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise SymplearnError(f"--param {name}: {value!r} is not a number") from None
    return out


def parse_states(items: list[str] | None, dim: int, dtype: torch.dtype) -> torch.Tensor | None:
    """``["1.0,0.0", ...]`` (q's then p's) -> ``(K, dim)``; validated."""
    if not items:
        return None
    rows = []
    for item in items:
        try:
            row = [float(x) for x in item.split(",")]
        except ValueError:
            raise SymplearnError(
                f"--z0 expects comma-separated numbers (q's then p's), got {item!r}"
            ) from None
        if len(row) != dim:
            raise SymplearnError(
                f"--z0 {item!r} has {len(row)} numbers; this system's states have {dim} (q's then p's)"
            )
        if not all(math.isfinite(x) for x in row):
            raise SymplearnError(f"--z0 {item!r} contains a non-finite number")
        rows.append(row)
    return torch.tensor(rows, dtype=dtype)


def _positive(kind):
    def conv(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    conv.__name__ = f"positive {kind.__name__}"
    return conv


pos_int = _positive(int)
pos_float = _positive(float)


def _set_threads(n: int | None) -> None:
    # Small networks and batched integrators on a 2-core machine: one thread avoids the
    # oversubscription that was measured to slow small-network training many-fold.
    torch.set_num_threads(n or 1)


# -- commands -----------------------------------------------------------------------------
def cmd_systems(args) -> int:
    from .systems import SYSTEMS

    for name, cls in SYSTEMS.items():
        params = ", ".join(f"{k}={v:g}" for k, v in cls.PARAMS.items()) or "(none)"
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        flags = [f"n_dof={cls.n_dof}", "separable" if cls.separable else "non-separable"]
        if cls.has_exact_solution:
            flags.append("exact solution")
        if cls.has_lagrangian:
            flags.append("Lagrangian")
        print(f"{name:16s} {doc}")
        print(f"{'':16s}   parameters: {params}; {', '.join(flags)}")
    return 0


def cmd_integrators(args) -> int:
    from .integrators import INTEGRATORS

    print(f"{'name':18s} {'order':>5s}  {'symplectic':10s} {'needs separable H':17s} {'implicit':8s}")
    for name, make in INTEGRATORS.items():
        it = make()
        print(f"{name:18s} {it.order:5d}  {'yes' if it.symplectic else 'no':10s} "
              f"{'yes' if it.requires_separable else 'no':17s} {'yes' if it.implicit else 'no':8s}")
    return 0


def _integrate_with_progress(dynamics, z0, dt, steps, integrator, save_every, quiet):
    """Integrate in chunks so long runs show progress; same result as one ``integrate`` call."""
    from ._progress import Progress
    from .integrators import integrate

    chunk = max(save_every, (steps // 50) // save_every * save_every) if steps > 2000 else steps
    ts, zs = [], []
    z, t0, done = z0, 0.0, 0
    with Progress(steps, "integrating", enabled=not quiet) as bar:
        while done < steps:
            n = min(chunk, steps - done)
            traj = integrate(dynamics, z, dt, n, integrator, save_every=save_every, t0=t0)
            start = 0 if not zs else 1
            ts.append(traj.t[start:])
            zs.append(traj.z[start:])
            z, done = traj.z[-1], done + n
            t0 = float(traj.t[-1])
            bar.update(n)
    return torch.cat(ts), torch.cat(zs)


def cmd_simulate(args) -> int:
    from . import _files, plotting
    from .integrators import get_integrator
    from .systems import get_system

    dtype = DTYPES[args.dtype]
    system = get_system(args.system, **parse_params(args.param))
    integrator = get_integrator(args.integrator)
    integrator.check(system)
    z0 = parse_states(args.z0, system.dim, dtype)
    if z0 is None:
        rng = None if args.energy is None else tuple(args.energy)
        z0 = system.sample(args.n_traj, energy_range=rng, seed=args.seed, dtype=dtype)
    t_start = time.perf_counter()
    with torch.no_grad():
        t, z = _integrate_with_progress(system, z0, args.dt, args.steps, integrator,
                                        args.save_every, args.quiet)
    wall = time.perf_counter() - t_start
    energy = system.hamiltonian(z)  # (T, K)
    rel = (energy - energy[0]).abs() / energy[0].abs().clamp_min(torch.finfo(dtype).tiny)
    summary = {
        "system": system.name,
        "integrator": integrator.name,
        "max_rel_energy_error": float(rel.max()),
        "final_rel_energy_error": float(rel[-1].max()),
        "n_trajectories": int(z.shape[1]),
        "n_steps": args.steps,
        "t_final": float(t[-1]),
        "wall_time_s": wall,
        "state_steps_per_s": args.steps * z.shape[1] / max(wall, 1e-12),
    }
    for name, val in system.conserved_quantities(z).items():
        if name == "energy":
            continue
        d = (val - val[0]).abs()
        d = d.flatten(2).norm(dim=-1) if d.ndim > 2 else d
        summary[f"max_abs_{name}_error"] = float(d.max())
    config = {"command": "simulate", "system": system.name, "params": system.params,
              "integrator": integrator.name, "dt": args.dt, "steps": args.steps,
              "save_every": args.save_every, "n_trajectories": int(z.shape[1]), "seed": args.seed,
              "z0": z0.tolist(), "dtype": args.dtype, **_files.provenance()}
    n = system.n_dof
    with _files.staged_folder(args.out) as tmp:
        _files.write_npz(tmp / "trajectory.npz", t=t.numpy(), z=z.numpy(), energy=energy.numpy())
        _files.write_json(tmp / "summary.json", summary)
        _files.write_json(tmp / "config.json", config)
        label = f"{system.name}, {integrator.name}, dt={args.dt:g}"
        _files.save_figure(plotting.energy_error_figure(
            t.numpy(), {integrator.name: rel.numpy()}, title=f"Relative energy error: {label}"),
            tmp / "energy_error.png")
        H = system.hamiltonian if n == 1 else None
        _files.save_figure(plotting.phase_portrait_figure(
            {integrator.name: z[..., [0, n]].numpy()}, hamiltonian=H,
            title=f"Phase portrait (q{'' if n == 1 else '1'}, p{'' if n == 1 else '1'}): {label}"),
            tmp / "phase_portrait.png")
    if not args.quiet:
        print(f"max relative energy error {summary['max_rel_energy_error']:.3e} over t = "
              f"{summary['t_final']:g} ({wall:.2f} s); results in {args.out}")
    return 0


def cmd_generate(args) -> int:
    from .data import generate_dataset
    from .integrators import get_integrator
    from .systems import get_system

    system = get_system(args.system, **parse_params(args.param))
    integrator = get_integrator(args.integrator) if args.integrator else None
    rng = None if args.energy is None else tuple(args.energy)
    ds = generate_dataset(system, n_traj=args.n_traj, dt=args.dt, n_steps=args.steps,
                          integrator=integrator, substeps=args.substeps, noise_std=args.noise,
                          test_fraction=args.test_fraction, energy_range=rng, seed=args.seed,
                          dtype=DTYPES[args.dtype])
    path = Path(args.out)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    ds.save(path)
    if not args.quiet:
        print(f"wrote {path} and {path.with_suffix('.json')}: {tuple(ds.z.shape)} states (T, K, 2n)")
    return 0


# -- parser -------------------------------------------------------------------------------
def _add_system_args(p, *, states=True):
    p.add_argument("system", help="system name (see `symplearn systems`)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="system parameter, repeatable (e.g. --param g=9.81)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled initial states (default 0)")
    p.add_argument("--energy", type=float, nargs=2, metavar=("EMIN", "EMAX"),
                   help="energy range of sampled initial states (default: the system's)")
    p.add_argument("--dtype", choices=list(DTYPES), default="float64")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symplearn",
        description="Learn physical dynamics with structure-preserving neural networks.")
    parser.add_argument("--version", action="version", version=f"symplearn {__version__}")
    parser.add_argument("--threads", type=pos_int, default=None,
                        help="torch CPU threads (default 1: fastest for small networks here)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("systems", help="list ground-truth systems and their parameters")
    p.set_defaults(func=cmd_systems)
    p = sub.add_parser("integrators", help="list integrators with order and symplecticity")
    p.set_defaults(func=cmd_integrators)

    p = sub.add_parser("simulate", help="integrate a ground-truth system, write trajectory and figures")
    _add_system_args(p)
    p.add_argument("--integrator", default="verlet", help="integrator name (default verlet)")
    p.add_argument("--dt", type=pos_float, required=True, help="step size")
    p.add_argument("--steps", type=pos_int, required=True, help="number of steps")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n-traj", type=pos_int, default=4, help="number of sampled trajectories (default 4)")
    p.add_argument("--z0", action="append", metavar="Q..,P..",
                   help="explicit initial state, q's then p's (e.g. --z0 1.0,0.0); repeatable")
    p.add_argument("--save-every", type=pos_int, default=1, help="keep every k-th state (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary lines")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("generate", help="generate a trajectory data set (.npz + .json sidecar)")
    _add_system_args(p)
    p.add_argument("--out", required=True, help="output file (.npz)")
    p.add_argument("--n-traj", type=pos_int, default=64, help="number of trajectories (default 64)")
    p.add_argument("--dt", type=pos_float, default=0.1, help="time between saved states (default 0.1)")
    p.add_argument("--steps", type=pos_int, default=100, help="saved steps per trajectory (default 100)")
    p.add_argument("--substeps", type=pos_int, default=10,
                   help="reference integrator sub-steps per saved step (default 10)")
    p.add_argument("--integrator", default=None, help="reference integrator (default: an accurate one)")
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise std on states and derivatives")
    p.add_argument("--test-fraction", type=float, default=0.2, help="fraction of trajectories held out")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _set_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except SymplearnError as exc:
        print(f"symplearn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("symplearn: interrupted; no partial results were written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
