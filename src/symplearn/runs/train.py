"""``symplearn train``: train a model on a system's data (generated or from a file) and write
a model folder; ``--ensemble K`` trains K seeds at once (:func:`~symplearn.training.fit_ensemble`);
under ``torchrun`` the same command trains data-parallel (DDP, rank 0 writes)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from .. import _files
from .._errors import SymplearnError
from .._files import check_output_folder
from ..datasets import generate_dataset, get_any_system, load_training_file, system_metadata
from ..modelio import save_model
from ..models import build_model
from ..plotting import fit_loss_figure
from ..training import distributed, fit, fit_ensemble
from . import _train_potential
from ._common import check_data_memory, check_memory
from .args import DTYPE_NAMES, DTYPES, parse_params, pos_float, pos_int


def _main(args) -> int:
    if _train_potential.wants(args):  # labelled frames -> a learned interatomic potential
        return _train_potential.run(args)
    # under torchrun (WORLD_SIZE > 1) every rank checks the input before the process group
    # exists, so bad input makes every rank exit 2 at once; the lock is rank 0's (see below)
    launched = distributed.launched_world_size() > 1
    if launched and args.ensemble:
        raise SymplearnError(
            "--ensemble trains its K models in one process; run it without torchrun "
            "(torchrun trains one model data-parallel)"
        )
    dtype = DTYPES[args.dtype]
    out = check_output_folder(args.out, replace=False)
    if args.lr / (1 - 0.9) >= torch.finfo(dtype).max:  # Adam's first step is lr / (1 - beta1)
        raise SymplearnError(
            f"--lr {args.lr:g} overflows {args.dtype} in the optimizer's first step (lr / (1 - 0.9) > "
            f"{torch.finfo(dtype).max:.3g}); give a learning rate like 1e-3"
        )
    check_memory(
        4.0 * (args.depth + 2) * args.width**2 * (4 if args.dtype == "float32" else 8),
        f"a model of width {args.width} and depth {args.depth} with its optimizer state",
        "use a smaller --width",
    )
    if args.data:
        if args.param or args.noise:
            raise SymplearnError(
                "--param and --noise describe generated data; with --data the data set fixes them "
                "(drop them, or drop --data)"
            )
        ds, system = _load_data(args)
    else:
        if not args.system:
            raise SymplearnError("give --system NAME (see `symplearn systems`) or --data FILE")
        system = get_any_system(args.system, **parse_params(args.param))
        check_data_memory(args.n_traj, args.traj_steps, system.n_dof, "--n-traj or --traj-steps")
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
        n_dof=ds.dim // 2,
        width=args.width,
        depth=args.depth,
        layers=args.layers,
        activation=args.activation,
        dt=ds.dt,
    ).to(dtype=dtype)
    config = {
        **({"system": system_metadata(system)} if system is not None else {}),
        "data": {"file": str(args.data) if args.data else None, **ds.metadata},
        "cli": {"threads": torch.get_num_threads(), "seed": args.seed},
    }
    if args.ensemble:
        return _train_ensemble(args, model, ds, system, out, dtype, config)
    created = _missing_folders(out)
    # under torchrun: one process group, data-parallel fit; rank 0 alone locks and writes the
    # folder (checkpoints included), the other ranks wait for each of its steps and share its
    # failures (distributed.run_on_main), so no rank hangs and every rank exits 2 on an error
    distributed.init_from_env(args.device)
    finished = False
    try:
        with contextlib.ExitStack() as held:

            def prepare() -> None:
                if launched:  # a single process holds the lock already (cli.main)
                    held.enter_context(_files.folder_lock(out))
                    check_output_folder(out, replace=False)  # again, now that the folder is ours
                out.mkdir(parents=True, exist_ok=True)

            distributed.run_on_main(f"take and create the output folder {str(out)!r}", prepare)
            try:
                result = _fit_into(out, fit, model, ds, dtype, args)
            except BaseException as err:
                if distributed.is_main_process():
                    _remove_empty(created)  # a failed training leaves no empty folders (a checkpoint stays)
                peer = _peer_failure(err)
                if peer is not None:
                    raise peer from None
                raise
            distributed.run_on_main(
                f"write the model folder {str(out)!r}",
                lambda: save_model(
                    model.cpu(),
                    out,
                    result=result,
                    config=_files._jsonable(config),
                    loss_figure=fit_loss_figure(result),
                ),  # fmt: skip
            )
        finished = True
    finally:
        distributed.shutdown(barrier=finished)  # no barrier on a failure: a peer may be gone
    if not args.quiet and distributed.launched_rank() == 0:  # (the process group is gone)
        tl = f", test loss {result.test_loss:.3e}" if result.test_loss is not None else ""
        print(
            f"{kind} on {_label(system, args)}: train loss {result.train_loss:.3e}{tl} after "
            f"{result.steps} steps ({result.wall_time:.1f} s); model in {out}"
        )
    return 0


def _load_data(args):
    """``--data FILE``: a symplearn data set (its system) or a trajectory file (no system;
    :func:`~symplearn.datasets.load_trajectories`, split by trajectory with ``--seed``)."""
    ds = load_training_file(args.data, seed=args.seed)
    if not ds.has_system():
        if args.system:
            raise SymplearnError(
                f"--system {args.system}: a trajectory file names no system; drop --system (a model "
                f"trained on it is compared with the file's held-out trajectories by `symplearn rollout`)"
            )
        return ds, None
    system = ds.system()
    if args.system and args.system != system.name:
        raise SymplearnError(f"--system {args.system} does not match the data set's system {system.name}")
    return ds, system


def _label(system, args) -> str:
    return system.name if system is not None else str(args.data)


def _peer_failure(err: BaseException) -> SymplearnError | None:
    """Under torchrun: a collective that failed because another rank stopped (gloo: "Connection
    closed by peer") becomes one clear line; that rank's own message says why."""
    text = str(err)
    if (
        not isinstance(err, RuntimeError)
        or not distributed.is_distributed()
        or not any(
            s in text for s in ("Connection closed by peer", "Connection reset by peer", "Broken pipe")
        )
    ):
        return None
    return SymplearnError(
        "another process of this torchrun job stopped during training (its own message says why); "
        "no model folder was written (a checkpoint written before stays)"
    )


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        for sub in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else []:
            if sub.is_dir():
                with contextlib.suppress(OSError):
                    sub.rmdir()
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty


def _fit_into(out, fit, model, ds, dtype, args):
    return fit(
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


def _train_ensemble(args, model, ds, system, out, dtype, config) -> int:
    """``--ensemble K``: seeds ``seed .. seed + K - 1`` trained together; K model folders and a
    summary (``ensemble.json``) under ``out``."""
    if args.integrator or args.rollout_k != 1 or args.resume:
        raise SymplearnError(
            "--ensemble trains derivative or acceleration losses without checkpoints; drop "
            "--integrator, --rollout-k and --resume (or train the seeds one by one)"
        )
    seeds = list(range(args.seed, args.seed + args.ensemble))
    ens = fit_ensemble(
        model.config,
        ds,
        seeds=seeds,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        dtype=dtype,
        grad_clip=args.grad_clip if args.grad_clip is not None else "auto",
        progress=not args.quiet,
    )
    ens.save(out, config=_files._jsonable(config), loss_figure=fit_loss_figure)
    if not args.quiet:
        stats = ens.summary().get("test_loss_stats") or ens.summary().get("train_loss_stats")
        print(f"{len(seeds)} {args.model} models on {_label(system, args)}: {stats}; folders in {out}/seed-*")
    return 0


def add_parser(sub) -> None:
    """Register ``symplearn train``."""
    p = sub.add_parser("train", help="train a model on a system's data, write a model folder")
    p.add_argument(
        "--system",
        help="system name (see `symplearn systems`; damped/forced: forced-spring, ...); or give --data",
    )
    p.add_argument(
        "--model",
        required=True,
        help="a model kind: mlp, hnn, hnn-separable, hnn-rotation, lnn, sympnet-g, dhnn, ... (models.MODELS)",
    )
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument(
        "--data",
        help="a data set from `symplearn generate`, or your trajectories (.npz or .csv: docs/your_data.md); "
        "default: generate one",
    )
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
    p.add_argument(
        "--ensemble", type=pos_int, default=None, metavar="K", help="train K seeds at once (seed .. seed+K-1)"
    )
    _train_potential.add_arguments(p)
    p.set_defaults(func=_main, data_parallel=True)  # runs under torchrun (cli.main)
