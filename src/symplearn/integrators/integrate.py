"""The one entry point that advances any flow map, true or learned, from a batch of states."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from .._progress import Progress
from .._validate import check_int
from .._validate import check_state as _check_state
from ..dynamics import FlowMap


class Trajectory(NamedTuple):
    """Result of :func:`integrate`.

    Attributes:
        t: saved times, ``(T,)``.
        z: saved states, ``(T, ..., 2n)`` (time first, then the batch shape of ``z0``).
    """

    t: Tensor
    z: Tensor


def check_state(z0, dim: int | None, name: str = "z0") -> None:
    """:func:`symplearn._validate.check_state` with the argument named ``z0`` (as in :func:`integrate`)."""
    _check_state(z0, dim, name)


def integrate(
    flow: FlowMap,
    z0: Tensor,
    n_steps: int,
    *,
    save_every: int = 1,
    t0: float = 0.0,
    check_finite: bool = True,
    progress: bool = False,
    desc: str = "integrating",
) -> Trajectory:
    """Advance a flow map ``n_steps`` times from a batch of initial states.

    A continuous dynamics (ground-truth system or learned model) is first paired with an
    integrator and a step by :func:`symplearn.discretize`; a learned flow map (SympNet) is
    passed as it is::

        traj = integrate(discretize(system, "verlet", 0.01), z0, 10_000)

    Differentiable end to end (no ``torch.no_grad`` is applied, so training can backpropagate
    through a rollout); wrap long rollouts in ``torch.inference_mode()``.

    Args:
        flow: the :class:`~symplearn.dynamics.FlowMap` (``step(t, z)``, ``dt``).
        z0: initial states ``(..., 2n)``; any leading batch shape.
        n_steps: number of steps (> 0).
        save_every: keep every k-th state (the initial and the final state are always kept).
        t0: initial time (non-autonomous dynamics see ``t0 + k dt``).
        check_finite: raise :class:`~symplearn.NonFiniteError` (naming the step) as soon as a
            saved state is NaN or infinite, instead of propagating it.
        progress: show progress (a tqdm bar on a terminal, periodic lines otherwise).
        desc: label of the progress display.

    Returns:
        :class:`Trajectory` with ``t: (T,)`` and ``z: (T, ..., 2n)``,
        ``T = ceil(n_steps / save_every) + 1``.

    Raises:
        SymplearnError: bad arguments (not a flow map, non-positive n_steps, wrong state shape).
        ConvergenceError: an implicit step did not converge.
        NonFiniteError: a state became NaN/inf.
    """
    if not isinstance(flow, FlowMap):
        raise SymplearnError(
            f"integrate advances a flow map; got {type(flow).__name__}. Pair a continuous dynamics "
            f"with an integrator first: integrate(symplearn.discretize(dynamics, 'verlet', dt), z0, "
            f"n_steps)"
        )
    n_steps = check_int("n_steps", n_steps)
    save_every = check_int("save_every", save_every)
    check_state(z0, flow.dim)
    dt = float(flow.dt)
    saved = [z0]
    times = [float(t0)]
    z = z0
    with Progress(n_steps, desc, enabled=progress) as bar:
        for k in range(1, n_steps + 1):
            z = flow.step(t0 + (k - 1) * dt, z)
            if k % save_every == 0 or k == n_steps:
                if check_finite and not bool(torch.isfinite(z).all()):
                    raise NonFiniteError(
                        f"the state became NaN or infinite by step {k} (t={t0 + k * dt:g}); try a smaller dt"
                    )
                saved.append(z)
                times.append(t0 + k * dt)
                bar.update(k - bar.n)
    t = torch.tensor(times, dtype=z0.dtype, device=z0.device)
    return Trajectory(t, torch.stack(saved, 0))


def reference_trajectory(
    dynamics,
    z0: Tensor,
    dt: float,
    n_steps: int,
    *,
    substeps: int = 10,
    integrator=None,
    save_every: int = 1,
    progress: bool = False,
) -> Trajectory:
    """An accurate reference trajectory: Gauss-Legendre 6 (order 6, symplectic, any H) with
    ``substeps`` internal steps per step ``dt``, in float64 whatever the dtype of ``z0``.

    The one reference-solution path of the library (data sets, rollout errors, experiments).

    Args:
        dynamics: a continuous dynamics (system or model).
        z0: ``(..., 2n)`` initial states.
        dt: the spacing of the returned states (times ``k dt``).
        n_steps: number of steps of size ``dt``.
        substeps: internal steps per ``dt``.
        integrator: another reference integrator (instance or name) instead of Gauss-Legendre 6.
        save_every: keep every k-th state of spacing ``dt``.
        progress: show progress.

    Returns:
        :class:`Trajectory` in float64, ``t: (T,)``, ``z: (T, ..., 2n)``.
    """
    from .discretize import discretize

    substeps = check_int("substeps", substeps)
    flow = discretize(dynamics, integrator or "gauss-legendre-6", float(dt) / substeps)
    return integrate(
        flow,
        z0.to(torch.float64),
        check_int("n_steps", n_steps) * substeps,
        save_every=check_int("save_every", save_every) * substeps,
        progress=progress,
        desc="reference",
    )


class TracedFlow(FlowMap):
    """A flow map whose step is recorded with ``torch.jit.trace`` and replayed.

    A rollout of a small network on CPU is bound by the per-operation overhead of eager PyTorch
    (an RK4 step of a 128 x 2 HNN is ~60 operations on a (4, 2) batch, each costing
    microseconds whatever the batch), not by arithmetic; replaying a trace removes most of the
    interpreter overhead (measured here: 3.2x for that HNN step, 2.6x for an MLP field's). Built
    by :func:`trace_flow`. The time is an input of the trace, so non-autonomous dynamics are
    traced correctly.

    A trace holds one batch shape: a shape seen for the first time runs eagerly, and is traced
    (and checked against the eager step) once it has been stepped ``trace_after`` times, so
    short catch-up integrations of other shapes (loop refinement) cost no tracing; at most
    ``max_traces`` shapes are kept.

    Limits: no gradients (the weights are frozen into the trace: inference rollouts only), and a
    step without data-dependent control flow (explicit integrators, learned flow maps; an
    implicit solve's iteration count would be frozen, so :func:`trace_flow` refuses them).
    """

    def __init__(self, flow: FlowMap, target: FlowMap, *, trace_after: int = 32, max_traces: int = 16):
        self.flow = flow
        self.n_dof = flow.n_dof
        self.dt = flow.dt
        self.state_kind = flow.state_kind
        self._target = target
        self._traces: dict[tuple, object] = {}
        self._seen: dict[tuple, int] = {}
        self.trace_after = trace_after
        self.max_traces = max_traces

    def step(self, t, z: Tensor) -> Tensor:
        key = (tuple(z.shape), z.dtype, z.device)
        fn = self._traces.get(key)
        if fn is None:
            n = self._seen.get(key, 0) + 1
            self._seen[key] = n
            if n < self.trace_after or len(self._traces) >= self.max_traces:
                return self.flow.step(t, z)
            fn = self._traces[key] = _trace_step(self.flow, self._target, z)
        if fn is False:  # this shape could not be traced faithfully
            return self.flow.step(t, z)
        return fn(torch.as_tensor(t, dtype=z.dtype, device=z.device), z)

    def __repr__(self) -> str:
        return f"traced({self.flow!r})"


def _trace_step(flow: FlowMap, target: FlowMap, example: Tensor, check_steps: int = 3):
    """``torch.jit.trace`` of ``target.step`` at the shape of ``example``, or ``False`` when the
    tracer fails or the trace disagrees with the eager step (100 eps, relative) over a few steps."""
    import warnings

    t0 = torch.zeros((), dtype=example.dtype, device=example.device)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings on shape checks: the shape is fixed
        try:
            fn = torch.jit.trace(target.step, (t0, example.detach()), check_trace=False)
        except Exception:  # noqa: BLE001 - anything the tracer cannot record: run eagerly
            return False
        z_eager = z_trace = example.detach()
        eps = torch.finfo(example.dtype).eps
        for k in range(check_steps):
            t = torch.full((), k * flow.dt, dtype=example.dtype, device=example.device)
            z_eager, z_trace = flow.step(t, z_eager), fn(t, z_trace)
            scale = float(z_eager.abs().max()) or 1.0
            if not float((z_eager - z_trace).abs().max()) <= 100 * eps * scale:
                return False
    return fn


def trace_flow(flow: FlowMap, example: Tensor | None = None) -> FlowMap:
    """A :class:`TracedFlow` of ``flow`` (inference only), traced at once for the shape of
    ``example`` when given, else for each batch shape once it has been stepped a few times.

    Args:
        flow: a flow map: a learned one, or a dynamics discretised with an *explicit* integrator.
        example: ``(..., 2n)`` states of the batch shape the rollout will use (optional).

    Returns:
        The traced flow map; or ``flow`` itself when its step cannot be traced faithfully (an
        implicit integrator's iteration, or a trace that disagrees with the eager step).

    Raises:
        SymplearnError: not a flow map.
    """
    import copy

    from .discretize import DiscretizedDynamics, discretize

    if not isinstance(flow, FlowMap):
        raise SymplearnError(f"trace_flow needs a flow map, got {type(flow).__name__}")
    if isinstance(flow, TracedFlow):
        return flow
    if isinstance(flow, DiscretizedDynamics):
        if flow.integrator.implicit:
            return flow  # data-dependent iteration counts cannot be traced
        dyn = flow.dynamics
        if isinstance(dyn, torch.nn.Module):
            dyn = copy.deepcopy(dyn).requires_grad_(False)  # weights become trace constants
        target = discretize(dyn, flow.integrator, flow.dt)
    elif isinstance(flow, torch.nn.Module):
        target = copy.deepcopy(flow).requires_grad_(False)
    else:
        target = flow
    traced = TracedFlow(flow, target)
    if example is not None:
        key = (tuple(example.shape), example.dtype, example.device)
        fn = _trace_step(flow, target, example)
        if fn is False:
            return flow
        traced._traces[key] = fn
    return traced
