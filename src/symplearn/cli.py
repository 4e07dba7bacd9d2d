"""The ``symplearn`` command line: a thin layer that turns names into objects and files into
arrays, then calls the library. User errors print one line and exit with code 2."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import textwrap

import torch

from ._errors import SymplearnError
from ._files import check_output_file, check_output_folder, folder_lock
from ._version import __version__
from .runs.args import DTYPE_NAMES, DTYPES, parse_params, pos_float, pos_int

#: the modules of the run subcommands, each with ``add_parser(subparsers)``; one that does not
#: exist (yet) is skipped, one that fails to import becomes a command that reports the error
RUN_MODULES = [
    "symplearn.runs.train",
    "symplearn.runs.simulate",
    "symplearn.runs.rollout",
    "symplearn.runs.diagnose",
    "symplearn.runs.md",
    "symplearn.runs.check_forces",
]


def _set_threads(n: int | None) -> None:
    cpus = os.cpu_count() or 1
    if n is not None and n > cpus:
        raise SymplearnError(f"--threads {n}: this machine has {cpus} CPUs; give --threads 1 to {cpus}")
    # Small networks and batched integrators on a 2-core machine: one thread avoids the
    # oversubscription that was measured to slow small-network training many-fold.
    torch.set_num_threads(n or 1)


# -- commands -----------------------------------------------------------------------------
def cmd_systems(args) -> int:
    from .dynamics import SeparableHamiltonian
    from .systems import SYSTEMS
    from .systems.base import format_params

    for name, cls in SYSTEMS.items():
        params = format_params(cls.PARAMS) or "(none)"
        full = cls.__doc__ or ""
        doc = " ".join(full.strip().split("\n\n")[0].split()).replace("``", "")
        if "H =" not in doc:  # the formula is displayed below the first paragraph
            formula = next((ln.strip() for ln in full.splitlines() if ln.strip().startswith("H =")), "")
            doc = doc.rstrip(":.") + (
                "; " + " ".join(formula.split("  ")[0].split()).rstrip(",") if formula else ""
            )
        flags = [
            f"n_dof={cls.n_dof}",
            "separable" if issubclass(cls, SeparableHamiltonian) else "non-separable",
        ]
        if cls.has_exact_solution:
            flags.append("exact solution")
        if cls.has_lagrangian:
            flags.append("Lagrangian")
        print(textwrap.fill(doc, 100, initial_indent=f"{name:17s}", subsequent_indent=" " * 17))
        print(f"{'':16s}   parameters: {params}; {', '.join(flags)}")
    return 0


def cmd_integrators(args) -> int:
    from .integrators import INTEGRATORS

    print(f"{'name':18s} {'order':>5s}  {'symplectic':10s} {'needs separable H':17s} {'implicit':8s}")
    for name, make in INTEGRATORS.items():
        it = make()
        print(
            f"{name:18s} {it.order:5d}  {'yes' if it.symplectic else 'no':10s} "
            f"{'yes' if it.requires_separable else 'no':17s} {'yes' if it.implicit else 'no':8s}"
        )
    return 0


def cmd_generate(args) -> int:
    from .datasets import generate_dataset
    from .integrators import get_integrator
    from .runs._common import check_data_memory
    from .systems import get_system

    path = check_output_file(args.out, ".npz")
    system = get_system(args.system, **parse_params(args.param))
    check_data_memory(args.n_traj, args.steps, system.n_dof, "--n-traj or --steps")
    integrator = get_integrator(args.integrator) if args.integrator else None
    rng = None if args.energy is None else tuple(args.energy)
    ds = generate_dataset(
        system,
        n_traj=args.n_traj,
        dt=args.dt,
        n_steps=args.steps,
        integrator=integrator,
        substeps=args.substeps,
        noise_std=args.noise,
        test_fraction=args.test_fraction,
        energy_range=rng,
        seed=args.seed,
        dtype=DTYPES[args.dtype],
    )
    ds.save(path)
    if not args.quiet:
        print(f"wrote {path} and {path.with_suffix('.json')}: {tuple(ds.z.shape)} states (T, K, 2n)")
    return 0


def cmd_experiment(args) -> int:
    import dataclasses

    from .experiments import EXPERIMENTS, get_experiment

    if args.list or not args.name:
        for name in EXPERIMENTS:
            print(f"{name:16s} {get_experiment(name).DESCRIPTION}")
        if not args.list:
            print("\nrun one with: symplearn experiment NAME --out DIR [--quick]", file=sys.stderr)
        return 0 if args.list else 2
    module = get_experiment(args.name)
    if not args.out:
        raise SymplearnError("--out DIR is required (the run folder to write)")
    fields = {f.name: f for f in dataclasses.fields(module.Config)}
    overrides: dict = {"quick": args.quick, "quiet": args.quiet, "seed": args.seed}
    if args.preset is not None:
        if "preset" not in fields:
            raise SymplearnError(f"experiment {args.name!r} has no presets")
        overrides["preset"] = args.preset
    for item in args.set or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            valid = ", ".join(k for k in fields if k not in ("quick", "quiet"))
            raise SymplearnError(f"--set expects KEY=VALUE with KEY one of: {valid}; got {item!r}")
        default = fields[key].default
        try:
            if isinstance(default, bool):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                overrides[key] = value.lower() in ("true", "1")
            elif isinstance(default, tuple):  # comma-separated, elements typed like the default's
                kind = type(default[0]) if default else str
                overrides[key] = tuple(kind(v.strip()) for v in value.split(",") if v.strip())
                # a fixed-size tuple (``tuple[float, float]``, a range) needs as many values;
                # ``tuple[float, ...]`` takes any number
                variadic = "..." in str(fields[key].type)
                if not variadic and len(default) and len(overrides[key]) != len(default):
                    raise ValueError(value)
                if not overrides[key]:
                    raise ValueError(value)
            else:
                overrides[key] = type(default)(value)
        except ValueError:
            example = ",".join(map(str, default)) if isinstance(default, tuple) else repr(default)
            raise SymplearnError(
                f"--set {key}={value!r}: expected a value like the default {example} "
                f"({type(default).__name__})"
            ) from None
    config = module.Config(**overrides)
    config.resolved()  # validate before any work
    check_output_folder(args.out, replace=False)
    report = module.run(config, args.out)
    if not args.quiet:
        print()
        print(report.table())
        print(f"\nreport, metrics and figures in {args.out}/ (report.md)")
    return 0


# -- parser -------------------------------------------------------------------------------
def _add_run_command(sub, module_name: str) -> None:
    """Register the subcommand of a run module (its ``add_parser``). A module that does not exist
    (yet) is skipped; one that exists but fails to import still gets its command, which reports
    the import error as one line (exit 2), so the failure is never silent and the other commands
    keep working."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            return
        failure: Exception = err
    except Exception as err:  # a broken module: say so when its command is used
        failure = err
    else:
        module.add_parser(sub)
        return
    name = module_name.rsplit(".", 1)[-1]
    summary = f"{type(failure).__name__}: {failure}"
    p = sub.add_parser(name, help=f"(unavailable: {summary})", add_help=False)

    def unavailable(args) -> int:
        raise SymplearnError(f"the {name} command could not be loaded ({module_name}): {summary}")

    p.set_defaults(func=unavailable, any_arguments=True)


