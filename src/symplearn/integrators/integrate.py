"""The one entry point that integrates any dynamics, true or learned, from a batch of states."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from ..dynamics import FlowMap
from .base import Integrator


class Trajectory(NamedTuple):
    """Result of :func:`integrate`.

    Attributes:
        t: saved times, ``(T,)``.
        z: saved states, ``(T, ..., 2n)`` (time first, then the batch shape of ``z0``).
    """

    t: Tensor
    z: Tensor


def _check_state(z0: Tensor, dim: int | None) -> None:
    if not isinstance(z0, Tensor):
        raise SymplearnError(f"z0 must be a torch.Tensor of shape (..., 2n), got {type(z0).__name__}")
    if z0.ndim == 0 or z0.shape[-1] % 2:
        raise SymplearnError(
            f"z0 must have shape (..., 2n) with an even last dimension (q's then p's), "
            f"got shape {tuple(z0.shape)}"
        )
    if dim is not None and z0.shape[-1] != dim:
        raise SymplearnError(
            f"z0 has {z0.shape[-1]} coordinates per state but the dynamics' phase space has {dim} "
            f"(q's then p's)"
        )
    if not bool(torch.isfinite(z0).all()):
        raise NonFiniteError("z0 contains NaN or infinite values")


def integrate(
    dynamics,
    z0: Tensor,
    dt: float,
    n_steps: int,
    integrator: Integrator | None = None,
    *,
    save_every: int = 1,
    t0: float = 0.0,
    check_finite: bool = True,
) -> Trajectory:
    """Integrate ``dynamics`` from a batch of initial states.

    Works on any continuous dynamics (``vector_field``; ground-truth system or learned model)
    with a one-step ``integrator``, and on any discrete flow map (:class:`~symplearn.dynamics.FlowMap`,
    e.g. a SympNet) with ``integrator=None`` and ``dt`` equal to the map's own step.
    Differentiable end to end: no ``torch.no_grad`` is applied, so training can backpropagate
    through a rollout.

    Args:
        dynamics: the dynamics to integrate.
        z0: initial states ``(..., 2n)``; any leading batch shape.
        dt: step size (> 0).
        n_steps: number of steps (> 0).
        integrator: the one-step method (an instance or a name such as ``"verlet"``); required
            for continuous dynamics.
        save_every: keep every k-th state (the initial state is always kept).
        t0: initial time.
        check_finite: raise :class:`~symplearn.NonFiniteError` (naming the step) as soon as a
            saved state is NaN or infinite, instead of propagating it.

    Returns:
        :class:`Trajectory` with ``t: (T,)`` and ``z: (T, ..., 2n)``, ``T = n_steps // save_every + 1``
        (plus one if ``n_steps`` is not a multiple of ``save_every``: the final state is always kept).

    Raises:
        SymplearnError: bad arguments (non-positive dt or n_steps, wrong state shape, an
            integrator that cannot handle this dynamics).
        ConvergenceError: an implicit step did not converge.
        NonFiniteError: a state became NaN/inf.
    """
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise SymplearnError(f"dt must be a positive finite number, got {dt!r}")
    if not (isinstance(n_steps, int) and n_steps > 0):
        raise SymplearnError(f"n_steps must be a positive integer, got {n_steps!r}")
    if not (isinstance(save_every, int) and save_every > 0):
        raise SymplearnError(f"save_every must be a positive integer, got {save_every!r}")
    _check_state(z0, getattr(dynamics, "dim", None))
    if isinstance(integrator, str):
        from . import get_integrator

        integrator = get_integrator(integrator)

    if isinstance(dynamics, FlowMap):
        if integrator is not None:
            raise SymplearnError(
                f"{type(dynamics).__name__} is a learned flow map with its own step; "
                f"pass integrator=None (got {integrator.name!r})"
            )
        if not math.isclose(dt, dynamics.dt, rel_tol=1e-9, abs_tol=0.0):
            raise SymplearnError(f"{type(dynamics).__name__} was built for dt={dynamics.dt:g}; got dt={dt:g}")

        def advance(z, k):
            return dynamics.step(z)
    else:
        if integrator is None:
            raise SymplearnError("integrate needs an integrator for continuous-time dynamics")
        if not isinstance(integrator, Integrator):
            raise SymplearnError(
                f"integrator must be an Integrator instance (see symplearn.get_integrator), "
                f"got {type(integrator).__name__}"
            )
        integrator.check(dynamics)

        def advance(z, k):
            return integrator.step(dynamics, z, dt, step_index=k)

    saved = [z0]
    times = [t0]
    z = z0
    for k in range(1, n_steps + 1):
        z = advance(z, k)
        if k % save_every == 0 or k == n_steps:
            if check_finite and not bool(torch.isfinite(z).all()):
                raise NonFiniteError(
                    f"the state became NaN or infinite by step {k} (t={t0 + k * dt:g}); try a smaller dt"
                )
            saved.append(z)
            times.append(t0 + k * dt)
    t = torch.tensor(times, dtype=z0.dtype, device=z0.device)
    return Trajectory(t, torch.stack(saved, 0))
