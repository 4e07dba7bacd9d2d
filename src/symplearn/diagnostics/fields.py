"""Does a vector field have an energy at all? Its divergence (on points or a grid) and the loop
integral of the one-form ``alpha = i_X omega`` around a closed curve (Green's theorem).

For ``X = J grad H`` the one-form is exact, ``alpha = sum_i (X_qi dp_i - X_pi dq_i) = dH``, so
its integral around every closed loop vanishes; in general (one degree of freedom) Green's
theorem gives ``oint alpha = iint div X dq dp``: a non-zero gap is divergence piled up inside
the loop, and a field with a gap is the flow of no energy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from ..dynamics import Dynamics, FlowMap
from ..geometry import batch_jacobian
from ._common import as_tensor, check_int, check_plane, check_states, default_tol, dynamics_dim, fd_jvp
from .area import check_loop, signed_polygon_area, symplectic_area

__all__ = [
    "DivergenceGrid",
    "LoopIntegral",
    "assert_divergence_free",
    "divergence_grid",
    "DivergenceStats",
    "divergence_stats",
    "field_jacobian",
    "loop_integral",
]


def _field(dynamics: Any, t: float = 0.0) -> tuple[Callable[[Tensor], Tensor], int | None]:
    """The field at time ``t`` as a callable ``z -> dz/dt``, and the phase-space dimension."""
    if isinstance(dynamics, Dynamics):
        return (lambda z: dynamics.vector_field(t, z)), dynamics_dim(dynamics)
    if callable(dynamics) and not isinstance(dynamics, FlowMap):
        return dynamics, None
    raise SymplearnError(
        f"expected a dynamics (system or model) or a callable field (..., 2n) -> (..., 2n), got "
        f"{type(dynamics).__name__} (a FlowMap has no vector field: use map_symplecticity instead)"
    )


def _module_dtype(dynamics: Any) -> torch.dtype:
    params = getattr(dynamics, "parameters", None)
    if isinstance(dynamics, torch.nn.Module) and callable(params):
        for p in dynamics.parameters():
            if p.is_floating_point():
                return p.dtype
    return torch.float64


def field_jacobian(dynamics: Any, points: Any) -> tuple[Tensor, str]:
    """Jacobian ``dX_i / dz_j`` of a vector field at a batch of points.

    By reverse-mode autograd when the field is differentiable (checked against a central finite
    difference along one random direction), else by central finite differences.

    Args:
        dynamics: a dynamics with ``vector_field``, or a callable field.
        points: ``(..., 2n)``.

    Returns:
        ``(A, method)``: ``A`` of shape ``(..., 2n, 2n)``; ``method`` is ``"autograd"`` or
        ``"finite-difference"``.
    """
    field, dim = _field(dynamics)
    z = check_states(points, "points", dim)
    batch = z.shape[:-1]
    zb = z.reshape(-1, z.shape[-1])
    out = field(zb[:1]).detach() if zb.shape[0] else None
    if out is not None and out.shape != zb[:1].shape:
        raise SymplearnError(
            f"the vector field must map states (B, {zb.shape[-1]}) to (B, {zb.shape[-1]}), got "
            f"{tuple(out.shape)} for (1, {zb.shape[-1]})"
        )
    u = torch.randn(zb.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(zb)
    fd = fd_jvp(field, zb, u)
    try:
        A = batch_jacobian(field, zb).detach()
        Au = (A @ u.unsqueeze(-1)).squeeze(-1)
        scale = torch.clamp(fd.norm(dim=-1), min=1.0)
        err = float(((Au - fd).norm(dim=-1) / scale).max())
    except RuntimeError:  # the field has no autograd path (e.g. computed under no_grad)
        err = math.inf
    method = "autograd"
    if not err < 1e3 * torch.finfo(zb.dtype).eps ** (2.0 / 3.0) + 1e-6:
        cols = []
        for j in range(zb.shape[-1]):
            e = torch.zeros_like(zb)
            e[:, j] = 1.0
            cols.append(fd_jvp(field, zb, e))
        A = torch.stack(cols, -1)
        method = "finite-difference"
    return A.reshape(*batch, zb.shape[-1], zb.shape[-1]), method


@dataclass(frozen=True)
class DivergenceStats:
    """Divergence of a vector field over a sample of points (see :func:`divergence_stats`).

    Attributes:
        rms, max_abs, mean: of the divergence ``sum_i dX_i/dz_i`` (1 / time).
        jacobian_rms: root-mean-square Frobenius norm of ``dX/dz`` (for scale).
        n_points: number of points.
        method: ``"autograd"`` or ``"finite-difference"``.
    """

    rms: float
    max_abs: float
    mean: float
    jacobian_rms: float
    n_points: int
    method: str

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain values for ``metrics.json``."""
        return dataclasses.asdict(self)