def _add_system_args(p, *, states=True):
    p.add_argument("system", help="system name (see `symplearn systems`)")
    p.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="system parameter, repeatable (e.g. --param g=9.81)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled initial states (default 0)")
    p.add_argument(
        "--energy",
        type=float,
        nargs=2,
        metavar=("EMIN", "EMAX"),
        help="energy range of sampled initial states (default: the system's)",
    )
    p.add_argument("--dtype", choices=DTYPE_NAMES, default="float64")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symplearn", description="Learn physical dynamics with structure-preserving neural networks."
    )
    parser.add_argument("--version", action="version", version=f"symplearn {__version__}")
    parser.add_argument(
        "--threads",
        type=pos_int,
        default=None,
        help="torch CPU threads (default 1: fastest for small networks here)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("systems", help="list ground-truth systems and their parameters")
    p.set_defaults(func=cmd_systems)
    p = sub.add_parser("integrators", help="list integrators with order and symplecticity")
    p.set_defaults(func=cmd_integrators)

    p = sub.add_parser("generate", help="generate a trajectory data set (.npz + .json sidecar)")
    _add_system_args(p)
    p.add_argument("--out", required=True, help="output file (.npz)")
    p.add_argument("--n-traj", type=pos_int, default=64, help="number of trajectories (default 64)")
    p.add_argument("--dt", type=pos_float, default=0.1, help="time between saved states (default 0.1)")
    p.add_argument("--steps", type=pos_int, default=100, help="saved steps per trajectory (default 100)")
    p.add_argument(
        "--substeps",
        type=pos_int,
        default=10,
        help="reference integrator sub-steps per saved step (default 10)",
    )
    p.add_argument("--integrator", default=None, help="reference integrator (default: an accurate one)")
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise std on states and derivatives")
    p.add_argument("--test-fraction", type=float, default=0.2, help="fraction of trajectories held out")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_generate)

    for module in RUN_MODULES:
        _add_run_command(sub, module)

    p = sub.add_parser("experiment", help="run an experiment (see --list) into a run folder")
    p.add_argument("name", nargs="?", help="experiment name")
    p.add_argument("--list", action="store_true", help="list the experiments")
    p.add_argument("--out", help="run folder")
    p.add_argument("--quick", action="store_true", help="a reduced run (seconds)")
    p.add_argument("--preset", default=None, help="a preset of the experiment (e.g. hnn-paper)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting, repeatable")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_experiment)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .training.distributed import launched_rank, launched_world_size

    # under torchrun (WORLD_SIZE > 1) every process runs this; a data-parallel command (train)
    # takes the output folder's lock on rank 0 itself, after the process group exists
    launched = launched_world_size() > 1
    who = f" (rank {launched_rank()})" if launched else ""
    try:
        if launched and not getattr(args, "data_parallel", False):
            raise SymplearnError(
                f"symplearn {args.command} runs as one process; run it without torchrun (only "
                f"`symplearn train` trains data-parallel under torchrun)"
            )
        _set_threads(args.threads)
        out = getattr(args, "out", None)
        lock = folder_lock(out) if out and not launched else contextlib.nullcontext()
        # ranks other than 0 write nothing, so they keep the default SIGTERM: torchrun stops them
        # at once when another rank failed, even inside a blocking collective
        interrupt = _sigterm_as_interrupt() if launched_rank() == 0 else contextlib.nullcontext()
        with interrupt, lock:
            return int(args.func(args) or 0)
    except SymplearnError as exc:
        # one write: under torchrun the ranks share stderr, and their lines must not interleave
        sys.stderr.write(f"symplearn {args.command}: error{who}: {exc}\n")
        return 2
    except BrokenPipeError:  # e.g. `symplearn systems | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("symplearn: interrupted; no partial results were written", file=sys.stderr)
        return 130
    except (MemoryError, RecursionError) as exc:
        print(
            f"symplearn {args.command}: error: the input is too large ({type(exc).__name__}); "
            f"use smaller sizes",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # a bug: one line, not a traceback, and not the user-error code
        first = (str(exc).splitlines() or [""])[0][:300]
        print(
            f"symplearn {args.command}: internal error{who}: {type(exc).__name__}: {first} "
            f"(please report it; no partial results were written)",
            file=sys.stderr,
        )
        return 1


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """``SIGTERM`` (``kill``, a batch system's time limit) raises ``KeyboardInterrupt`` like Ctrl-C,
    so staged folders and temporary files are removed on the way out."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
