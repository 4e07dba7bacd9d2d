"""Pieces shared by the Kepler and Noether experiments: a per-step timer, and training several
model kinds on one budget.

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


def time_per_step(flow: FlowMap, z: Tensor, n_steps: int = 200) -> float:
    """Seconds per step of ``flow`` on the batch ``z`` (inference mode, after one warm-up)."""
    with torch.inference_mode():
        integrate(flow, z, 5, check_finite=False)
        t0 = time.perf_counter()
        integrate(flow, z, n_steps, check_finite=False)
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
