"""The one entry point that advances any flow map, true or learned, from a batch of states."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from .._progress import Progress
from .._validate import check_int
from .._validate import check_state as _check_state
from ..dynamics import FlowMap
from .base import ImplicitIntegrator


class Trajectory(NamedTuple):
    """Result of :func:`integrate`.

    Attributes:
        t: saved times, ``(T,)``.
        z: saved states, ``(T, ..., 2n)`` (time first, then the batch shape of ``z0``).
        wall_s: seconds the integration took (stepping, checks and saving).
        steps: steps taken: ``n_steps``, or fewer when the integration was stopped.
        stopped: ``None``, or why the integration ended early (an observer's
            :class:`StopIntegration`, or a failed step with ``on_error="stop"``).
    """

    t: Tensor
    z: Tensor
    wall_s: float = math.nan
    steps: int = 0
    stopped: str | None = None


class StopIntegration(Exception):  # noqa: N818 - a signal, like StopIteration, not an error
    """Raised by an ``observe`` callback of :func:`integrate` to end the integration early: the
    states saved so far are returned and ``Trajectory.stopped`` is the exception's message."""


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
    grad: bool = True,
    trace: bool = False,
    observe: Callable[[int, Tensor, Tensor], None] | None = None,
    on_error: str = "raise",
    progress: bool = False,
    desc: str = "integrating",
) -> Trajectory:
    """Advance a flow map ``n_steps`` times from a batch of initial states.

    A continuous dynamics (ground-truth system or learned model) is first paired with an
    integrator and a step by :func:`symplearn.discretize`; a learned flow map (SympNet) is
    passed as it is::

        traj = integrate(discretize(system, "verlet", 0.01), z0, 10_000)
        traj = integrate(flow, z0, 100_000, grad=False, trace=True)  # a long inference rollout

    Every stepping loop of the library is this one (runs, experiments, MD): the options below
    cover what they need, so none keeps a private loop.

    Args:
        flow: the :class:`~symplearn.dynamics.FlowMap` (``step(t, z)``, ``dt``).
        z0: initial states ``(..., 2n)``; any leading batch shape.
        n_steps: number of steps (> 0).
        save_every: keep every k-th state (the initial and the final state are always kept).
        t0: initial time (non-autonomous dynamics see ``t0 + k dt``).
        check_finite: raise :class:`~symplearn.NonFiniteError` (naming the step) as soon as a
            saved state is NaN or infinite, instead of propagating it.
        grad: ``True`` (default): differentiable end to end, so training can backpropagate
            through a rollout. ``False``: run under ``torch.no_grad()`` (long rollouts: no
            graph kept; a field computed by autograd of ``H`` still works).
        trace: replay a ``torch.jit.trace`` of the step (:func:`trace_flow`; needs
            ``grad=False``) when the rollout is long enough to pay for it (``n_steps >= 100``)
            and the step can be traced faithfully (explicit steps; implicit ones run as they are).
        observe: ``observe(k, z_prev, z)`` after each step ``k`` (1-based) with the states before
            and after it (events, Poincare crossings, custom stopping); it may raise
            :class:`StopIntegration` to end the integration (state ``k`` is then not saved).
        on_error: ``"raise"`` (default) or ``"stop"``: a step that fails (an implicit solve
            that does not converge, a non-finite state, an error inside a learned model) ends the
            integration and returns the states saved so far, the reason in ``stopped``.
        progress: show progress (a tqdm bar on a terminal, periodic lines otherwise).
        desc: label of the progress display.

    Returns:
        :class:`Trajectory` with ``t: (T,)`` and ``z: (T, ..., 2n)``,
        ``T = ceil(n_steps / save_every) + 1`` (fewer when stopped), ``wall_s``, ``steps`` and
        ``stopped``.

    Raises:
        SymplearnError: bad arguments (not a flow map, non-positive n_steps, wrong state shape).
        ConvergenceError: an implicit step did not converge (``on_error="raise"``).
        NonFiniteError: a state became NaN/inf (``check_finite`` and ``on_error="raise"``).
    """
    if not isinstance(flow, FlowMap):
        raise SymplearnError(
            f"integrate advances a flow map; got {type(flow).__name__}. Pair a continuous dynamics "
            f"with an integrator first: integrate(symplearn.discretize(dynamics, 'verlet', dt), z0, "
            f"n_steps)"
        )
    n_steps = check_int("n_steps", n_steps)
    save_every = check_int("save_every", save_every)
    if on_error not in ("raise", "stop"):
        raise SymplearnError(f"on_error must be 'raise' or 'stop', got {on_error!r}")
    if trace and grad:
        raise SymplearnError("trace=True replays a step without gradients; pass grad=False with it")
    check_state(z0, flow.dim)
    start = time.perf_counter()
    if trace and n_steps >= 100:  # several times less per-step overhead for small networks
        flow = trace_flow(flow, z0)
    args = (flow, z0, n_steps, save_every, float(t0), check_finite, observe, on_error, progress, desc)
    if grad:
        traj = _loop(*args)
    else:  # no_grad rather than inference mode: a field taken by autograd of H still works
        with torch.no_grad():
            traj = _loop(*args)
    return traj._replace(wall_s=time.perf_counter() - start)


def _loop(flow, z0, n_steps, save_every, t0, check_finite, observe, on_error, progress, desc) -> Trajectory:
    dt = float(flow.dt)
    saved = [z0]
    times = [t0]
    z = z0
    k, stopped = n_steps, None
    with Progress(n_steps, desc, enabled=progress) as bar:
        for k in range(1, n_steps + 1):
            try:
                z_new = flow.step(t0 + (k - 1) * dt, z)
                if observe is not None:
                    observe(k, z, z_new)
                if k % save_every == 0 or k == n_steps:
                    if check_finite and not bool(torch.isfinite(z_new).all()):
                        raise NonFiniteError(
                            f"the state became NaN or infinite by step {k} (t={t0 + k * dt:g}); try a "
                            f"smaller dt"
                        )
                    saved.append(z_new)
                    times.append(t0 + k * dt)
                    bar.update(k - bar.n)
            except StopIntegration as exc:
                stopped = str(exc) or f"stopped at step {k}"
                break
            except (SymplearnError, RuntimeError, FloatingPointError) as exc:
                if on_error == "raise":
                    raise
                stopped = f"{type(exc).__name__} at t = {t0 + k * dt:g} s: {str(exc)[:160]}"
                break
            z = z_new
    t = torch.tensor(times, dtype=z0.dtype, device=z0.device)
    return Trajectory(t, torch.stack(saved, 0), steps=k, stopped=stopped)


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
        try:
            return fn(torch.as_tensor(t, dtype=z.dtype, device=z.device), z)
        except RuntimeError:
            # an op of the trace failed where the eager step checks first and says why (an LNN's
            # singular Hessian reaches torch.linalg.solve in the trace, whose data-dependent
            # checks are not recorded): the eager step raises the library's own error, or
            # gives the step
            return self.flow.step(t, z)

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
        if isinstance(flow.integrator, ImplicitIntegrator):
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
