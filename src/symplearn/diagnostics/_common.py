"""Shared pieces of the diagnostics: input checks, dtype-keyed tolerances, one-step maps of any
dynamics, row-wise evaluation in chunks, and tangent (Jacobian-vector) steps."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._errors import SymplearnError
from .._validate import check_int, check_positive, check_state  # noqa: F401 (the diagnostics import them from here)
from ..dynamics import FlowMap

#: rows per call when a function is evaluated on many states (keeps memory bounded)
CHUNK_ROWS = 65536


def default_tol(dtype: torch.dtype, f64: float = 1e-10, f32: float = 1e-4) -> float:
    """A tolerance keyed by dtype: ``f64`` for float64 (and wider), ``f32`` for float32 and below."""
    return f64 if torch.finfo(dtype).eps < 1e-10 else f32


def as_tensor(x: Any, name: str, *, dtype: torch.dtype | None = None) -> Tensor:
    """A floating tensor from a tensor / array / sequence (integers become float64)."""
    if isinstance(x, Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64) if not isinstance(x, np.ndarray) else x)
        except (TypeError, ValueError) as exc:
            raise SymplearnError(f"{name} must be a tensor or array of numbers: {exc}") from None
    if t.is_complex():
        raise SymplearnError(f"{name} must be real, got a complex tensor")
    if dtype is not None:
        t = t.to(dtype)
    elif not t.is_floating_point():
        t = t.to(torch.float64)
    return t


def check_states(z: Any, name: str, dim: int | None = None, *, min_ndim: int = 1) -> Tensor:
    """Validate states ``(..., 2n)`` given as a tensor, array or sequence (:func:`as_tensor`, then
    :func:`symplearn._validate.check_state`: even last dimension, equal to ``dim`` when given,
    finite)."""
    return check_state(as_tensor(z, name), dim, name, min_ndim=min_ndim)


def check_plane(plane: Any, n: int) -> int:
    """``plane`` must be an integer in ``[0, n)``: the (q_plane, p_plane) pair of coordinates."""
    if isinstance(plane, bool) or not isinstance(plane, (int, np.integer)) or not (0 <= plane < n):
        raise SymplearnError(
            f"plane must be an integer in [0, {n}) (the degree of freedom whose (q_i, p_i) plane is "
            f"used) for states with n = {n} degree(s) of freedom, got {plane!r}"
        )
    return int(plane)


def dynamics_dim(dynamics: Any) -> int | None:
    dim = getattr(dynamics, "dim", None)
    return dim if isinstance(dim, int) else None


def map_rows(fn: Callable[[Tensor], Tensor], z: Tensor, *, chunk: int = CHUNK_ROWS) -> Tensor:
    """Evaluate a row-wise ``fn: (N, d) -> (N, ...)`` on ``z: (..., d)`` in chunks of rows.

    Returns ``fn`` reshaped back to the batch shape of ``z``, detached.
    """
    batch = z.shape[:-1]
    flat = z.reshape(-1, z.shape[-1])
    outs = []
    with torch.no_grad():
        for i in range(0, max(flat.shape[0], 1), chunk):
            rows = flat[i : i + chunk]
            out = fn(rows)
            if not isinstance(out, Tensor) or out.ndim == 0 or out.shape[0] != rows.shape[0]:
                shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                raise SymplearnError(
                    f"expected a row-wise function mapping states ({rows.shape[0]}, {rows.shape[1]}) "
                    f"to ({rows.shape[0]}, ...), got {shape}"
                )
            outs.append(out.detach())
    out = torch.cat(outs, 0) if len(outs) > 1 else outs[0]
    return out.reshape(*batch, *out.shape[1:])


def stepper(
    flow: Any, who: str
) -> tuple[Callable[[Any, Tensor], Tensor], float, Callable[[Any, Tensor, Any], Tensor] | None]:
    """The one-step map of a flow map, for the diagnostics.

    Args:
        flow: a :class:`~symplearn.FlowMap` (``symplearn.discretize(dynamics, integrator, dt)``
            or a learned flow map).
        who: the calling function's name, for messages.

    Returns:
        ``(step, dt, partial)``: ``step(t, z)`` advances by ``dt``; ``partial(t, z, tau)``
        advances by another step ``tau`` (a float, or a tensor ``(..., 1)``) when the flow map
        is a discretised continuous dynamics, ``None`` for learned flow maps.
    """
    from ..integrators.discretize import DiscretizedDynamics

    if not isinstance(flow, FlowMap):
        raise SymplearnError(
            f"{who} needs a flow map: a learned one (SympNet) or a dynamics paired with an integrator "
            f"and a step, symplearn.discretize(dynamics, 'gauss-legendre-6', dt); got {type(flow).__name__}"
        )
    dt = check_positive("dt", flow.dt)
    partial = flow.partial_step if isinstance(flow, DiscretizedDynamics) else None
    return flow.step, dt, partial


def _fd_offsets(z: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The two states ``z +- h u`` of a central difference along the unit direction ``u`` of
    ``v``, with ``h`` and ``|v|`` (see :func:`fd_jvp`)."""
    nv = v.norm(dim=-1, keepdim=True)
    u = v / torch.where(nv > 0, nv, torch.ones_like(nv))
    eps = torch.finfo(z.dtype).eps
    # h balances the truncation error O(h^2) (for a map that varies on unit scales) against the
    # round-off of the map's outputs, eps |step(z)| / h with |step(z)| ~ |z|: h = (eps max(1, |z|))^(1/3)
    h = (eps * torch.clamp(z.abs().amax(dim=-1, keepdim=True), min=1.0)) ** (1.0 / 3.0)
    return z + h * u, z - h * u, h, nv


