"""Distances between distributions of an observable, for comparing the long-time statistics
(invariant measures) of chaotic systems, where individual trajectories cannot be compared."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import NonFiniteError, SymplearnError
from ._common import as_tensor

__all__ = ["wasserstein_1d", "wasserstein_circle"]


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


def wasserstein_circle(a: Any, b: Any, period: float = 2 * np.pi) -> float:
    """1-Wasserstein distance on the circle ``R / (period Z)`` (angles) between two equal-weight
    empirical distributions, with the arc-length metric.

    On the circle ``W1 = min_alpha int_0^period |F_a(x) - F_b(x) - alpha| dx`` (Rabin, Delon and
    Gousseau 2011): the best ``alpha`` is the weighted median of ``D = F_a - F_b``, computed exactly
    here on the pieces between the sorted samples. Unlike :func:`wasserstein_1d` of wrapped
    angles it sees ``-pi`` and ``pi`` as the same point (mass moved across the cut costs its
    short way round).

    Args:
        a, b: samples (any shape, flattened), taken modulo ``period``.
        period: the circle's length (``2 pi`` for angles in radians).

    Returns:
        The distance (float, ``0 <= W1 <= period / 2``).

    Raises:
        SymplearnError: an empty sample or a non-positive period. NonFiniteError: NaN/inf values.
    """
    if not (isinstance(period, (int, float)) and np.isfinite(period) and period > 0):
        raise SymplearnError(f"period must be a positive number, got {period!r}")
    xa = np.sort(np.mod(_sample(a, "a"), period))
    xb = np.sort(np.mod(_sample(b, "b"), period))
    x = np.concatenate([[0.0], np.union1d(xa, xb), [period]])
    mid = 0.5 * (x[:-1] + x[1:])
    width = np.diff(x)
    d = np.searchsorted(xa, mid, side="right") / xa.size - np.searchsorted(xb, mid, side="right") / xb.size
    order = np.argsort(d)
    cum = np.cumsum(width[order])
    alpha = d[order][np.searchsorted(cum, 0.5 * cum[-1])]
    return float(np.sum(width * np.abs(d - alpha)))
