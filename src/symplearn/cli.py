"""The ``symplearn`` command line: a thin layer that turns names into objects and files into
arrays, then calls the library. User errors print one line and exit with code 2."""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from pathlib import Path

import torch

from ._errors import SymplearnError
from ._files import check_output_folder
from ._version import __version__
from .runs.args import DTYPE_NAMES, DTYPES, parse_params, pos_float, pos_int

#: the modules of the run subcommands, each with ``add_parser(subparsers)``; one that does not
#: exist (yet) is skipped, one that fails to import becomes a command that reports the error
RUN_MODULES = [
    "symplearn.runs.simulate",
    "symplearn.runs.rollout",
    "symplearn.runs.diagnose",
    "symplearn.runs.md",
]


def _set_threads(n: int | None) -> None:
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
    from .systems import get_system

    system = get_system(args.system, **parse_params(args.param))
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
    path = Path(args.out)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    ds.save(path)
    if not args.quiet:
        print(f"wrote {path} and {path.with_suffix('.json')}: {tuple(ds.z.shape)} states (T, K, 2n)")
    return 0


def cmd_experiment(args) -> int:
    import dataclasses

    from .experiments import EXPERIMENTS, get_experiment

    if args.list or not args.name:
        for name in EXPERIMENTS:
            print(f"{name:12s} {get_experiment(name).DESCRIPTION}")
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
                if len(default) and kind is not str and len(overrides[key]) != len(default):
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


def cmd_train(args) -> int:
    from . import _files
    from .datasets import Dataset, generate_dataset, system_metadata
    from .modelio import save_model
    from .models import build_model
    from .systems import get_system
    from .training import fit

    dtype = DTYPES[args.dtype]
    out = check_output_folder(args.out, replace=False)
    if args.data:
        ds = Dataset.load(args.data)
        system = ds.system()
        if args.system and args.system != system.name:
            raise SymplearnError(f"--system {args.system} does not match the data set's system {system.name}")
    else:
        if not args.system:
            raise SymplearnError("give --system NAME (see `symplearn systems`) or --data FILE")
        system = get_system(args.system, **parse_params(args.param))
        ds = generate_dataset(
            system,
            n_traj=args.n_traj,
            dt=args.data_dt,
            n_steps=args.traj_steps,
            noise_std=args.noise,
            seed=args.seed,
            dtype=dtype,
        )
    kind = args.model
    torch.manual_seed(args.seed)
    model = build_model(
        kind,
        ignore_unused=True,  # each kind takes the sizes it has (SympNets: layers and the data's dt)
        n_dof=system.n_dof,
        width=args.width,
        depth=args.depth,
        layers=args.layers,
        activation=args.activation,
        dt=ds.dt,
    ).to(dtype=dtype)
    out.mkdir(parents=True, exist_ok=True)
    result = fit(
        model,
        ds,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        dtype=dtype,
        integrator=args.integrator,
        rollout_k=args.rollout_k,
        grad_clip=args.grad_clip if args.grad_clip is not None else "auto",
        checkpoint_dir=out / "checkpoint",
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        progress=not args.quiet,
    )
    config = {
        "system": system_metadata(system),
        "data": {"file": str(args.data) if args.data else None, **ds.metadata},
        "cli": {"threads": torch.get_num_threads(), "seed": args.seed},
    }
    save_model(model.cpu(), out, result=result, config=_files._jsonable(config))
    if not args.quiet:
        tl = f", test loss {result.test_loss:.3e}" if result.test_loss is not None else ""
        print(
            f"{kind} on {system.name}: train loss {result.train_loss:.3e}{tl} after {result.steps} steps "
            f"({result.wall_time:.1f} s); model in {out}"
        )
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

    p = sub.add_parser("train", help="train a model on a system's data, write a model folder")
    p.add_argument("--system", help="system name (see `symplearn systems`); or give --data")
    p.add_argument(
        "--model",
        required=True,
        help="a model kind: mlp, hnn, hnn-separable, hnn-rotation, lnn, sympnet-g, dhnn, ... (models.MODELS)",
    )
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--data", help="a data set from `symplearn generate` (default: generate one)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="system parameter, repeatable")
    p.add_argument("--n-traj", type=pos_int, default=64, help="generated trajectories (default 64)")
    p.add_argument("--data-dt", type=pos_float, default=0.1, help="generated data spacing (default 0.1)")
    p.add_argument("--traj-steps", type=pos_int, default=50, help="generated steps each (default 50)")
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise std of generated data")
    p.add_argument("--steps", type=pos_int, default=2000, help="optimizer steps (default 2000)")
    p.add_argument("--batch-size", type=pos_int, default=256)
    p.add_argument("--lr", type=pos_float, default=1e-3)
    p.add_argument("--width", type=pos_int, default=64)
    p.add_argument("--depth", type=pos_int, default=2)
    p.add_argument("--layers", type=pos_int, default=4, help="SympNet layers (default 4)")
    p.add_argument("--activation", default=None, help="nonlinearity (default: the model's)")
    p.add_argument("--integrator", default=None, help="integrator inside a rollout loss")
    p.add_argument("--rollout-k", type=pos_int, default=1, help="steps per rollout loss (default 1)")
    p.add_argument("--grad-clip", type=pos_float, default=None, help="clip the gradient norm (LNN default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--dtype", choices=DTYPE_NAMES, default="float32")
    p.add_argument("--checkpoint-every", type=pos_int, default=500)
    p.add_argument("--resume", action="store_true", help="continue from the folder's checkpoint")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

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
    _set_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except SymplearnError as exc:
        print(f"symplearn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `symplearn systems | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("symplearn: interrupted; no partial results were written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