def fd_jvp(step: Callable[[Tensor], Tensor], z: Tensor, v: Tensor) -> Tensor:
    """Central finite-difference ``D step(z) v`` for row-wise ``step`` and ``z, v: (B, d)``.

    The quotient ``(step(z + h u) - step(z - h u)) / 2h`` along the unit direction ``u = v / |v|``,
    times ``|v|``, with ``h = (eps max(1, |z|))^(1/3)`` (max-norm): it balances the truncation
    error ``O(h^2)`` of a map that varies on unit scales against the round-off of its outputs,
    ``eps |step(z)| / h`` with ``|step(z)| ~ |z|``; relative error about ``eps^(2/3)`` at ``|z| <= 1``
    (1e-11 in float64, 4e-5 in float32), ``(eps |z|)^(2/3)`` above (1e-7 at ``|z| = 1e5``).

    The step does not grow like ``|z|`` (an angle of 1e5 does not make ``sin`` vary on a scale of
    1e5: with ``h = eps^(1/3) |z| = 0.6`` the standard map's exponent read 0.85 instead of 2.30).
    No digits of the deviation are lost either: ``z + h u`` keeps only ``h / (eps |z|)`` (1e7 at
    ``|z| = 1e5``) of ``u``'s digits, but the difference of the two states really evaluated,
    ``(z + h u) - (z - h u)``, is exact in floating point (Sterbenz), so the quotient is the
    derivative along that represented direction, which differs from ``u`` by ``eps |z| / h``
    relative: the tangent is rotated by 1e-7, not corrupted, and Benettin's method does not care
    about the tangent's direction (any one converges to the most unstable).
    """
    zp, zm, h, nv = _fd_offsets(z, v)
    with torch.no_grad():
        d = (step(zp) - step(zm)) / (2.0 * h)
    return d * nv


def fd_tangent_step(step: Callable[[Tensor], Tensor], z: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """``(step(z), D step(z) v)`` with the derivative by central differences, all three states
    ``z, z + h u, z - h u`` advanced in one batched call (see :func:`fd_jvp` for ``h``)."""
    zp, zm, h, nv = _fd_offsets(z, v)
    B = z.shape[0]
    with torch.no_grad():
        out = step(torch.cat([z, zp, zm], 0)).detach()
    return out[:B], (out[B : 2 * B] - out[2 * B :]) / (2.0 * h) * nv


def ad_jvp(step: Callable[[Tensor], Tensor], z: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """``(step(z), D step(z) v)`` by forward-mode automatic differentiation (``torch.func.jvp``).

    Run with grad mode on: under ``torch.no_grad`` ``torch.func.jvp`` is an order of magnitude
    slower (torch 2.x)."""
    with torch.enable_grad(), warnings.catch_warnings():
        # torch's first use of forward-mode decompositions scripts them with torch.jit.script,
        # which warns that torch.jit.script is deprecated: nothing a user can act on
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)
        out, tan = torch.func.jvp(step, (z,), (v,))
    return out.detach(), tan.detach()


def choose_tangent_method(step: Callable[[Tensor], Tensor], z: Tensor, v: Tensor) -> str:
    """``"jvp"`` when forward-mode AD works on ``step`` and agrees with finite differences at
    ``z`` along ``v``; otherwise ``"finite-difference"`` (e.g. a vector field that calls
    ``torch.autograd.grad`` internally, which ``torch.func`` cannot transform, or one whose
    derivative is not recorded)."""
    try:
        _, tan = ad_jvp(step, z, v)
    except Exception:  # noqa: BLE001 - any failure of the transform means: use finite differences
        return "finite-difference"
    fd = fd_jvp(step, z, v)
    if not bool(torch.isfinite(tan).all()):
        return "finite-difference"
    scale = torch.clamp(fd.norm(dim=-1), min=1e-300)
    rel = float(((tan - fd).norm(dim=-1) / scale).max())
    return "jvp" if rel < 1e3 * torch.finfo(z.dtype).eps ** (2.0 / 3.0) + 1e-6 else "finite-difference"


def check_output(out: Any, z: Tensor, who: str) -> Tensor:
    if not isinstance(out, Tensor) or out.shape != z.shape:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise SymplearnError(
            f"{who} must map states of shape {tuple(z.shape)} to the same shape, got {shape}"
        )
    return out
