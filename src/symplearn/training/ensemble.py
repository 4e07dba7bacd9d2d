"""Seed ensembles on one device: K models of one architecture trained at once.

:func:`fit_ensemble` builds model ``k`` exactly as a single run with seed ``seeds[k]`` builds it
(:func:`~symplearn.training.seed_everything` then ``build_model(**config)``), stacks the K sets
of weights with :func:`torch.func.stack_module_state` (every parameter gains a leading model axis
``K``) and trains them with ONE optimizer over the stacked tensors.

Why this equals K separate :func:`~symplearn.training.fit` runs: the summed loss
``sum_k L_k(theta_k)`` has gradient ``dL_k/dtheta_k`` in slice ``k`` (the models share nothing);
Adam/AdamW and the learning-rate schedule act elementwise with the same hyper-parameters; gradient
clipping is applied per model (each model's own global norm); and model ``k`` draws its own
minibatches from a generator seeded with ``seeds[k]``, the same indices ``fit(seed=seeds[k])``
draws (per-model minibatches, not shared ones). What differs is the summation order inside the
batched matrix products (``bmm`` instead of ``addmm``), so the weights agree to round-off, not
bit for bit (tested: float64, see ``tests/test_ensemble.py``).

How the K models are evaluated at once:

* HNN and separable HNN (derivative loss): the closed-form gradient of
  :class:`~symplearn.models._common.ScalarMLP` written batched over models, one ``baddbmm`` /
  ``bmm`` per layer for all K networks (fewer, larger operations than ``vmap``);
* every other continuous model (MLP field, LNN): :func:`torch.vmap` over
  :func:`torch.func.functional_call`.

Rollout losses (flow maps, integrators) are not supported here (implicit integrators iterate to
a data-dependent tolerance, which ``vmap`` cannot batch): train those models one by one.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from .._files import _jsonable, write_json
from .._progress import Progress
from .._validate import check_float, check_int, check_positive
from ..datasets import as_training_data
from ..dynamics import Dynamics
from ..geometry import apply_J
from .fit import (
    _EVAL_CHUNK,
    OPTIMIZERS,
    SCHEDULES,
    FitResult,
    _choose_loss,
    _device,
    _examples,
    _plain,
    seed_everything,
)

#: file name of an ensemble's summary inside its output folder
SUMMARY_NAME = "ensemble.json"


@dataclass
class EnsembleResult:
    """What :func:`fit_ensemble` returns.

    Attributes:
        models: the K trained models (ordinary modules, one per seed, on the CPU/device trained).
        results: one :class:`~symplearn.training.FitResult` per model; ``wall_time`` is the
            ensemble's wall time (the K models were trained together), ``settings["seed"]`` the
            model's seed.
        seeds: the seeds, in model order.
        wall_time: seconds the ensemble took.
        path: "hnn-bmm" (batched closed-form HNN gradient) or "vmap" (generic).
    """

    models: list
    results: list[FitResult]
    seeds: list[int]
    wall_time: float
    path: str
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Per-seed final losses and their mean, standard deviation (ddof=1), min and max."""

        def stats(values: list[float | None]) -> dict[str, Any] | None:
            vals = [v for v in values if v is not None]
            if not vals:
                return None
            t = torch.tensor(vals, dtype=torch.float64)
            return {
                "mean": float(t.mean()),
                "std": float(t.std()) if len(vals) > 1 else 0.0,
                "min": float(t.min()),
                "max": float(t.max()),
            }

        train = [r.train_loss for r in self.results]
        test = [r.test_loss for r in self.results]
        return {
            "k": len(self.models),
            "seeds": self.seeds,
            "path": self.path,
            "loss": self.results[0].loss,
            "steps": self.results[0].steps,
            "wall_time_s": self.wall_time,
            "train_loss": train,
            "test_loss": test,
            "train_loss_stats": stats(train),
            "test_loss_stats": stats(test),
            "model": self.results[0].settings.get("model"),
        }

    def save(
        self,
        out: str | os.PathLike,
        *,
        config: dict[str, Any] | None = None,
        loss_figure: Callable[[FitResult], Any] | None = None,
    ) -> Path:
        """Write each model as an ordinary model folder ``out/seed-<s>/`` (through
        :func:`symplearn.modelio.save_model`, loadable with ``load_model``) and the summary to
        ``out/ensemble.json``.

        Args:
            out: the ensemble folder (created if needed).
            config: extra run settings stored in every model's ``config.json`` (as for
                ``save_model``).
            loss_figure: draws each model's ``loss.png`` from its fit result (e.g.
                :func:`symplearn.plotting.fit_loss_figure`); none when ``None``.

        Returns:
            The folder.
        """
        from ..modelio import save_model

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        folders = []
        for seed, model, result in zip(self.seeds, self.models, self.results):
            folder = out / f"seed-{seed}"
            save_model(
                model.cpu(), folder, result=result, config=config,
                loss_figure=loss_figure(result) if loss_figure is not None else None,
            )  # fmt: skip
            folders.append(folder.name)
        write_json(out / SUMMARY_NAME, _jsonable({**self.summary(), "folders": folders}))
        return out


