"""``symplearn train --data frames.extxyz --model potential-conservative`` (or ``potential-direct``):
a learned interatomic potential from a user's labelled frames.

The frames are read and checked by :func:`symplearn.frames.read_frames`; a seeded random split by
frame holds out ``--heldout-fraction`` of them; the model
(:class:`~symplearn.models.potentials.SymmetryFunctionPotential` for ``potential-conservative``,
:class:`~symplearn.models.potentials.DirectForceModel` for ``potential-direct``) is trained by
:func:`~symplearn.training.potentials.train_potential` on the others, its descriptor
standardisation and per-atom energy offset fitted to the training frames first
(``fit_scales``).

Loss (per optimizer step, on ``--batch-size`` frames): ``mean_components (F_model - F_ref)^2 +
energy_weight * mean_frames ((E_model - E_ref) / N)^2``, so forces are weighted per component
and energies per atom; the default ``--energy-weight 100`` (in the data's length unit squared) is
the Lennard-Jones experiment's: an energy error of ``d`` per atom costs as much as a force error of
``10 d`` per component. ``--energy-weight 0`` trains on forces alone; the direct-force model has
no energy and always does.

The model folder (written whole, like every ``train``) holds the weights, ``config.json`` (the
data file, its frame count and box, the held-out frame indices, the training settings, the
package version), ``metrics.json`` (held-out and training errors: energy per atom and force per
component, RMSE and MAE, beside the errors of the trivial predictors: zero force and the mean
training energy per atom), ``loss.png`` and :data:`~symplearn.frames.HELDOUT_NAME` (the held-out
frames with their reference labels; ``check-forces`` and ``md --potential`` start from them).
"""

from __future__ import annotations

import copy
import hashlib
import time
from pathlib import Path

import torch

from .._errors import SymplearnError
from .._files import _jsonable, check_output_folder
from .._version import __version__
from ..frames import FRAME_SUFFIXES, HELDOUT_NAME, frames_extxyz, read_frames
from .args import DTYPES, pos_float

#: ``--model`` names of this path -> model kinds of :mod:`symplearn.models.potentials`
POTENTIAL_MODELS = {"potential-conservative": "symmetry-function", "potential-direct": "direct-force"}


def add_arguments(p) -> None:
    """The options of potential training on ``symplearn train``'s parser."""
    g = p.add_argument_group(
        "potentials from labelled frames "
        "(--data frames.extxyz --model potential-conservative|potential-direct)"
    )
    g.add_argument(
        "--cutoff",
        type=pos_float,
        default=2.5,
        help="descriptor cutoff, in the data's length unit (default 2.5)",
    )
    g.add_argument("--n-basis", type=int, default=12, help="radial basis functions (default 12)")
    g.add_argument(
        "--energy-weight", type=float, default=100.0, help="weight of the per-atom energy loss (default 100)"
    )
    g.add_argument(
        "--heldout-fraction", type=float, default=0.2, help="fraction of frames held out (default 0.2)"
    )


def wants(args) -> bool:
    """Whether a ``train`` command is potential training (a ``potential-*`` model, or frames)."""
    data = getattr(args, "data", None)
    return args.model in POTENTIAL_MODELS or bool(data and Path(data).suffix.lower() in FRAME_SUFFIXES)


