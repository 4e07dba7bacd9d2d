"""Helmholtz decomposition of planar fields, and the energy balance of a rollout.

**Helmholtz decomposition** (:func:`helmholtz_decomposition`). A field ``v = (v_q, v_p)`` sampled
on a uniform grid of the (q, p) plane is split as

    v = grad phi + J grad psi + h,

a gradient (irrotational, compressing) part, a divergence-free (rotational, Hamiltonian) part
``J grad psi = (d psi/dp, -d psi/dq)``, and a harmonic remainder ``h`` (both divergence- and
curl-free). Method: the *natural* Helmholtz-Hodge decomposition (Bhatia, Pascucci, Bremer 2014):
the potentials are the free-space solutions of the two Poisson problems,

    phi = G * div v,    psi = G * curl v,    G(x) = ln|x| / (2 pi),   curl v = dv_q/dp - dv_p/dq,

computed as a linear (zero-padded) FFT convolution over the grid, with the kernel averaged over
the central cell (its logarithmic singularity is integrable). Derivatives are second-order finite
differences (one-sided at the edges), so the parts are second-order accurate in the grid spacing
for smooth fields whose divergence and curl live inside the window. No boundary condition is
imposed: what the window's edges cannot attribute to sources inside it is the harmonic part.

Why this one: on a bounded window the split is unique only up to harmonic fields (e.g.
``(q, -p)`` is both a gradient and divergence-free). The natural decomposition assigns to
``grad phi`` exactly what is sourced by the divergence inside the window, so a divergence-free
field has ``grad phi = 0`` to round-off, and the energy share of ``grad phi`` measures compression
(dissipation or injection of phase-space volume) only. A Hamiltonian truth has none; an MLP that
learned one has some: its share is the spurious dissipation/injection the MLP learned.

**Energy balance** (:func:`energy_balance_residual`): along a trajectory, ``E(z(t)) - E(z(0)) -
int_0^t P(s, z(s)) ds`` for an energy ``E`` and the power ``P = dE/dt`` that the ports declare
(``-dissipated + forcing``); zero along exact trajectories of a port-Hamiltonian system.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import cumulative_simpson
from scipy.signal import fftconvolve
from torch import Tensor

from .._errors import SymplearnError


@dataclass
class HelmholtzDecomposition:
    """Result of :func:`helmholtz_decomposition` (float64 numpy arrays on the grid).

    Attributes:
        gradient: ``grad phi``, ``(Nq, Np, 2)``: the divergence-sourced (compressing) part.
        rotational: ``J grad psi``, ``(Nq, Np, 2)``: the curl-sourced (divergence-free) part.
        harmonic: the remainder ``v - gradient - rotational``, ``(Nq, Np, 2)``.
        phi, psi: the potentials ``(Nq, Np)``.
        divergence, curl: ``div v`` and ``dv_q/dp - dv_p/dq`` on the grid, ``(Nq, Np)``.
        shares: ``{"gradient", "rotational", "harmonic"}``: each part's ``sum |part|^2`` over the
            grid divided by ``sum |v|^2`` (the parts are not orthogonal on a finite window, so
            the shares need not add up to exactly 1).
    """

    gradient: np.ndarray
    rotational: np.ndarray
    harmonic: np.ndarray
    phi: np.ndarray
    psi: np.ndarray
    divergence: np.ndarray
    curl: np.ndarray
    shares: dict[str, float]


def _cell_average_log(hq: float, hp: float, m: int = 64) -> float:
    """Mean of ``ln r`` over the cell ``[-hq/2, hq/2] x [-hp/2, hp/2]`` (midpoint rule on an
    even m x m sub-grid, which never samples r = 0; error well below the grid's O(h^2))."""
    u = (np.arange(m) + 0.5) / m - 0.5
    qq, pp = np.meshgrid(u * hq, u * hp, indexing="ij")
    return float(np.log(np.hypot(qq, pp)).mean())


def _poisson_free_space(source: np.ndarray, hq: float, hp: float) -> np.ndarray:
    """``G * source`` on the grid, ``G = ln r / (2 pi)`` (linear convolution, cell-area weights)."""
    nq, np_ = source.shape
    dq = np.arange(-(nq - 1), nq) * hq
    dp = np.arange(-(np_ - 1), np_) * hp
    DQ, DP = np.meshgrid(dq, dp, indexing="ij")
    r = np.hypot(DQ, DP)
    with np.errstate(divide="ignore"):
        kernel = np.log(r)
    kernel[nq - 1, np_ - 1] = _cell_average_log(hq, hp)
    kernel *= hq * hp / (2 * math.pi)
    # out[x] = sum_y source[y] kernel[x - y + (n - 1)]: the full convolution shifted by n - 1
    full = fftconvolve(source, kernel, mode="full")
    return full[nq - 1 : 2 * nq - 1, np_ - 1 : 2 * np_ - 1]


def helmholtz_decomposition(field, q: np.ndarray | Tensor, p: np.ndarray | Tensor) -> HelmholtzDecomposition:
    """Natural Helmholtz-Hodge decomposition of a planar field on a uniform grid.

    Args:
        field: the field on the grid, ``(Nq, Np, 2)`` with ``field[i, j] = v(q[i], p[j])``
            (numpy or torch), or a callable ``z (..., 2) -> v (..., 2)`` evaluated on the grid
            (e.g. a model's ``lambda z: model.vector_field(0.0, z)``).
        q, p: the grid axes ``(Nq,)``, ``(Np,)``, uniformly spaced and increasing, each with at
            least 5 points.

    Returns:
        :class:`HelmholtzDecomposition`.

    Raises:
        SymplearnError: a non-uniform or too small grid, a field of the wrong shape, non-finite
            values.
    """
    q = np.asarray(q.detach().cpu() if isinstance(q, Tensor) else q, dtype=np.float64)
    p = np.asarray(p.detach().cpu() if isinstance(p, Tensor) else p, dtype=np.float64)
    for name, ax in (("q", q), ("p", p)):
        if ax.ndim != 1 or len(ax) < 5:
            raise SymplearnError(f"grid axis {name} must be 1-d with at least 5 points, got shape {ax.shape}")
        d = np.diff(ax)
        if not (d > 0).all() or np.abs(d - d.mean()).max() > 1e-9 * abs(d.mean()):
            raise SymplearnError(f"grid axis {name} must be uniformly spaced and increasing")
    hq, hp = float(q[1] - q[0]), float(p[1] - p[0])
    if callable(field):
        Q, P = np.meshgrid(q, p, indexing="ij")
        z = torch.tensor(np.stack([Q, P], -1))
        with torch.no_grad():
            try:
                v = field(z)
            except (RuntimeError, TypeError):  # a float32 model
                v = field(z.float())
        field = v
    v = np.asarray(field.detach().cpu() if isinstance(field, Tensor) else field, dtype=np.float64)
    if v.shape != (len(q), len(p), 2):
        raise SymplearnError(
            f"field must have shape (len(q), len(p), 2) = {(len(q), len(p), 2)}, got {v.shape}"
        )
    if not np.isfinite(v).all():
        raise SymplearnError("field contains NaN or infinite values")
    vq, vp = v[..., 0], v[..., 1]
    div = np.gradient(vq, hq, axis=0, edge_order=2) + np.gradient(vp, hp, axis=1, edge_order=2)
    curl = np.gradient(vq, hp, axis=1, edge_order=2) - np.gradient(vp, hq, axis=0, edge_order=2)
    phi = _poisson_free_space(div, hq, hp)
    psi = _poisson_free_space(curl, hq, hp)
    grad = np.stack(
        [np.gradient(phi, hq, axis=0, edge_order=2), np.gradient(phi, hp, axis=1, edge_order=2)], -1
    )
    rot = np.stack(
        [np.gradient(psi, hp, axis=1, edge_order=2), -np.gradient(psi, hq, axis=0, edge_order=2)], -1
    )
    harm = v - grad - rot
    total = float((v**2).sum())
    total = total if total > 0 else 1.0
    shares = {
        k: float((a**2).sum()) / total
        for k, a in (("gradient", grad), ("rotational", rot), ("harmonic", harm))
    }
    return HelmholtzDecomposition(grad, rot, harm, phi, psi, div, curl, shares)


def energy_balance_residual(
    t: Tensor,
    z: Tensor,
    energy: Callable[[Tensor], Tensor],
    power: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    """``r(t) = E(z(t)) - E(z(0)) - int_0^t P(s, z(s)) ds`` along trajectories.

    The integral is the cumulative Simpson rule over the saved times (fourth order in their
    spacing), so along an exact trajectory ``r`` is the quadrature error, and along a model's
    rollout it is the energy the model creates or destroys beyond what the ports declare.

    Args:
        t: times ``(T,)``, uniformly or non-uniformly spaced, ``T >= 3``.
        z: states ``(T, ..., 2n)``.
        energy: ``z (..., 2n) -> E (...)``.
        power: ``(t, z) -> dE/dt (...)`` declared by the ports (``t`` is passed as ``(T, 1, ...)``
            broadcastable against the batch).

    Returns:
        ``r``, ``(T, ...)`` (float64).

    Raises:
        SymplearnError: fewer than 3 saved times, or shapes that do not match.
    """
    if t.ndim != 1 or t.shape[0] < 3 or z.shape[0] != t.shape[0]:
        raise SymplearnError(
            f"need times (T,) with T >= 3 and states (T, ..., 2n) with the same T; got {tuple(t.shape)} "
            f"and {tuple(z.shape)}"
        )
    with torch.no_grad():
        tt = t.reshape(-1, *([1] * (z.ndim - 2))).to(z)
        e = energy(z).to(torch.float64)
        pw = power(tt, z).to(torch.float64).expand_as(e)
    tn = t.detach().cpu().double().numpy()
    integral = cumulative_simpson(pw.cpu().numpy(), x=tn, axis=0, initial=0.0)
    return (e - e[0]) - torch.from_numpy(integral)


__all__ = ["HelmholtzDecomposition", "energy_balance_residual", "helmholtz_decomposition"]
