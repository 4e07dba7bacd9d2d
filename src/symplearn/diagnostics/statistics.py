"""Distances between distributions of an observable, for comparing the long-time statistics
(invariant measures) of chaotic systems, where individual trajectories cannot be compared."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import NonFiniteError, SymplearnError
from ._common import as_tensor

__all__ = ["wasserstein_1d"]


def _sample(x: Any, name: str) -> np.ndarray:
    a = as_tensor(x, name).to("cpu").double().numpy().ravel()
    if a.size == 0:
        raise SymplearnError(f"{name} is empty: give at least one value")
    if not np.isfinite(a).all():
        raise NonFiniteError(f"{name} contains NaN or infinite values")
    return np.sort(a)


def wasserstein_1d(a: Any, b: Any) -> float:
    """1-Wasserstein (earth mover's) distance between two equal-weight empirical distributions.

    ``W1 = int_0^1 |F_a^-1(u) - F_b^-1(u)| du``, computed exactly from the two quantile functions
    (step functions with steps at ``i/len(a)`` and ``j/len(b)``). It has the units of the values,
    e.g. the distance between the distributions of ``q1`` along a model's and the truth's long
    chaotic trajectories.

    Args:
        a, b: samples of any shape and lengths (flattened), tensors or arrays.

    Returns:
        The distance (float, >= 0).

    Raises:
        SymplearnError: an empty sample. NonFiniteError: NaN/inf values.
    """
    xa, xb = _sample(a, "a"), _sample(b, "b")
    n, m = xa.size, xb.size
    # breakpoints of both quantile functions on (0, 1]; on each piece both are constant
    u = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)
    lo = np.concatenate([[0.0], u[:-1]])
    width = u - lo
    mid = 0.5 * (lo + u)
    ia = np.minimum(np.floor(mid * n).astype(np.int64), n - 1)
    ib = np.minimum(np.floor(mid * m).astype(np.int64), m - 1)
    return float(np.sum(width * np.abs(xa[ia] - xb[ib])))