def _check_args(args) -> None:
    from ..training import distributed

    if args.model not in POTENTIAL_MODELS:
        raise SymplearnError(
            f"{args.data} holds labelled frames (energies and forces): train --model potential-conservative "
            f"or --model potential-direct on them, not {args.model!r}"
        )
    if not args.data:
        raise SymplearnError(f"--model {args.model} trains on labelled frames: give --data frames.extxyz")
    if Path(args.data).suffix.lower() not in FRAME_SUFFIXES:
        raise SymplearnError(
            f"--model {args.model} trains on labelled frames in extended XYZ ({', '.join(FRAME_SUFFIXES)}), "
            f"got --data {args.data}"
        )
    if distributed.launched_world_size() > 1:
        raise SymplearnError("potential training runs as one process; run it without torchrun")
    given = [
        flag
        for flag, used in (
            ("--system", args.system),
            ("--param", args.param),
            ("--noise", args.noise),
            ("--ensemble", args.ensemble),
            ("--integrator", args.integrator),
            ("--rollout-k", args.rollout_k != 1),
            ("--grad-clip", args.grad_clip is not None),
            ("--resume", args.resume),
        )
        if used
    ]
    if given:
        raise SymplearnError(
            f"{', '.join(given)} do{'es' if len(given) == 1 else ''} not apply to potentials trained on "
            "frames; drop them"
        )
    if args.device not in (None, "cpu"):
        raise SymplearnError(f"potential training runs on the CPU; drop --device {args.device}")
    if not 0 < args.heldout_fraction < 1:
        raise SymplearnError(f"--heldout-fraction must be in (0, 1), got {args.heldout_fraction}")
    if args.n_basis < 2:
        raise SymplearnError(f"--n-basis must be at least 2, got {args.n_basis}")
    if not args.energy_weight >= 0:
        raise SymplearnError(f"--energy-weight must be >= 0, got {args.energy_weight}")


def errors(model, data: dict, idx: torch.Tensor) -> dict[str, float | None]:
    """Energy-per-atom and force-per-component errors (RMSE and MAE) of ``model`` on the frames
    ``idx`` of ``data``; energies ``None`` for a model without one."""
    N = model.n_particles
    de, df = [], []
    with torch.no_grad():
        for chunk in idx.split(8):
            out = model.compute(data["q"][chunk], energy=model.has_energy, virial=False)
            df.append((out["forces"] - data["forces"][chunk]).reshape(-1).double())
            if model.has_energy:
                de.append(((out["energy"] - data["energy"][chunk]) / N).double())
    df = torch.cat(df)
    res: dict[str, float | None] = {
        "force_rmse": float(df.pow(2).mean().sqrt()),
        "force_mae": float(df.abs().mean()),
        "energy_rmse_per_atom": None,
        "energy_mae_per_atom": None,
    }
    if de:
        de = torch.cat(de)
        res["energy_rmse_per_atom"] = float(de.pow(2).mean().sqrt())
        res["energy_mae_per_atom"] = float(de.abs().mean())
    return res


def _baselines(data: dict, train_idx, idx, N: int) -> dict[str, float | None]:
    """Errors of the trivial predictors on ``idx``: zero force, and the mean training energy per atom."""
    F = data["forces"][idx].double()
    e = data["energy"].double() / N
    out = {"zero_force_rmse": float(F.pow(2).mean().sqrt()), "mean_energy_rmse_per_atom": None}
    if bool(torch.isfinite(e[train_idx]).all()) and bool(torch.isfinite(e[idx]).all()):
        out["mean_energy_rmse_per_atom"] = float((e[idx] - e[train_idx].mean()).pow(2).mean().sqrt())
    return out


