"""Errors of conserved quantities along trajectories, and a verdict: bounded oscillation or drift.

A symplectic integrator keeps the energy error of a Hamiltonian system bounded (it oscillates,
with no trend, for exponentially long times); a non-symplectic one, or a model with no energy,
lets it drift. The verdict compares the error envelope over the first and the last tenth of the
run: a bounded error has the same envelope at the end as at the start, a drifting one grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from ..dynamics import HamiltonianDynamics
from ._common import as_tensor, check_states, default_tol, dynamics_dim, map_rows

__all__ = ["InvariantError", "assert_conserves", "energy_error", "invariant_error"]

#: the verdict's growth allowance: the last envelope may be this many times the first
ENVELOPE_GROWTH = 1.5


@dataclass(frozen=True)
class InvariantError:
    """Error of a conserved quantity ``I`` along a trajectory.

    Attributes:
        max: largest error over all times and trajectories.
        final: largest error (over the batch) at the final time.
        rms: root mean square of the errors over all times and trajectories.
        slope: slope of a least-squares line through the batch-maximum error against time
            (error per unit time; per step when no times were given).
        first_envelope: largest error over the first tenth of the samples (at least 2).
        last_envelope: largest error over the last tenth of the samples (at least 2).
        verdict: ``"bounded"`` if ``last_envelope <= 1.5 first_envelope + floor``, else
            ``"drifting"``. Meaningful when each tenth of the run spans at least one period of
            the error's oscillation.
        errors: ``(T, ...)`` error at each time: ``|I(t) - I(0)| / |I(0)|`` (relative), or
            ``|I(t) - I(0)|`` (absolute; for vectors, Euclidean norms).
        t: ``(T,)`` times (sample indices when none were given).
        mode: ``"relative"``, ``"absolute"``, or ``"mixed"`` (relative except where ``|I(0)|``
            is tiny, see ``note``).
        floor: the absolute allowance of the verdict (round-off level).
        note: explanation when the mode is not what was asked, or the series is short.
    """

    max: float
    final: float
    rms: float
    slope: float
    first_envelope: float
    last_envelope: float
    verdict: str
    errors: Tensor
    t: Tensor
    mode: str
    floor: float
    note: str = ""

    @property
    def bounded(self) -> bool:
        """``verdict == "bounded"``."""
        return self.verdict == "bounded"

    @property
    def batch_max(self) -> Tensor:
        """``(T,)`` the largest error over the batch at each time."""
        e = self.errors.reshape(self.errors.shape[0], -1)
        return e.max(1).values

    def as_dict(self) -> dict[str, float | str | int]:
        """The summary as plain Python floats and strings (JSON-able), without the arrays."""
        return {
            "max": self.max,
            "final": self.final,
            "rms": self.rms,
            "slope": self.slope,
            "first_envelope": self.first_envelope,
            "last_envelope": self.last_envelope,
            "verdict": self.verdict,
            "mode": self.mode,
            "floor": self.floor,
            "n_times": int(self.errors.shape[0]),
            "t_final": float(self.t[-1]),
            "note": self.note,
        }


def invariant_error(
    values: Any,
    t: Any = None,
    *,
    relative: bool = True,
    reference: Any = None,
    vector: bool = False,
    floor: float | None = None,
) -> InvariantError:
    """Error of a conserved quantity along a trajectory, with a bounded-or-drifting verdict.

    Args:
        values: ``(T, ...)`` the quantity at T times (time first, then any batch dimensions),
            e.g. energies ``(T, B)``; with ``vector=True`` the last dimension holds the components
            of a vector invariant (a Runge-Lenz vector ``(T, B, 2)``).
        t: ``(T,)`` times; ``None`` uses the sample index 0, 1, ..., T-1.
        relative: divide by ``|I(0)|``. Where ``|I(0)|`` is tiny (below ``sqrt(eps)`` times the
            largest ``|I|`` of the run, at least ``sqrt(eps)``) the absolute error is used
            instead and ``note`` says so.
        reference: the exact value to compare with, broadcastable to ``values[0]`` (default
            ``values[0]``).
        vector: the last dimension is a vector's components; errors are Euclidean norms.
        floor: absolute allowance of the verdict; default ``100 eps`` of the dtype (round-off).

    Returns:
        :class:`InvariantError`.

    Raises:
        SymplearnError: fewer than 2 times, ``t`` of the wrong shape, a vector with no component
            dimension.
        NonFiniteError: a value is NaN or infinite (a diverged rollout): the message gives the
            first such time index.
    """
    v = as_tensor(values, "values")
    if v.ndim == 0 or v.shape[0] < 2:
        raise SymplearnError(
            f"values must have shape (T, ...) with at least 2 times, got shape {tuple(v.shape)}"
        )
    if vector and v.ndim < 2:
        raise SymplearnError(
            f"vector=True needs values of shape (T, ..., k) with the components last, got shape "
            f"{tuple(v.shape)}"
        )
    T = v.shape[0]
    bad = ~torch.isfinite(v.reshape(T, -1)).all(1)
    if bool(bad.any()):
        k = int(bad.nonzero()[0, 0])
        raise NonFiniteError(
            f"the invariant is NaN or infinite from sample {k} of {T} on (a diverged rollout?); "
            f"cut the trajectory before it or use a smaller step"
        )
    if t is None:
        tt = torch.arange(T, dtype=v.dtype, device=v.device)
    else:
        tt = as_tensor(t, "t", dtype=v.dtype).to(v.device)
        if tt.shape != (T,):
            raise SymplearnError(f"t must have shape (T,) = ({T},) like values, got {tuple(tt.shape)}")
    if reference is None:
        ref = v[0]
    else:
        ref = as_tensor(reference, "reference", dtype=v.dtype).to(v.device)
        try:
            ref = torch.broadcast_to(ref, v.shape[1:])
        except RuntimeError:
            raise SymplearnError(
                f"reference of shape {tuple(ref.shape)} does not broadcast to one sample of values "
                f"{tuple(v.shape[1:])}"
            ) from None
    diff = v - ref
    if vector:
        diff, mag0, mag = diff.norm(dim=-1), ref.norm(dim=-1), v.norm(dim=-1)
    else:
        diff, mag0, mag = diff.abs(), ref.abs(), v.abs()

    eps = torch.finfo(v.dtype).eps
    note = ""
    if relative:
        thresh = math.sqrt(eps) * max(1.0, float(mag.max()))
        tiny = mag0 <= thresh
        n_tiny = int(tiny.sum())
        errors = torch.where(tiny, diff, diff / torch.where(tiny, torch.ones_like(mag0), mag0))
        if n_tiny == 0:
            mode = "relative"
        else:
            mode = "absolute" if n_tiny == tiny.numel() else "mixed"
            note = (
                f"|I(0)| <= {thresh:.3g} for {n_tiny} of {tiny.numel()} trajectories: their error is "
                f"absolute |I(t) - I(0)|, not relative"
            )
    else:
        errors, mode = diff, "absolute"

    floor = 100.0 * eps if floor is None else float(floor)
    e = errors.reshape(T, -1).max(1).values.to(torch.float64)
    t64 = tt.to(torch.float64)
    tc = t64 - t64.mean()
    denom = float((tc * tc).sum())
    slope = float((tc * (e - e.mean())).sum()) / denom if denom > 0 else 0.0
    k = max(2, math.ceil(T / 10))
    first, last = float(e[:k].max()), float(e[-k:].max())
    verdict = "bounded" if last <= ENVELOPE_GROWTH * first + floor else "drifting"
    if T < 20:
        note = (note + "; " if note else "") + (
            f"only {T} samples: the first and last tenths overlap or hold 2 samples each, so the "
            f"verdict is rough"
        )
    return InvariantError(
        max=float(e.max()),
        final=float(e[-1]),
        rms=float(errors.to(torch.float64).pow(2).mean().sqrt()),
        slope=slope,
        first_envelope=first,
        last_envelope=last,
        verdict=verdict,
        errors=errors,
        t=tt,
        mode=mode,
        floor=floor,
        note=note,
    )


def _unpack_traj(traj: Any, t: Any) -> tuple[Tensor, Any]:
    z = getattr(traj, "z", None)
    if isinstance(z, Tensor) and hasattr(traj, "t"):
        return z, traj.t if t is None else t
    return as_tensor(traj, "traj"), t


def energy_error(dynamics: Any, traj: Any, *, t: Any = None, **kwargs: Any) -> InvariantError:
    """Relative energy error ``|H(z(t)) - H(z(0))| / |H(z(0))|`` along a trajectory.

    Args:
        dynamics: a Hamiltonian system or learned model (a :class:`~symplearn.HamiltonianDynamics`).
        traj: a :class:`~symplearn.Trajectory` (its times are used) or states ``(T, ..., 2n)``.
        t: ``(T,)`` times when ``traj`` is a tensor (overrides the trajectory's own).
        **kwargs: passed to :func:`invariant_error` (``relative``, ``reference``, ``floor``).

    Returns:
        :class:`InvariantError` (``errors`` of shape ``(T, ...)``).

    Raises:
        SymplearnError: the dynamics has no energy, or the states do not fit its dimension.
    """
    if not isinstance(dynamics, HamiltonianDynamics):
        raise SymplearnError(
            f"{type(dynamics).__name__} is not a Hamiltonian dynamics, so it has no energy to "
            f"measure an error of; use invariant_error on a quantity you know is conserved (or the "
            f"true system's energy along the trajectory)"
        )
    z, t = _unpack_traj(traj, t)
    z = check_states(z, "traj", dynamics_dim(dynamics), min_ndim=2)
    H = map_rows(dynamics.hamiltonian, z)
    return invariant_error(H, t, **kwargs)


def assert_conserves(
    dynamics_or_fn: Any,
    traj: Any,
    tol: float | None = None,
    *,
    t: Any = None,
    relative: bool = True,
    require_bounded: bool = False,
) -> InvariantError:
    """Assert that a quantity is conserved along a trajectory to ``tol``.

    Args:
        dynamics_or_fn: a dynamics with an energy (its ``hamiltonian`` is checked), or a callable
            ``(..., 2n) -> (...)`` (scalar) or ``(..., 2n) -> (..., k)`` (vector invariant).
        traj: :class:`~symplearn.Trajectory` or states ``(T, ..., 2n)``.
        tol: largest allowed (relative) error; default 1e-10 for float64 states, 1e-4 for
            float32.
        t: times when ``traj`` is a tensor.
        relative: relative errors (see :func:`invariant_error`).
        require_bounded: also require the verdict ``"bounded"``.

    Returns:
        The :class:`InvariantError` (when the assertion holds).

    Raises:
        AssertionError: the error exceeds ``tol`` (or drifts); the message shows the measured
            maximum, final error, slope and verdict.
    """
    z, t = _unpack_traj(traj, t)
    if isinstance(dynamics_or_fn, HamiltonianDynamics):
        res = energy_error(dynamics_or_fn, z, t=t, relative=relative)
        what = "energy"
    elif callable(dynamics_or_fn):
        z = check_states(z, "traj", min_ndim=2)
        vals = _evaluate_invariant(dynamics_or_fn, z)
        res = invariant_error(vals, t, relative=relative, vector=vals.ndim == z.ndim)
        what = getattr(dynamics_or_fn, "__name__", "invariant")
    else:
        raise SymplearnError(
            f"assert_conserves needs a dynamics with an energy or a callable invariant "
            f"(..., 2n) -> (...), got {type(dynamics_or_fn).__name__}"
        )
    tol = default_tol(z.dtype) if tol is None else float(tol)
    kind = "relative" if res.mode == "relative" else res.mode
    if res.max > tol or (require_bounded and not res.bounded):
        raise AssertionError(
            f"{what} is not conserved: max {kind} error {res.max:.3e} "
            f"{'>' if res.max > tol else '<='} tol {tol:.1e} (final {res.final:.3e}, slope "
            f"{res.slope:.3e} per unit time, verdict {res.verdict}: first/last envelope "
            f"{res.first_envelope:.3e}/{res.last_envelope:.3e})" + (f"; {res.note}" if res.note else "")
        )
    return res


def _evaluate_invariant(fn: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    try:
        vals = map_rows(fn, z)
    except Exception as exc:
        raise SymplearnError(
            f"the invariant could not be evaluated on states of shape {tuple(z.shape)} "
            f"(2n = {z.shape[-1]}): {exc!r}; it must map (..., 2n) -> (...) or (..., k)"
        ) from exc
    if not isinstance(vals, Tensor) or vals.shape[: z.ndim - 1] != z.shape[:-1] or vals.ndim > z.ndim:
        raise SymplearnError(
            f"the invariant returned shape {tuple(getattr(vals, 'shape', ()))} for states of shape "
            f"{tuple(z.shape)}; expected {tuple(z.shape[:-1])} (scalar) or {tuple(z.shape[:-1])} + (k,)"
        )
    return vals
