"""Long batched rollouts for the Kepler and Noether experiments: the one place they call
:func:`~symplearn.integrators.integrate`, and a traced one-step map for explicit integrators.

Why tracing: a rollout of a small network on CPU is bound by the per-operation overhead of
eager PyTorch (a Verlet step of a two-layer HNN is ~60 tensor operations on a (16, 4) batch;
each costs microseconds whatever the batch), not by arithmetic. ``torch.jit.trace`` of one
step replays the same operations with less interpreter overhead (measured in the Kepler
report). The traced step is checked against the eager one before use.
"""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import DiscretizedDynamics, FlowMap, discretize
from ..integrators import Integrator, integrate


def make_flow(dynamics: Any, integrator: str | Integrator, dt: float) -> DiscretizedDynamics:
    """``discretize(dynamics, integrator, dt)`` (which checks the pair)."""
    return discretize(dynamics, integrator, dt)


def advance(flow: FlowMap, z: Tensor, n_steps: int, *, save_every: int = 1) -> Tensor:
    """States ``(n_steps // save_every + 1, ..., 2n)`` of ``flow`` from ``z``; NaNs propagate
    (the caller detects escapes). The one call of ``integrate`` in these experiments."""
    return integrate(flow, z, n_steps, save_every=save_every, check_finite=False).z


class TracedStep(FlowMap):
    """One step of an explicit integrator on an autonomous dynamics, traced with
    ``torch.jit.trace`` (the time is not an input of the trace: autonomous dynamics only)."""

    def __init__(self, flow: DiscretizedDynamics, example: Tensor):
        dyn = flow.dynamics
        if isinstance(dyn, torch.nn.Module):
            dyn = copy.deepcopy(dyn).requires_grad_(False)  # weights become trace constants
        integ, dt = flow.integrator, flow.dt
        self.n_dof = flow.n_dof
        self.dt = dt
        self.integrator = integ
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings on shape checks (shapes are fixed)
            self._fn = torch.jit.trace(lambda z: integ.step(dyn, 0.0, z, dt), example, check_trace=False)

    def step(self, t: float | Tensor, z: Tensor) -> Tensor:
        return self._fn(z)


def _same(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def fast_flow(flow: DiscretizedDynamics, example: Tensor) -> FlowMap:
    """The same flow with less per-operation overhead: explicit integrators get a traced step,
    checked to reproduce the eager one to 1e-14 relative on ``example``. Implicit ones are
    returned as they are: their iteration count depends on the data, and tracing only their
    field saved nothing measurable (the solve's own operations and convergence checks dominate);
    so is a flow whose tracing fails."""
    if flow.integrator.implicit:
        return flow
    try:
        fast = TracedStep(flow, example)
        with torch.no_grad():
            err = _same(fast.step(0.0, example), flow.step(0.0, example))
    except Exception:  # noqa: BLE001 - tracing is an optimisation only
        return flow
    if not err <= 1e-14:
        raise SymplearnError(f"traced {flow!r} differs from the eager one by {err:.3g}")
    return fast


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