def run(args) -> int:
    """Train a potential on frames and write its model folder (``symplearn train`` dispatches here)."""
    from ..modelio import save_model
    from ..models import build_model
    from ..plotting import loss_history_figure
    from ..training.potentials import train_potential

    _check_args(args)
    out = check_output_folder(args.out, replace=False)
    kind = POTENTIAL_MODELS[args.model]
    conservative = kind != "direct-force"
    frames = read_frames(args.data, need_energy=conservative)
    N, L = frames.n_atoms, frames.box_length
    if args.cutoff > L / 2:
        raise SymplearnError(
            f"--cutoff {args.cutoff:g} is larger than half the frames' box (L/2 = {L / 2:.6g}): give "
            f"--cutoff {L / 2:.4g} or less, or frames of a larger box"
        )
    F = len(frames)
    n_held = max(1, int(round(args.heldout_fraction * F)))
    if n_held >= F:
        raise SymplearnError(
            f"{F} frames leave none to train on with --heldout-fraction {args.heldout_fraction}; "
            "give more frames"
        )
    dtype = DTYPES[args.dtype]
    torch.manual_seed(args.seed)
    model = build_model(
        kind, n_particles=N, box_length=L, cutoff=args.cutoff, n_basis=args.n_basis, width=args.width,
        depth=args.depth, activation=args.activation or "tanh", mass=frames.mass,
    ).to(dtype=dtype)  # fmt: skip
    data = frames.data(dtype)
    batch = min(args.batch_size, F - n_held)
    if not args.quiet:
        print(
            f"{args.model} ({kind}): {F} frames of {N} {frames.symbol} atoms, box {L:.6g}, cutoff "
            f"{args.cutoff:g}; {F - n_held} train, {n_held} held out; {args.steps} steps of {batch} frames",
            flush=True,
        )
    t0 = time.perf_counter()
    fit = train_potential(
        model, data, steps=args.steps, batch_size=batch, lr=args.lr,
        energy_weight=args.energy_weight if conservative else 0.0, validation_fraction=n_held / F,
        eval_every=max(1, args.steps // 50), seed=args.seed,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    model.eval()
    val_idx, train_idx = fit["val_idx"], fit["train_idx"]
    # the errors in float64 against the file's labels (as check-forces and the calculator evaluate)
    exact, data64 = copy.deepcopy(model).double(), frames.data(torch.float64)
    held = errors(exact, data64, val_idx)
    trained = errors(exact, data64, train_idx)
    base = _baselines(data64, train_idx, val_idx, N)
    metrics = {
        "model": args.model,
        "kind": kind,
        "n_frames": F,
        "n_train_frames": len(train_idx),
        "n_heldout_frames": len(val_idx),
        "n_atoms": N,
        "steps": args.steps,
        "wall_time_s": wall,
        **{f"heldout_{k}": v for k, v in held.items()},
        **{f"heldout_{k}": v for k, v in base.items()},
        **{f"train_{k}": v for k, v in trained.items()},
        "units": "the data's own: energy per atom, force per component (energy / length)",
    }
    h = fit["history"]
    history = {"step": h["step"], "train_loss": h["train_loss"], "test_loss": [None] * len(h["step"])}
    config = {
        "data": {
            "file": str(args.data),
            "absolute_path": str(Path(args.data).resolve()),
            "sha256": hashlib.sha256(Path(args.data).read_bytes()).hexdigest(),
            "format": "extxyz frames",
            "n_frames": F,
            "n_atoms": N,
            "symbol": frames.symbol,
            "mass": frames.mass,
            "box_length": L,
            "heldout_frames": sorted(int(i) for i in val_idx),
        },
        "training": {
            "model": args.model,
            "loss": "mean (F - F_ref)^2 per component + energy_weight * mean ((E - E_ref) / N)^2",
            "steps": args.steps,
            "batch_size": batch,
            "lr": args.lr,
            "energy_weight": args.energy_weight if conservative else 0.0,
            "heldout_fraction": args.heldout_fraction,
            "seed": args.seed,
            "dtype": args.dtype,
            "package": f"symplearn {__version__}",
        },
        "cli": {"threads": torch.get_num_threads(), "seed": args.seed},
    }
    # the first held-out frames (in the seeded split's order): up to 8, and about 2e4 atoms in all
    keep = val_idx[: max(1, min(8, 20_000 // N))]
    save_model(
        model.cpu(), out, config=_jsonable(config), metrics=metrics,
        loss_figure=loss_history_figure(history) if history.get("step") else None,
        files={HELDOUT_NAME: frames_extxyz(frames, keep)},
    )  # fmt: skip
    if not args.quiet:
        e = held["energy_rmse_per_atom"]
        e_txt = f"energy RMSE {e:.3g}/atom (MAE {held['energy_mae_per_atom']:.3g}), " if e is not None else ""
        print(
            f"held-out frames: {e_txt}force RMSE {held['force_rmse']:.3g} (MAE {held['force_mae']:.3g}; zero "
            f"force: {base['zero_force_rmse']:.3g}) after {args.steps} steps ({wall:.1f} s); model in {out}"
        )
    return 0
