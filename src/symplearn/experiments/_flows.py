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
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import FlowMap
from ..integrators import Integrator, get_integrator, integrate


@dataclass
class Flow:
    """A dynamics discretised by an integrator at step dt (what ``discretize`` builds in the new
    core API)."""

    dynamics: Any
    integrator: Integrator
    dt: float

    @property
    def name(self) -> str:
        return self.integrator.name


def make_flow(dynamics: Any, integrator: str | Integrator, dt: float) -> Flow:
    """``Flow(dynamics, integrator, dt)``, the integrator by name or instance; checks the pair."""
    integ = get_integrator(integrator) if isinstance(integrator, str) else integrator
    integ.check(dynamics)
    return Flow(dynamics, integ, float(dt))


def advance(flow: Flow | FlowMap, z: Tensor, n_steps: int, *, save_every: int = 1) -> Tensor:
    """States ``(n_steps // save_every + 1, ..., 2n)`` of ``flow`` from ``z``; NaNs propagate
    (the caller detects escapes). The one call of ``integrate`` in these experiments."""
    if isinstance(flow, FlowMap):
        return integrate(flow, z, flow.dt, n_steps, None, save_every=save_every, check_finite=False).z
    return integrate(
        flow.dynamics, z, flow.dt, n_steps, flow.integrator, save_every=save_every, check_finite=False
    ).z


class TracedStep(FlowMap):
    """One step of an explicit integrator on a dynamics, traced with ``torch.jit.trace``."""

    def __init__(self, flow: Flow, example: Tensor):
        dyn = flow.dynamics
        if isinstance(dyn, torch.nn.Module):
            dyn = copy.deepcopy(dyn).requires_grad_(False)  # weights become trace constants
        integ, dt = flow.integrator, flow.dt
        self.n_dof = example.shape[-1] // 2
        self.dt = dt
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings on shape checks (shapes are fixed)
            self._fn = torch.jit.trace(lambda z: integ.step(dyn, z, dt), example, check_trace=False)

    def step(self, z: Tensor) -> Tensor:
        return self._fn(z)


def _same(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def fast_flow(flow: Flow, example: Tensor) -> Flow | FlowMap:
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
            err = _same(fast.step(example), flow.integrator.step(flow.dynamics, example, flow.dt))
    except Exception:  # noqa: BLE001 - tracing is an optimisation only
        return flow
    if not err <= 1e-14:
        raise SymplearnError(f"traced {flow.name} differs from the eager one by {err:.3g}")
    return fast


def time_per_step(flow: Flow | FlowMap, z: Tensor, n_steps: int = 200) -> float:
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