# -- batched losses ---------------------------------------------------------------------------
def _scalar_mlp_grad(P: dict[str, Tensor], prefix: str, depth: int, act, x: Tensor) -> Tensor:
    """Closed-form input gradient of K stacked ScalarMLPs.

    Args: P: stacked parameters (``prefix.hidden.i.weight``: ``(K, w, d_in)``, ...); x: ``(K, B, d)``.
    Returns: ``(K, B, d)``.
    """
    h, cache = x, []
    for i in range(depth):
        W, b = P[f"{prefix}.hidden.{i}.weight"], P[f"{prefix}.hidden.{i}.bias"]
        a = torch.baddbmm(b.unsqueeze(1), h, W.transpose(1, 2))
        h = act.fn(a)
        cache.append((a, h))
    g = P[f"{prefix}.out.weight"]  # (K, 1, w): broadcasts over the batch in the first backprop
    for i in reversed(range(depth)):
        a, h = cache[i]
        g = torch.bmm(act.backprop(g, a, h), P[f"{prefix}.hidden.{i}.weight"])
    return g


def _batched_field(base, P, B, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, str]:
    """Vector fields of the K models at ``x`` ``(K, N, 2n)`` and times ``t`` ``(K, N)`` (``None``:
    t = 0) -> ``(K, N, 2n)``. (The HNN paths are autonomous: no time.)"""
    from ..models.hnn import HNN, SeparableHNN

    if type(base) is HNN:
        net = base.energy_net
        return apply_J(_scalar_mlp_grad(P, "energy_net", len(net.hidden), net.act, x))
    if type(base) is SeparableHNN:
        n = base.n_dof
        kin, pot = base.kinetic_net, base.potential_net
        dT = _scalar_mlp_grad(P, "kinetic_net", len(kin.hidden), kin.act, x[..., n:])
        dV = _scalar_mlp_grad(P, "potential_net", len(pot.hidden), pot.act, x[..., :n])
        return torch.cat([dT, -dV], dim=-1)

    if t is None:

        def one(p, b, z):
            return torch.func.functional_call(base, (p, b), (0.0, z))

        return torch.vmap(one)(P, B, x)

    def one_t(p, b, z, tt):
        return torch.func.functional_call(base, (p, b), (tt, z))

    return torch.vmap(one_t)(P, B, x, t)


def _path(base) -> str:
    from ..models.hnn import HNN, SeparableHNN

    return "hnn-bmm" if type(base) in (HNN, SeparableHNN) else "vmap"


def _batched_losses(base, P, B, x: Tensor, y: Tensor, loss: str, t: Tensor | None = None) -> Tensor:
    """Per-model mean loss ``(K,)`` for inputs ``x`` ``(K, N, 2n)`` at times ``t`` ``(K, N)``
    (``None``: t = 0) and targets ``y``."""
    f = _batched_field(base, P, B, x, t)
    if loss == "acceleration":
        f = f[..., base.n_dof :]
    return (f - y).pow(2).sum(-1).mean(-1)


