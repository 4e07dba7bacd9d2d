"""Argument checks shared by the whole package: one message per kind of mistake.

Each raises :class:`~symplearn.SymplearnError` saying which argument was wrong, what it was,
and what would work. Python, numpy and 0-d torch scalars are accepted alike.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import torch
from torch import Tensor

from ._errors import NonFiniteError, SymplearnError

__all__ = [
    "DTYPES",
    "check_float",
    "check_int",
    "check_memory",
    "check_positive",
    "check_state",
    "describe",
]

#: the floating dtypes of states, models and files, by name (the one table of the package)
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _scalar(value: Any) -> Any:
    """A 0-d tensor or a numpy scalar as a plain Python number (other values unchanged)."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        try:
            return item()
        except (TypeError, ValueError, RuntimeError):
            return value
    return value


def describe(obj: Any) -> str:
    """An object for a message: its registry ``name`` or model ``kind`` (quoted), else its class."""
    name = getattr(obj, "name", None) or getattr(obj, "kind", None)
    return repr(name) if isinstance(name, str) else type(obj).__name__


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """``int(value)`` for an integer ``>= minimum`` (booleans are not integers here).

    Raises:
        SymplearnError: ``"{name} must be an integer >= {minimum}, got {value!r}"``.
    """
    v = _scalar(value)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise SymplearnError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(v)


def check_float(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False) -> float:
    """``float(value)`` for a finite real number (``> 0`` with ``positive``, ``>= 0`` with
    ``nonnegative``).

    Raises:
        SymplearnError: e.g. ``"{name} must be a positive finite number, got {value!r}"``.
    """
    v = _scalar(value)
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
    v = float(v) if ok else math.nan
    if not ok or not math.isfinite(v) or (positive and v <= 0) or (nonnegative and v < 0):
        want = (
            "a positive finite number"
            if positive
            else "a finite number >= 0"
            if nonnegative
            else "a finite number"
        )
        raise SymplearnError(f"{name} must be {want}, got {value!r}")
    return v


def check_positive(name: str, value: Any) -> float:
    """``float(value)`` for a positive finite number (see :func:`check_float`)."""
    return check_float(name, value, positive=True)


def check_state(
    z: Any,
    dim: int | None = None,
    name: str = "z",
    *,
    owner: str | None = None,
    floating: bool = True,
    finite: bool = True,
    min_ndim: int = 1,
) -> Tensor:
    """The one check of a batch of phase-space states ``z: (..., 2n)`` (q's then p's).

    In order: a tensor; floating point (``floating``); at least ``min_ndim`` (and 1) dimensions
    with an even, non-zero last dimension; that last dimension equal to ``dim`` when given; no
    NaN or infinity (``finite``: one pass over ``z``).

    Args:
        z: the states.
        dim: the phase-space dimension ``2n`` required (``None``: any even one).
        name: the argument's name, for messages.
        owner: the object the states are for (a model's class name), with ``dim`` given: the
            shape messages then say ``"{owner} has n_dof=n, so states have shape (..., 2n)"``
            and any shape other than ``(..., dim)`` is refused with it (the cheap check of a
            model's every field evaluation: pass ``floating=False, finite=False`` there).
        floating: refuse integer and boolean tensors.
        finite: refuse NaN and infinite values.
        min_ndim: the fewest dimensions (e.g. 2 for a trajectory ``(T, ..., 2n)``).

    Returns:
        ``z`` itself.

    Raises:
        SymplearnError: not a tensor, not floating point, a wrong shape.
        NonFiniteError: NaN or infinite values.
    """
    if not isinstance(z, Tensor):
        if owner is not None:
            raise SymplearnError(
                f"{owner} expects a torch.Tensor state of shape (..., {dim}), got {type(z).__name__}"
            )
        raise SymplearnError(f"{name} must be a torch.Tensor of shape (..., 2n), got {type(z).__name__}")
    if owner is not None:  # a model's states: one shape message
        if z.ndim < min_ndim or z.ndim == 0 or z.shape[-1] != dim:
            raise SymplearnError(
                f"{owner} has n_dof={dim // 2}, so states have shape (..., {dim}); got shape {tuple(z.shape)}"
            )
        if floating and not z.is_floating_point():
            raise SymplearnError(f"{owner} expects floating-point states (float32 or float64), got {z.dtype}")
    else:
        if floating and not z.is_floating_point():
            raise SymplearnError(
                f"{name} must be a floating-point tensor (float32 or float64), got {z.dtype}; "
                f"e.g. {name}.double()"
            )
        if z.ndim < min_ndim or z.ndim == 0 or z.shape[-1] == 0 or z.shape[-1] % 2:
            raise SymplearnError(
                f"{name} must have shape (..., 2n) with an even last dimension (q's then p's)"
                f"{' and at least ' + str(min_ndim) + ' dimensions' if min_ndim > 1 else ''}, "
                f"got shape {tuple(z.shape)}"
            )
        if dim is not None and z.shape[-1] != dim:
            raise SymplearnError(
                f"{name} has {z.shape[-1]} coordinates per state but the dynamics' phase space has "
                f"{dim} (q's then p's); got shape {tuple(z.shape)}"
            )
    if finite and not bool(torch.isfinite(z).all()):
        raise NonFiniteError(f"{name} contains NaN or infinite values")
    return z


def check_memory(n_bytes: float, what: str, hint: str) -> None:
    """Refuse, before any work, a run whose arrays would take more than half the machine's memory.

    Args:
        n_bytes: the estimate.
        what: what the estimate is of (for the message).
        hint: the option that would help (for the message).

    Raises:
        SymplearnError: with the estimate, the memory available and ``hint``.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no check
        return
    if n_bytes > 0.5 * total:
        raise SymplearnError(
            f"{what} would hold about {n_bytes / 2**30:.3g} GiB, more than half of this machine's "
            f"{total / 2**30:.3g} GiB; {hint}"
        )