def divergence_stats(dynamics: Any, points: Any) -> DivergenceStats:
    """Divergence ``sum_i dX_i/dz_i`` of a vector field over a sample of points.

    Args:
        dynamics: a dynamics with ``vector_field`` (system or learned model) or a callable field.
        points: ``(..., 2n)`` states, e.g. ``system.sample(1000)``.

    Returns:
        :class:`DivergenceStats`.
    """
    A, method = field_jacobian(dynamics, points)
    div = torch.diagonal(A, dim1=-2, dim2=-1).sum(-1).to(torch.float64).reshape(-1)
    if not bool(torch.isfinite(div).all()):
        raise NonFiniteError("the divergence is NaN or infinite at some points")
    return DivergenceStats(
        rms=float(div.pow(2).mean().sqrt()),
        max_abs=float(div.abs().max()),
        mean=float(div.mean()),
        jacobian_rms=float(torch.linalg.matrix_norm(A.to(torch.float64)).pow(2).mean().sqrt()),
        n_points=int(div.numel()),
        method=method,
    )


class DivergenceGrid(NamedTuple):
    """Divergence on a grid of one ``(q_i, p_i)`` plane: ``Q, P, div`` of shape ``(n, n)``
    (``Q`` varies along columns, ``P`` along rows, as ``numpy.meshgrid(..., indexing="xy")``)."""

    Q: Tensor
    P: Tensor
    div: Tensor


def divergence_grid(dynamics: Any, bounds: Any, n: int, plane: int = 0, center: Any = None) -> DivergenceGrid:
    """Divergence of a vector field on an ``n x n`` grid of one ``(q_i, p_i)`` plane.

    Args:
        dynamics: a dynamics with ``vector_field`` or a callable field (``dim`` then comes from
            ``center``, which is required).
        bounds: ``((q_min, q_max), (p_min, p_max))``.
        n: grid points per axis (>= 2).
        plane: the degree of freedom i of the plane.
        center: ``(2n,)`` state giving the other coordinates (default zeros).

    Returns:
        :class:`DivergenceGrid` ``(Q, P, div)``, each ``(n, n)``, in the model's dtype (float64
        for systems).
    """
    field, dim = _field(dynamics)
    n = check_int("n", n, minimum=2)
    try:
        (q0, q1), (p0, p1) = bounds
        q0, q1, p0, p1 = (float(v) for v in (q0, q1, p0, p1))
    except (TypeError, ValueError):
        raise SymplearnError(f"bounds must be ((q_min, q_max), (p_min, p_max)), got {bounds!r}") from None
    if not all(math.isfinite(v) for v in (q0, q1, p0, p1)) or not (q0 < q1 and p0 < p1):
        raise SymplearnError(
            f"bounds must be finite ((q_min, q_max), (p_min, p_max)) with min < max, got {bounds!r}"
        )
    dtype = _module_dtype(dynamics)
    if center is None:
        if dim is None:
            raise SymplearnError("divergence_grid needs center (2n,) when given a bare callable field")
        c = torch.zeros(dim, dtype=dtype)
    else:
        c = check_states(center, "center", dim).to(dtype)
        if c.ndim != 1:
            raise SymplearnError(f"center must be one state (2n,), got shape {tuple(c.shape)}")
    d = c.shape[0] // 2
    plane = check_plane(plane, d)
    qs = torch.linspace(q0, q1, n, dtype=dtype)
    ps = torch.linspace(p0, p1, n, dtype=dtype)
    P, Q = torch.meshgrid(ps, qs, indexing="ij")  # Q varies along columns ("xy" layout)
    Z = c.expand(n, n, 2 * d).clone()
    Z[..., plane] = Q
    Z[..., d + plane] = P
    A, _ = field_jacobian(field, Z)
    return DivergenceGrid(Q, P, torch.diagonal(A, dim1=-2, dim2=-1).sum(-1))


