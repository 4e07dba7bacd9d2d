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

from ._errors import SymplearnError

__all__ = ["DTYPES", "check_float", "check_int", "check_memory", "check_positive", "describe"]

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
