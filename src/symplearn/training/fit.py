"""``fit``: the one entry point that trains any model (MLP field, HNN, LNN, SympNet) in place.

Reproducibility: ``fit`` seeds its own minibatch sampler with ``seed`` and uses no other
randomness; the weights a model starts from are the caller's business (seed construction with
:func:`seed_everything`). The same seed, data and starting weights give the same trained weights
on the CPU, and a run resumed from a checkpoint ends with bit-identical weights to an
uninterrupted one.

Data-parallel: under ``torchrun`` (a default ``torch.distributed`` process group, e.g. from
:func:`symplearn.training.distributed.init_from_env`), ``fit`` wraps the loss in
``DistributedDataParallel``, each rank evaluates its shard of the same global minibatch of
``batch_size`` examples, and rank 0 alone writes checkpoints; the result equals the one-process
run to round-off (see :mod:`symplearn.training.distributed`).

Threads: ``fit`` leaves ``torch.set_num_threads`` alone. Small networks (width 32-256) on batches
of a few hundred states gain nothing from intra-op threads and lose a lot when several processes
share few cores (oversubscription); the command line sets one thread unless told otherwise
(``symplearn train --threads``), and scripts that call ``fit`` should do the same on small
machines.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from .._files import _jsonable
from .._progress import Progress
from .._validate import check_float, check_int, check_positive
from ..datasets import TrainingData, as_training_data
from ..dynamics import Dynamics, FlowMap
from ..integrators import Integrator
from ..integrators.discretize import discretize
from . import distributed as _dist
from .checkpoint import checkpoint_path, data_fingerprint, load_checkpoint, save_checkpoint
from .losses import LOSSES, acceleration_loss, derivative_loss, rollout_loss

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("cosine", "constant")
#: examples per forward pass when a whole split is evaluated, and the size of the fixed,
#: evenly spaced subset of the test split evaluated at each log point
_EVAL_CHUNK = 4096


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA).

    Call it before building a model so that its initial weights are reproducible; ``fit``
    itself only draws from its own generator, seeded by its ``seed`` argument.
    """
    if not isinstance(seed, int):
        raise SymplearnError(f"seed must be an integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeding the legacy global generator is the point)
    torch.manual_seed(seed)


@dataclass
class FitResult:
    """What :func:`fit` returns (the model itself is trained in place).

    Attributes:
        loss: the loss that was minimised ("derivative", "acceleration" or "rollout").
        steps: optimizer steps taken in total (a resumed run counts the earlier ones).
        train_loss: the loss over the whole training split after the last step.
        test_loss: the same over the test split (``None`` without test trajectories).
        wall_time: seconds spent training, summed over resumed parts.
        history: ``{"step", "train_loss", "test_loss", "lr"}``, lists with one entry per log
            point; ``train_loss`` is the mean minibatch loss since the previous log point,
            ``test_loss`` the loss over the test split at that step (over a fixed, evenly
            spaced subset of 4096 examples when the split is larger; ``None`` without a test
            split), ``lr`` the learning rate used by that step.
        resumed_from: the step the run was resumed from, or ``None``.
        checkpoint: the checkpoint file, when a checkpoint directory was given.
        settings: the run's settings, JSON-able (loss, steps, batch size, lr, optimizer, weight
            decay, schedule, grad clip, seed, dtype, rollout k / dt / integrator, a description
            of the data and the model's config), e.g. for ``config.json["training"]``.
    """

    loss: str
    steps: int
    train_loss: float
    test_loss: float | None
    wall_time: float
    history: dict[str, list] = field(default_factory=dict)
    resumed_from: int | None = None
    checkpoint: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        """The numbers for ``metrics.json``."""
        return {
            "loss": self.loss,
            "train_loss": self.train_loss,
            "test_loss": self.test_loss,
            "steps": self.steps,
            "wall_time_s": self.wall_time,
        }


# -- examples: what one minibatch of each loss is made of -----------------------------------
class _Points:
    """Independent points ``(x_i, y_i)`` at times ``t_i`` (``t=None``: t = 0) for
    derivative/acceleration matching."""

    def __init__(self, x: Tensor, y: Tensor, loss_fn, t: Tensor | None = None):
        self.x, self.y, self.t, self.loss_fn = x, y, t, loss_fn
        self.size = x.shape[0]

    def loss(self, model, idx: Tensor) -> Tensor:
        idx = idx.to(self.x.device)
        t = None if self.t is None else self.t[idx]
        return self.loss_fn(model, self.x[idx], self.y[idx], t)


class _Windows:
    """Windows ``z[s : s + k + 1, j]`` of consecutive states, starting at times ``t[s, j]``
    (``t=None``: t = 0), for rollout matching."""

    def __init__(self, z: Tensor, k: int, loss_fn, t: Tensor | None = None):
        self.z, self.k, self.t, self.loss_fn = z, k, t, loss_fn
        self.n_traj = z.shape[1]
        self.size = (z.shape[0] - k) * self.n_traj
        self.offsets = torch.arange(k + 1, device=z.device)

    def loss(self, model, idx: Tensor) -> Tensor:
        idx = idx.to(self.z.device)
        start, traj = idx // self.n_traj, idx % self.n_traj
        window = self.z[start[None] + self.offsets[:, None], traj[None]]  # (k + 1, B, 2n)
        t0 = None if self.t is None else self.t[start, traj]  # (B,)
        return self.loss_fn(model, window, t0)


def _examples(loss: str, data: TrainingData, split: str, *, k: int, rollout_kwargs: dict):
    d, n = data.z.shape[-1], data.n_dof
    if len(data._index(split)) == 0:
        return None
    t = data.times(split)  # (T, K_split) or None
    if loss == "rollout":
        flow, substeps = rollout_kwargs["flow"], rollout_kwargs["substeps"]
        return _Windows(
            data.states(split),
            k,
            lambda model, w, t0: rollout_loss(flow, w, substeps=substeps, t0=t0),
            t,
        )
    x = data.states(split).reshape(-1, d)
    y = data.derivatives(split).reshape(-1, d)
    t = None if t is None else t.reshape(-1)  # time-major, as x and y
    if loss == "acceleration":
        return _Points(x, y[:, n:], acceleration_loss, t)
    return _Points(x, y, derivative_loss, t)


def _evaluate(model, examples, *, limit: int | None = None) -> float | None:
    """Mean loss over the examples of a split (chunked; chunks weighted by size); with ``limit``,
    over at most that many evenly spaced examples (a fixed subset: no randomness)."""
    if examples is None or examples.size == 0:
        return None
    if limit is not None and examples.size > limit:
        everything = torch.linspace(0, examples.size - 1, limit, dtype=torch.float64).round().long()
    else:
        everything = torch.arange(examples.size)
    total = 0.0
    for lo in range(0, len(everything), _EVAL_CHUNK):
        idx = everything[lo : lo + _EVAL_CHUNK]
        total += float(examples.loss(model, idx).detach()) * len(idx)
    return total / len(everything)


# -- argument checks ------------------------------------------------------------------------
def _device(device: Any) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise SymplearnError(f"unknown device {device!r} (use 'cpu', 'cuda' or 'cuda:N')") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SymplearnError(f"device {device!r} asked for, but CUDA is not available here; use 'cpu'")
    return dev


def _choose_loss(loss: str, model, integrator, lagrangian: bool) -> str:
    if loss == "auto":
        return "rollout" if integrator is not None else model.default_loss
    if loss not in LOSSES:
        raise SymplearnError(f"unknown loss {loss!r}; valid losses: auto, {', '.join(LOSSES)}")
    if isinstance(model, FlowMap) and loss != "rollout":
        raise SymplearnError(
            f"{type(model).__name__} is a flow map (one fixed step, no vector field): it trains "
            f"with loss='rollout', not {loss!r}"
        )
    if integrator is not None and loss != "rollout":
        raise SymplearnError(
            f"an integrator is used only by the rollout loss, not by loss={loss!r}; drop the "
            f"integrator or use loss='rollout'"
        )
    if loss == "acceleration" and not lagrangian:
        raise SymplearnError(
            f"loss='acceleration' is for Lagrangian models (LNN, state (q, q_dot)); "
            f"{type(model).__name__} works on (q, p): use loss='derivative' or 'rollout'"
        )
    return loss


def _rollout_setup(model, data: TrainingData, integrator, dt, k: int) -> dict[str, Any]:
    """Step size, substeps and integrator of a rollout loss (validated)."""
    if data.dt is None:
        raise SymplearnError("a rollout loss needs trajectories with a time step (data dt)")
    if data.n_times < k + 1:
        raise SymplearnError(
            f"a {k}-step rollout needs trajectories of at least {k + 1} saved times, "
            f"the data has {data.n_times}"
        )
    flow = discretize(model, integrator, dt if (dt is not None or isinstance(model, FlowMap)) else data.dt)
    h = float(flow.dt)
    ratio = data.dt / h
    substeps = round(ratio)
    if substeps < 1 or abs(ratio - substeps) > 1e-6 * ratio:
        raise SymplearnError(
            f"the data's time step {data.dt:g} must be a whole multiple of the model's step {h:g}"
        )
    return {"flow": flow, "substeps": substeps}


def _plain(obj: Any) -> Any:
    """JSON-able copy of ``obj`` with plain types only (safe for ``weights_only`` loading)."""
    return json.loads(json.dumps(_jsonable(obj)))


def _rng_state(gen: torch.Generator, device: torch.device) -> dict[str, Tensor]:
    state = {"sampler": gen.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


# -- fit ------------------------------------------------------------------------------------
def fit(
    model,
    data,
    *,
    loss: str = "auto",
    steps: int = 1000,
    batch_size: int = 256,
    lr: float = 1e-3,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    grad_clip: float | str | None = "auto",
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    integrator: Integrator | str | None = None,
    rollout_k: int = 1,
    dt: float | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    progress: bool = True,
    log_every: int | None = None,
) -> FitResult:
    """Train ``model`` in place on ``data``.

    Losses (see :mod:`symplearn.training.losses`); ``loss="auto"`` picks the natural one:

    * ``"derivative"`` (continuous models: MLP field, HNN): ``||f_theta(t, z) - dz/dt||^2``; the
      data's derivatives, or second-order finite differences of its states when it has none;
    * ``"acceleration"`` (Lagrangian models, ``model.state_kind == "lagrangian"``, i.e. LNN):
      ``||q_ddot_theta(q, q_dot) - q_ddot||^2``; canonical data is converted first with
      :meth:`TrainingData.to_lagrangian` (exact with the data's ground-truth system, finite
      differences without);
    * ``"rollout"`` (flow maps, i.e. SympNets, through their own step; or any continuous model
      through ``integrator``): ``rollout_k``-step prediction error. "auto" picks it for flow maps
      and whenever an ``integrator`` is given.

    Time: every loss evaluates the model at the data's times (:attr:`TrainingData.t`; a
    :class:`~symplearn.datasets.Dataset`'s ``t``): a derivative or acceleration sample at its own
    time, a rollout window from the time of its first state. Autonomous models ignore it (the
    same seed gives the same weights as with t = 0); time-dependent ones (PHNN with a forcing,
    ``mlp-t``) learn their dependence on t. Data without times is taken at t = 0.

    Minibatches of ``batch_size`` examples are drawn with replacement from the training split by
    a generator seeded with ``seed`` (the whole split when it is smaller). Adam or AdamW, a
    cosine-annealed (to 0 at ``steps``) or constant learning rate, optional gradient-norm
    clipping.

    Args:
        model: a ``torch.nn.Module`` that is a :class:`~symplearn.Dynamics` or a
            :class:`~symplearn.FlowMap`; trained in place.
        data: :class:`TrainingData` or a :class:`symplearn.data.Dataset`.
        loss: "auto", "derivative", "acceleration" or "rollout".
        steps: total optimizer steps (a resumed run continues up to this many).
        batch_size: examples per step.
        lr: peak learning rate.
        optimizer: "adam" or "adamw".
        weight_decay: L2 (Adam) or decoupled (AdamW) weight decay.
        schedule: "cosine" or "constant".
        grad_clip: clip the global gradient norm to this value; ``None`` does not clip;
            ``"auto"`` uses the model kind's ``default_grad_clip`` (1 for an LNN, none
            otherwise). LNNs need it: where a random network's ``d2L/dq_dot2`` is nearly singular the first
            accelerations and gradients are huge and throw Adam off (on the oscillator, 300
            steps reach an acceleration loss of 7.0 without clipping, 2e-3 with
            ``grad_clip=1``).
        seed: seed of the minibatch sampler.
        device: where to train (default: where the model is); the model is moved there.
        dtype: parameter and data dtype (default: the model's); the model is cast to it.
        integrator: integrator (object or name) for rollout losses of continuous models; default
            the model kind's ``default_integrator`` (Verlet for a separable HNN, implicit
            midpoint for an HNN); the pair is built by :func:`symplearn.discretize`.
        rollout_k: steps per rollout (1 = one-step loss).
        dt: integrator step of continuous models (default the data's spacing; the spacing must
            be a whole multiple of it). For flow maps, ``None`` or the model's own ``dt``.
        checkpoint_dir: write ``checkpoint.pt`` here every ``checkpoint_every`` steps and at
            the end (atomically; tensors and plain containers only).
        checkpoint_every: steps between checkpoints.
        resume: continue from the checkpoint in ``checkpoint_dir`` (same settings required).
        progress: report progress: a tqdm bar with the loss on a terminal; otherwise a plain
            line on stderr (step, train and test loss, lr, seconds) at log points, at most one
            every 5 s plus the last; ``False`` prints nothing.
        log_every: steps between history entries (default ``max(1, steps // 100)``).

    Under a ``torch.distributed`` process group every rank calls ``fit`` with the same arguments
    (``batch_size`` is the global batch; ``device="cuda"`` means ``cuda:LOCAL_RANK``); the
    returned weights and history are the same on every rank.

    Returns:
        :class:`FitResult`.

    Raises:
        SymplearnError: bad arguments, a model/data/loss mismatch, a missing or incompatible
            checkpoint when resuming.
        NonFiniteError: the loss or the gradient became NaN/inf (the message names the step;
            the last checkpoint on disk is from a good step).
    """
    # -- validate ---------------------------------------------------------------------------
    if not isinstance(model, torch.nn.Module) or not isinstance(model, (Dynamics, FlowMap)):
        raise SymplearnError(
            f"fit needs a symplearn model (a torch.nn.Module that is a Dynamics or a FlowMap, "
            f"see symplearn.models.build_model), got {type(model).__name__}"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SymplearnError(f"{type(model).__name__} has no trainable parameters")
    steps = check_int("steps", steps)
    batch_size = check_int("batch_size", batch_size)
    rollout_k = check_int("rollout_k", rollout_k)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every)
    log_every = max(1, steps // 100) if log_every is None else check_int("log_every", log_every)
    lr = check_positive("lr", lr)
    weight_decay = check_float("weight_decay", weight_decay, nonnegative=True)
    if grad_clip == "auto":
        grad_clip = model.default_grad_clip
    if grad_clip is not None:
        grad_clip = check_positive("grad_clip", grad_clip)
    if dt is not None:
        dt = check_positive("dt", dt)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SymplearnError(f"seed must be an integer, got {seed!r}")
    if optimizer not in OPTIMIZERS:
        raise SymplearnError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        raise SymplearnError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
    if resume and checkpoint_dir is None:
        raise SymplearnError("resume=True needs the checkpoint_dir to resume from")

    lagrangian = model.state_kind == "lagrangian"
    loss = _choose_loss(loss, model, integrator, lagrangian)

    # -- place model and data ---------------------------------------------------------------
    ref = params[0]
    device = _dist.training_device(_device(device) if device is not None else ref.device)
    dtype = dtype if dtype is not None else ref.dtype
    if dtype not in (torch.float32, torch.float64):
        raise SymplearnError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")

    data = as_training_data(data)
    if data.z.shape[-1] != model.dim:
        raise SymplearnError(
            f"the data's states have {data.z.shape[-1]} coordinates but the model's phase space "
            f"has {model.dim}"
        )
    if lagrangian:
        data = data.to_lagrangian()
    elif data.state_kind == "lagrangian":
        raise SymplearnError(
            f"{type(model).__name__} works on canonical (q, p) states; the data is Lagrangian (q, q_dot)"
        )
    model.to(device=device, dtype=dtype)
    data = data.to(dtype=dtype, device=device)

    rollout_kwargs: dict[str, Any] = {}
    if loss == "rollout":
        rollout_kwargs = _rollout_setup(model, data, integrator, dt, rollout_k)
    train_ex = _examples(loss, data, "train", k=rollout_k, rollout_kwargs=rollout_kwargs)
    test_ex = _examples(loss, data, "test", k=rollout_k, rollout_kwargs=rollout_kwargs)
    if train_ex.size == 0:
        raise SymplearnError("the training split has no examples for this loss")

    settings = _plain(
        {
            "loss": loss,
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "optimizer": optimizer,
            "weight_decay": weight_decay,
            "schedule": schedule,
            "grad_clip": grad_clip,
            "seed": seed,
            "dtype": str(dtype).removeprefix("torch."),
            "rollout_k": rollout_k if loss == "rollout" else None,
            "dt": getattr(rollout_kwargs.get("flow"), "dt", None),
            "integrator": getattr(getattr(rollout_kwargs.get("flow"), "integrator", None), "name", None),
            "data": data.describe(),
            "training_data_sha256": data_fingerprint(data),  # resume refuses other data of the same shapes
            "model": getattr(model, "config", type(model).__name__),
        }
    )

    # -- optimizer, schedule, sampler -------------------------------------------------------
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.AdamW
    opt = opt_cls(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if schedule == "cosine" else None
    rank, world = _dist.rank(), _dist.world_size()
    sampler = _dist.ShardedBatchSampler(train_ex.size, batch_size, seed, rank, world)
    gen = sampler.generator
    history: dict[str, list] = {"step": [], "train_loss": [], "test_loss": [], "lr": []}
    start, elapsed_before, acc_sum, acc_n = 0, 0.0, 0.0, 0
    ckpt_file = checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    last_ckpt_step: int | None = None

    if resume:
        if not ckpt_file.is_file():
            raise SymplearnError(
                f"cannot resume: there is no checkpoint {ckpt_file}; start the run without resume"
            )
        state = load_checkpoint(ckpt_file)
        diff = {
            k: (state["settings"].get(k), v) for k, v in settings.items() if state["settings"].get(k) != v
        }
        if diff:
            lines = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise SymplearnError(
                f"cannot resume from {ckpt_file}: the run's settings differ from the "
                f"checkpoint's ({lines}); resume with the same settings or start afresh"
            )
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise SymplearnError(f"the checkpoint's weights do not fit the model: {err}") from err
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        gen.set_state(state["rng"]["sampler"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        history = state["history"]
        start, elapsed_before = int(state["step"]), float(state["elapsed"])
        acc_sum, acc_n = float(state["accumulated"][0]), int(state["accumulated"][1])
        last_ckpt_step = start
        if start > steps:
            raise SymplearnError(f"the checkpoint is at step {start}, past steps={steps}")

    def check_parameters(step: int) -> None:
        for name, p in model.named_parameters():
            if not bool(torch.isfinite(p).all()):
                raise NonFiniteError(
                    f"parameter {name!r} became NaN or infinite by step {step}; "
                    f"{_ckpt_note(ckpt_file, last_ckpt_step)}; try a smaller lr or grad_clip"
                )

    def write_checkpoint(step: int) -> None:
        nonlocal last_ckpt_step
        check_parameters(step)
        if rank != 0:  # under DDP, rank 0 alone writes; the others wait until it is on disk
            _dist.barrier()
            last_ckpt_step = step
            return
        save_checkpoint(
            ckpt_file,
            {
                "step": step,
                "elapsed": elapsed_before + time.perf_counter() - t0,
                "accumulated": [acc_sum, acc_n],
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else {},
                "rng": _rng_state(gen, device),
                "history": history,
                "settings": settings,
            },
        )
        _dist.barrier()
        last_ckpt_step = step

    # On CUDA the per-step loss and gradient-norm checks are deferred: the values stay on the
    # device and are read back in one transfer at log points and before checkpoints (a host
    # sync per step would stall the GPU queue); the error still names the first bad step.
    # On the CPU (no queue to stall) every step is checked at once.
    defer = device.type == "cuda"
    pending: list[tuple[int, Tensor, Tensor]] = []

    def check_finite(step: int, value: float, norm: Tensor | float | None) -> None:
        if not math.isfinite(value):
            raise NonFiniteError(
                f"the {loss} loss became {value} at step {step} (lr={lr:g}); "
                f"{_ckpt_note(ckpt_file, last_ckpt_step)}; try a smaller lr or grad_clip"
            )
        if norm is not None and not math.isfinite(float(norm)):
            raise NonFiniteError(
                f"the gradient became NaN or infinite at step {step} (loss {value:.3g}); "
                f"{_ckpt_note(ckpt_file, last_ckpt_step)}; try a smaller lr or grad_clip"
            )

    def flush() -> None:
        nonlocal acc_sum, acc_n
        if not pending:
            return
        values = torch.stack([v for _, v, _ in pending]).double().cpu().tolist()
        norms = torch.stack([n.reshape(()) for _, _, n in pending]).double().cpu().tolist()
        for (step, _, _), value, norm in zip(pending, values, norms):
            check_finite(step, value, norm)
            acc_sum, acc_n = acc_sum + value, acc_n + 1
        pending.clear()

    # -- loop -------------------------------------------------------------------------------
    was_training = model.training
    model.train()
    # under torch.distributed: DDP around the loss (gradients all-reduced in backward)
    step_loss = _dist.wrap_loss(model, train_ex, device)
    bar = Progress(steps, "fit", enabled=progress and rank == 0, initial=start)
    t0 = time.perf_counter()
    try:
        for step in range(start + 1, steps + 1):
            idx, weight = sampler.next()  # one process: the whole minibatch, weight 1
            opt.zero_grad(set_to_none=True)
            batch_loss = step_loss(idx)
            if weight != 1.0:
                batch_loss = batch_loss * weight
            loss_now = _dist.mean_over_ranks(batch_loss.detach())
            if not defer:
                check_finite(step, float(loss_now), None)
            batch_loss.backward()
            grads = [p.grad for p in params if p.grad is not None]
            if grad_clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
            else:
                norm = torch.nn.utils.get_total_norm(grads)
            if defer:  # kept on the device; read back (one transfer) at log points and checkpoints
                pending.append((step, loss_now, norm))
            else:
                check_finite(step, float(loss_now), norm)
                acc_sum, acc_n = acc_sum + float(loss_now), acc_n + 1
            step_lr = opt.param_groups[0]["lr"]
            opt.step()
            if sched is not None:
                sched.step()
            info: dict[str, float] = {}
            at_checkpoint = ckpt_file is not None and (step % checkpoint_every == 0 or step == steps)
            if step % log_every == 0 or step == steps or at_checkpoint:
                flush()
            if step % log_every == 0 or step == steps:
                test = _evaluate(model, test_ex, limit=_EVAL_CHUNK)
                history["step"].append(step)
                history["train_loss"].append(acc_sum / acc_n)
                history["test_loss"].append(test)
                history["lr"].append(step_lr)
                info = {"train": acc_sum / acc_n, "lr": step_lr}
                if test is not None:
                    info["test"] = test
                acc_sum, acc_n = 0.0, 0
            bar.update(1, **info)
            if ckpt_file is not None and (step % checkpoint_every == 0 or step == steps):
                write_checkpoint(step)
        check_parameters(steps)  # the last update may have broken the weights
        wall = elapsed_before + time.perf_counter() - t0
        train_loss = _evaluate(model, train_ex)
        test_loss = _evaluate(model, test_ex)
    finally:
        bar.close()
        model.train(was_training)
    return FitResult(
        loss=loss,
        steps=steps,
        train_loss=train_loss,
        test_loss=test_loss,
        wall_time=wall,
        history=history,
        resumed_from=start if resume else None,
        checkpoint=ckpt_file,
        settings=settings,
    )


def _ckpt_note(ckpt_file: Path | None, step: int | None) -> str:
    if ckpt_file is None:
        return "no checkpoint was written (no checkpoint_dir)"
    if step is None:
        return f"no checkpoint was written yet to {ckpt_file}"
    return f"the last good checkpoint is {ckpt_file} (step {step})"