def assert_divergence_free(dynamics: Any, points: Any, tol: float | None = None) -> DivergenceStats:
    """Assert that a vector field has zero divergence at the given points.

    Passes when ``max |div X| <= tol * max(1, max ||dX/dz||_F)``.

    Args:
        dynamics: a dynamics with ``vector_field`` or a callable field.
        points: ``(..., 2n)``.
        tol: default 1e-10 for float64 points, 1e-4 for float32.

    Returns:
        The :class:`DivergenceStats` (when the assertion holds).

    Raises:
        AssertionError: with the measured maximum and RMS divergence.
    """
    A, method = field_jacobian(dynamics, points)
    z = as_tensor(points, "points")
    div = torch.diagonal(A, dim1=-2, dim2=-1).sum(-1).reshape(-1).to(torch.float64)
    jn = float(torch.linalg.matrix_norm(A.to(torch.float64)).max())
    tol = default_tol(z.dtype) if tol is None else float(tol)
    allowed = tol * max(1.0, jn)
    max_abs = float(div.abs().max())
    if not max_abs <= allowed:
        raise AssertionError(
            f"the field is not divergence-free: max |div X| = {max_abs:.3e} > {allowed:.1e} (tol "
            f"{tol:.1e} x max(1, ||dX/dz||_F = {jn:.3g})); rms {float(div.pow(2).mean().sqrt()):.3e}, "
            f"mean {float(div.mean()):.3e} over {div.numel()} points (Jacobian by {method})"
        )
    return divergence_stats(dynamics, points)


@dataclass(frozen=True)
class LoopIntegral:
    """The loop integral of ``alpha = i_X omega`` (see :func:`loop_integral`).

    Attributes:
        gap: ``oint alpha`` (signed); 0 for a field with an energy.
        scale: circulation scale ``oint |X| |dz|`` (same quadrature), the size a gap is judged by.
        relative: ``|gap| / scale``.
        enclosed_area: signed enclosed area (positive for a counter-clockwise loop): of the
            projection onto ``plane`` when given, else the symplectic area ``sum_i A_i`` (the
            plane's area when the loop lies in one plane, always for one degree of freedom).
        divergence_estimate: ``gap / enclosed_area``: the mean divergence over the enclosed region
            (one degree of freedom; for n > 1, of the in-plane part ``dX_qi/dq_i + dX_pi/dp_i``
            for a loop in one plane). NaN when the area is 0.
        n_vertices: vertices of the loop.
        quadrature: the rule used.
    """

    gap: float
    scale: float
    relative: float
    enclosed_area: float
    divergence_estimate: float
    n_vertices: int
    quadrature: str

    def as_dict(self) -> dict[str, float | int | str]:
        """The fields as plain Python values (JSON-able)."""
        return {
            "gap": self.gap,
            "scale": self.scale,
            "relative": self.relative,
            "enclosed_area": self.enclosed_area,
            "divergence_estimate": self.divergence_estimate,
            "n_vertices": self.n_vertices,
            "quadrature": self.quadrature,
        }


