"""Pieces shared by the Kepler and Noether experiments: the one place they call
:func:`~symplearn.integrators.integrate` (long batched rollouts, NaNs allowed: escapes are
detected by the caller), a per-step timer, and training several model kinds on one budget.

Explicit rollouts are traced with :func:`~symplearn.integrators.trace_flow` by the caller: a
step of a small network on CPU is bound by per-operation overhead, not arithmetic.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from ..dynamics import FlowMap
from ..integrators import integrate


def advance(flow: FlowMap, z: Tensor, n_steps: int, *, save_every: int = 1) -> Tensor:
    """States ``(n_steps // save_every + 1, ..., 2n)`` of ``flow`` from ``z``; NaNs propagate
    (the caller detects escapes). The one call of ``integrate`` in these experiments."""
    return integrate(flow, z, n_steps, save_every=save_every, check_finite=False).z


def time_per_step(flow: FlowMap, z: Tensor, n_steps: int = 200) -> float:
    """Seconds per step of ``flow`` on the batch ``z`` (inference mode, after one warm-up)."""
    with torch.inference_mode():
        advance(flow, z, 5)
        t0 = time.perf_counter()
        advance(flow, z, n_steps)
        return (time.perf_counter() - t0) / n_steps


def train_models(
    kinds: list[str],
    z: Tensor,
    dzdt: Tensor,
    *,
    seed: int,
    steps: int,
    batch_size: int,
    lr: float,
    quiet: bool,
    **sizes: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one model of each kind on the same states ``z (N, 2n)`` and exact derivatives, 20 %
    held out, same initial seed, steps, batch and learning rate (float64, derivative loss).

    Returns:
        ``({kind: model}, {kind: FitResult})``.
    """
    from ..models import build_model
    from ..training import TrainingData, fit, seed_everything
    from ._common import log

    n = z.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, n // 5)
    data = TrainingData(z=z, dzdt=dzdt, train_idx=perm[n_test:], test_idx=perm[:n_test])
    models, fits = {}, {}
    for kind in kinds:
        seed_everything(seed)
        model = build_model(kind, n_dof=z.shape[-1] // 2, **sizes).to(torch.float64)
        log(quiet, f"training {kind} ({steps} steps)")
        res = fit(model, data, steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=not quiet)
        models[kind], fits[kind] = model.eval(), res
    return models, fits