# -- fit_ensemble -----------------------------------------------------------------------------
def fit_ensemble(
    model_config: dict[str, Any],
    data,
    *,
    seeds: Sequence[int] | int = 4,
    loss: str = "auto",
    steps: int = 1000,
    batch_size: int = 256,
    lr: float = 1e-3,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    grad_clip: float | str | None = "auto",
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    log_every: int | None = None,
) -> EnsembleResult:
    """Train one model per seed, all at once on one device (see the module docstring).

    Model ``k`` starts from the weights ``seed_everything(seeds[k]); build_model(**model_config)``
    gives and is trained on the minibatches ``fit(..., seed=seeds[k])`` would draw, so it ends
    where ``fit`` with that seed ends, up to round-off. Arguments as for
    :func:`~symplearn.training.fit`, except:

    Args:
        model_config: ``model.config`` of the architecture (``{"kind": "hnn", "n_dof": 1, ...}``).
        data: :class:`TrainingData` or :class:`~symplearn.datasets.Dataset`.
        seeds: the seeds (one model each), or K for seeds ``0..K-1``.
        loss: "auto", "derivative" or "acceleration" (rollout losses: train one by one with fit).
        dtype: parameter and data dtype of every model.

    Returns:
        :class:`EnsembleResult` (K models, K FitResults, the summary).

    Raises:
        SymplearnError: bad arguments, a flow map or a rollout loss, a model/data mismatch.
        NonFiniteError: a model's loss or gradient became NaN/inf (the message names its seed).
    """
    from ..models import build_model

    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = list(range(check_int("seeds", seeds)))
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise SymplearnError(f"seeds must be a positive count or a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SymplearnError(
            f"seeds must be distinct (each model's folder is named by its seed), got {seeds}"
        )
    if not isinstance(model_config, dict) or "kind" not in model_config:
        raise SymplearnError(
            f"model_config must be a model's config dict (model.config, with 'kind'), got {model_config!r}"
        )
    steps = check_int("steps", steps)
    batch_size = check_int("batch_size", batch_size)
    log_every = max(1, steps // 100) if log_every is None else check_int("log_every", log_every)
    lr = check_positive("lr", lr)
    weight_decay = check_float("weight_decay", weight_decay, nonnegative=True)
    if optimizer not in OPTIMIZERS:
        raise SymplearnError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        raise SymplearnError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
    if dtype not in (torch.float32, torch.float64):
        raise SymplearnError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    device = _device(device) if device is not None else torch.device("cpu")

    models = []
    for s in seeds:
        seed_everything(s)
        models.append(build_model(**model_config).to(device=device, dtype=dtype))
    base = models[0]
    if not isinstance(base, Dynamics):
        raise SymplearnError(
            f"{type(base).__name__} is a flow map: it trains with a rollout loss, which ensembles do "
            f"not batch; train each seed with fit"
        )
    lagrangian = base.state_kind == "lagrangian"
    loss = _choose_loss(loss, base, None, lagrangian)
    if loss == "rollout":
        raise SymplearnError("ensembles train with the derivative or acceleration loss; use fit for rollouts")
    if grad_clip == "auto":
        grad_clip = base.default_grad_clip
    if grad_clip is not None:
        grad_clip = check_positive("grad_clip", grad_clip)

    data = as_training_data(data)
    if data.z.shape[-1] != base.dim:
        raise SymplearnError(
            f"the data's states have {data.z.shape[-1]} coordinates; the model's phase space has {base.dim}"
        )
    if lagrangian:
        data = data.to_lagrangian()
    elif data.state_kind == "lagrangian":
        raise SymplearnError(
            f"{type(base).__name__} works on canonical (q, p) states; the data is Lagrangian"
        )
    data = data.to(dtype=dtype, device=device)
    train_ex = _examples(loss, data, "train", k=1, rollout_kwargs={})
    test_ex = _examples(loss, data, "test", k=1, rollout_kwargs={})
    if train_ex is None or train_ex.size == 0:
        raise SymplearnError("the training split has no examples for this loss")

    base_settings = {
        "loss": loss,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "weight_decay": weight_decay,
        "schedule": schedule,
        "grad_clip": grad_clip,
        "dtype": str(dtype).removeprefix("torch."),
        "rollout_k": None,
        "dt": None,
        "integrator": None,
        "data": data.describe(),
        "model": base.config,
    }

    # -- stacked parameters, one optimizer ----------------------------------------------------
    P, Bf = torch.func.stack_module_state(models)  # leaves with requires_grad, leading axis K
    names = list(P)
    params = [P[n] for n in names]
    skeleton = copy.deepcopy(base)  # functional_call template (vmap path)
    K = len(seeds)
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.AdamW
    opt = opt_cls(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if schedule == "cosine" else None
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    X, Y, Tt = train_ex.x, train_ex.y, train_ex.t

    def eval_losses(ex, limit: int | None) -> list[float | None]:
        if ex is None or ex.size == 0:
            return [None] * K
        if limit is not None and ex.size > limit:
            idx = torch.linspace(0, ex.size - 1, limit, dtype=torch.float64).round().long()
        else:
            idx = torch.arange(ex.size)
        total = torch.zeros(K, dtype=torch.float64, device=device)
        with torch.no_grad():
            for lo in range(0, len(idx), _EVAL_CHUNK):
                chunk = idx[lo : lo + _EVAL_CHUNK].to(device)
                x = ex.x[chunk].expand(K, -1, -1)
                y = ex.y[chunk].expand(K, -1, -1)
                tc = None if ex.t is None else ex.t[chunk].expand(K, -1)
                total += _batched_losses(skeleton, P, Bf, x, y, loss, tc).double() * len(chunk)
        return (total / len(idx)).tolist()

    histories = [{"step": [], "train_loss": [], "test_loss": [], "lr": []} for _ in seeds]
    acc = torch.zeros(K, dtype=torch.float64)
    acc_n = 0
    bar = Progress(steps, f"ensemble x{K}", enabled=progress)
    t0 = time.perf_counter()
    try:
        for step in range(1, steps + 1):
            if batch_size >= train_ex.size:
                idx = torch.arange(train_ex.size).expand(K, -1)
            else:
                idx = torch.stack([torch.randint(train_ex.size, (batch_size,), generator=g) for g in gens])
            idx = idx.to(device)
            opt.zero_grad(set_to_none=True)
            tb = None if Tt is None else Tt[idx]
            losses = _batched_losses(skeleton, P, Bf, X[idx], Y[idx], loss, tb)  # (K,)
            values = losses.detach().double().cpu()
            bad = ~torch.isfinite(values)
            if bool(bad.any()):
                which = [seeds[i] for i in torch.nonzero(bad).flatten().tolist()]
                raise NonFiniteError(
                    f"the {loss} loss became NaN/inf at step {step} for seed(s) {which} (lr={lr:g}); "
                    f"try a smaller lr or grad_clip"
                )
            losses.sum().backward()
            grads = [p.grad for p in params if p.grad is not None]  # an HNN's output bias has none
            sq = sum(g.reshape(K, -1).double().pow(2).sum(1) for g in grads)
            norms = sq.sqrt()  # (K,) each model's global gradient norm
            if not bool(torch.isfinite(norms).all()):
                raise NonFiniteError(f"a gradient became NaN or infinite at step {step}; try a smaller lr")
            if grad_clip is not None:
                # as torch.nn.utils.clip_grad_norm_, per model
                coef = (grad_clip / (norms + 1e-6)).clamp(max=1.0)
                for g in grads:
                    g.mul_(coef.to(g.dtype).view(K, *([1] * (g.ndim - 1))))
            step_lr = opt.param_groups[0]["lr"]
            opt.step()
            if sched is not None:
                sched.step()
            acc += values
            acc_n += 1
            info: dict[str, float] = {}
            if step % log_every == 0 or step == steps:
                test = eval_losses(test_ex, _EVAL_CHUNK)
                for k, h in enumerate(histories):
                    h["step"].append(step)
                    h["train_loss"].append(float(acc[k]) / acc_n)
                    h["test_loss"].append(test[k])
                    h["lr"].append(step_lr)
                info = {"train_mean": float(acc.mean()) / acc_n, "lr": step_lr}
                acc.zero_()
                acc_n = 0
            bar.update(1, **info)
        wall = time.perf_counter() - t0
        train_final = eval_losses(train_ex, None)
        test_final = eval_losses(test_ex, None)
    finally:
        bar.close()

    # -- unstack into ordinary modules --------------------------------------------------------
    results = []
    with torch.no_grad():
        for k, model in enumerate(models):
            state = {n: P[n][k].detach().clone() for n in names}
            state.update({n: Bf[n][k].clone() for n in Bf})
            model.load_state_dict(state)
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise NonFiniteError(f"the weights of seed {seeds[k]} became NaN or infinite")
            results.append(
                FitResult(
                    loss=loss,
                    steps=steps,
                    train_loss=train_final[k],
                    test_loss=test_final[k],
                    wall_time=wall,
                    history=histories[k],
                    settings=_plain({**base_settings, "seed": seeds[k]}),
                )
            )
    return EnsembleResult(models=models, results=results, seeds=seeds, wall_time=wall, path=_path(base))


__all__ = ["SUMMARY_NAME", "EnsembleResult", "fit_ensemble"]