def loop_integral(dynamics: Any, loop: Any, *, plane: int | None = None, nodes: int = 3) -> LoopIntegral:
    """Integral of the one-form ``alpha = i_X omega = sum_i (X_qi dp_i - X_pi dq_i)`` around a
    closed polygon.

    Quadrature: Gauss-Legendre with ``nodes`` points on every edge of the polygon (the edge is a
    straight segment ``z_k + s (z_{k+1} - z_k)``), so the result is the integral around the
    *polygon* itself, and Green's theorem applies to the polygon exactly. The rule is exact
    when ``X`` is a polynomial of degree ``<= 2 nodes - 1`` along each edge (a linear field:
    ``gap = (a + b) x polygon area`` to round-off); otherwise its error is at most about
    ``sum_k c |dz_k|^(2 nodes + 1) max |d^(2 nodes) X|`` (``c = (nodes!)^4 / ((2 nodes + 1)
    ((2 nodes)!)^3)``, 1/2016000 for 3 nodes): for a field with an energy the integrand is
    ``dH`` and the gap is that quadrature error, at round-off level for smooth fields and
    edges of 0.1.

    Sign: for ``X = (a q, b p)`` on a counter-clockwise loop, ``gap = (a + b) x area`` (Green:
    ``oint alpha = iint div X dq dp`` for one degree of freedom).

    Args:
        dynamics: a dynamics with ``vector_field`` (system or model) or a callable field.
        loop: ``(M, 2n)`` vertices of a closed polygon (see
            :func:`~symplearn.diagnostics.check_loop`).
        plane: use only the ``(q_i, p_i)`` term of ``alpha``; default all terms.
        nodes: Gauss-Legendre points per edge (>= 1).

    Returns:
        :class:`LoopIntegral`.
    """
    field, dim = _field(dynamics)
    z = check_loop(loop, dim)
    n = z.shape[-1] // 2
    if plane is not None:
        plane = check_plane(plane, n)
    nodes = check_int("nodes", nodes)
    x, w = np.polynomial.legendre.leggauss(nodes)
    s = torch.as_tensor((x + 1.0) / 2.0, dtype=z.dtype)
    wt = torch.as_tensor(w / 2.0, dtype=torch.float64)
    delta = z.roll(-1, 0) - z  # (M, 2n): edge k from vertex k to k+1 (last back to first)
    pts = z[:, None, :] + s[None, :, None] * delta[:, None, :]  # (M, K, 2n)
    M, K = pts.shape[:2]
    with torch.no_grad():
        X = field(pts.reshape(M * K, 2 * n))
    if not isinstance(X, Tensor) or X.shape != (M * K, 2 * n):
        raise SymplearnError(
            f"the vector field must map states (B, {2 * n}) to (B, {2 * n}), got "
            f"{tuple(getattr(X, 'shape', ()))}"
        )
    X = X.detach().reshape(M, K, 2 * n).to(torch.float64)
    if not bool(torch.isfinite(X).all()):
        raise NonFiniteError("the vector field is NaN or infinite on the loop")
    D = delta.to(torch.float64)[:, None, :]
    idx = list(range(n)) if plane is None else [plane]
    qi = torch.tensor(idx)
    pi = qi + n
    a = (X[..., qi] * D[..., pi] - X[..., pi] * D[..., qi]).sum(-1)  # (M, K)
    gap = float((a * wt).sum())
    cols = torch.cat([qi, pi])
    speed = X[..., cols].norm(dim=-1) * D[..., cols].norm(dim=-1)
    scale = float((speed * wt).sum())
    area = float(symplectic_area(z) if plane is None else signed_polygon_area(z, plane=plane))
    return LoopIntegral(
        gap=gap,
        scale=scale,
        relative=abs(gap) / scale if scale > 0 else (0.0 if gap == 0 else math.inf),
        enclosed_area=area,
        divergence_estimate=gap / area if area != 0 else math.nan,
        n_vertices=M,
        quadrature=f"Gauss-Legendre, {nodes} point(s) per edge",
    )
