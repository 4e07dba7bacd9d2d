"""Phase-space area (Liouville): shoelace areas of closed polygons, test loops, and the transport
of a loop of initial states by a dynamics, refined where it stretches.

Loops are the vertices ``(M, 2n)`` of a closed polygon, in order, the last vertex joined back to
the first (the first point is *not* repeated; a repeated one is dropped). Areas are those of the
projection onto one ``(q_i, p_i)`` plane (``plane = i``); counter-clockwise in that plane (q to
the right, p up) is positive for signed areas.

For ``n > 1`` the area of one projection is not conserved by a Hamiltonian flow; the sum of the
signed areas of all ``n`` projections, ``sum_i oint p_i dq_i`` up to sign (the Poincare integral
invariant, :attr:`LoopTransport.action`), is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from ._common import as_tensor, check_int, check_plane, check_positive, check_states, dynamics_dim, stepper

__all__ = [
    "LoopTransport",
    "check_loop",
    "circle_loop",
    "polygon_area",
    "signed_polygon_area",
    "square_loop",
    "symplectic_area",
    "transport_loop",
]

#: a loop whose closing edge (last vertex back to the first) is longer than this many times the
#: median edge is taken for an open curve
CLOSURE_FACTOR = 10.0


def _plane_xy(loop: Tensor, plane: int) -> tuple[Tensor, Tensor]:
    D = loop.shape[-1]
    if D == 0 or D % 2:
        raise SymplearnError(
            f"a loop must have shape (..., M, 2n) (states, q's then p's) or (..., M, 2) (points), "
            f"got shape {tuple(loop.shape)}"
        )
    n = D // 2
    plane = check_plane(plane, n)
    return loop[..., plane], loop[..., n + plane]


def signed_polygon_area(loop: Any, *, plane: int = 0) -> Tensor:
    """Signed shoelace area of closed polygons: positive when counter-clockwise in the plane.

    Args:
        loop: ``(..., M, 2n)`` states or ``(..., M, 2)`` points, ``M >= 3`` vertices in order,
            the last joined to the first.
        plane: the degree of freedom i whose ``(q_i, p_i)`` plane is used.

    Returns:
        ``(...)`` signed areas ``(1/2) sum_k (x_k y_{k+1} - x_{k+1} y_k)`` (computed about the
        vertices' centroid, which keeps small patches far from the origin accurate).

    Raises:
        SymplearnError: fewer than 3 vertices, an odd last dimension, ``plane`` out of range.
    """
    loop = as_tensor(loop, "loop")
    if loop.ndim < 2 or loop.shape[-2] < 3:
        raise SymplearnError(
            f"a polygon needs at least 3 vertices: loop must have shape (..., M, 2n) with M >= 3, "
            f"got shape {tuple(loop.shape)}"
        )
    x, y = _plane_xy(loop, plane)
    x = x - x.mean(-1, keepdim=True)
    y = y - y.mean(-1, keepdim=True)
    x1, y1 = x.roll(-1, -1), y.roll(-1, -1)
    return 0.5 * (x * y1 - x1 * y).sum(-1)


def polygon_area(loop: Any, *, plane: int = 0) -> Tensor:
    """Shoelace area (absolute value) of closed polygons in a ``(q_i, p_i)`` plane.

    Args:
        loop: ``(..., M, 2n)`` states or ``(..., M, 2)`` points, ``M >= 3``, last joined to first.
        plane: the degree of freedom i whose plane is used.

    Returns:
        ``(...)`` non-negative areas.

    Example:
        >>> float(polygon_area(torch.tensor([[0., 0.], [2., 0.], [2., 1.], [0., 1.]])))
        2.0
    """
    return signed_polygon_area(loop, plane=plane).abs()


def symplectic_area(loop: Any) -> Tensor:
    """``sum_i`` signed area of the loop's projection onto the ``(q_i, p_i)`` plane.

    This is the symplectic area ``oint sum_i q_i dp_i`` of any surface the loop bounds, conserved
    by every Hamiltonian flow and symplectic map (Poincare's integral invariant). For ``n = 1`` it
    is :func:`signed_polygon_area`.

    Args:
        loop: ``(..., M, 2n)``, ``M >= 3``.

    Returns:
        ``(...)``.
    """
    loop = as_tensor(loop, "loop")
    n = loop.shape[-1] // 2
    return sum(signed_polygon_area(loop, plane=i) for i in range(max(n, 1)))


def _straight_pieces(z0: Tensor) -> tuple[Tensor, Tensor, Tensor, int]:
    """Split a closed polygon ``(M, 2n)`` into straight pieces between its corners (vertices
    where the direction changes, in the full phase space).

    Returns:
        ``(z, piece, s, P)``: the polygon rotated to start at a corner, the piece of each
        vertex ``(M,)`` (0 .. P-1 in loop order), its arc-length parameter on the piece
        ``(M,)`` (0 at the corner that starts the piece), and the number of pieces P.
    """
    e_out = z0.roll(-1, 0) - z0
    e_in = e_out.roll(1, 0)
    cos = (e_in * e_out).sum(-1) / (e_in.norm(dim=-1) * e_out.norm(dim=-1))
    corner = ~(cos > 1.0 - 1e-12)  # NaN (a repeated vertex) counts as a corner
    if not bool(corner.any()):
        corner[0] = True
    shift = int(torch.nonzero(corner)[0, 0])
    z, corner = z0.roll(-shift, 0), corner.roll(-shift, 0)
    piece = torch.cumsum(corner.long(), 0) - 1
    n_pieces = int(corner.sum())
    length = (z.roll(-1, 0) - z).norm(dim=-1).double()
    before = torch.cumsum(length, 0) - length  # arc length from vertex 0
    piece_len = torch.zeros(n_pieces, dtype=torch.float64).index_add_(0, piece, length)
    spar = (before - before[corner][piece]) / piece_len[piece]
    spar[corner] = 0.0
    return z, piece, spar, n_pieces


def _lagrange(nodes: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Lagrange basis values and derivatives at ``u (I, G)`` on ``nodes (I, K)``: ``(I, G, K)``."""
    K = nodes.shape[-1]
    val = torch.ones(*u.shape, K, dtype=u.dtype)
    der = torch.zeros(*u.shape, K, dtype=u.dtype)
    for k in range(K):
        for m in range(K):
            if m == k:
                continue
            fac = (u - nodes[:, None, m]) / (nodes[:, None, k] - nodes[:, None, m])
            inv = 1.0 / (nodes[:, None, k] - nodes[:, None, m])
            der[..., k] = der[..., k] * fac + val[..., k] * inv
            val[..., k] = val[..., k] * fac
    return val, der


_GAUSS3 = np.polynomial.legendre.leggauss(3)


def _curve_area(xy: Tensor, edge: Tensor, spar: Tensor, n_edges: int) -> Tensor:
    """Signed area ``oint x dy`` enclosed by the image of a closed polygon, each of whose edges
    maps to a smooth curve sampled at the vertices ``xy (M, 2)`` (ordered), the vertex ``i``
    lying at parameter ``spar[i]`` of initial edge ``edge[i]`` (every edge holds its initial
    vertex at s = 0, and ends at the next edge's initial vertex at s = 1).

    Along each edge, ``x(s)`` and ``y(s)`` are interpolated by cubics through the four nearest
    nodes (fewer when the edge has fewer), and ``x y'`` is integrated exactly by 3-point
    Gauss-Legendre: error O(h^4) in the node spacing instead of the shoelace formula's O(h^2).
    Computed in float64 about the vertices' centroid. Returns a 0-d float64 tensor.
    """
    xy = xy.to(torch.float64)
    xy = xy - xy.mean(0)
    M = xy.shape[0]
    starts = torch.nonzero(spar == 0.0)[:, 0]  # initial vertex of each edge, in order
    counts = torch.diff(torch.cat([starts, torch.tensor([M])]))
    i = torch.arange(M)
    c = counts[edge]  # nodes of this edge before its end point
    j = i - starts[edge]  # local index of vertex i on its edge
    nxt_start = starts[(edge + 1) % n_edges]
    n_nodes = c + 1
    deg = torch.clamp(n_nodes - 1, max=3)
    gx = torch.as_tensor((_GAUSS3[0] + 1.0) / 2.0, dtype=torch.float64)
    gw = torch.as_tensor(_GAUSS3[1] / 2.0, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for d in (1, 2, 3):
        sel = deg == d
        if not bool(sel.any()):
            continue
        js, cs, es = j[sel], c[sel], edge[sel]
        st = torch.clamp(js - 1, min=0)
        st = torch.minimum(st, n_nodes[sel] - (d + 1))
        loc = st[:, None] + torch.arange(d + 1)[None, :]  # (I, d + 1) local node indices
        at_end = loc >= cs[:, None]
        glob = torch.where(at_end, nxt_start[sel][:, None], starts[es][:, None] + loc)
        sig = torch.where(at_end, torch.ones_like(loc, dtype=torch.float64), spar[glob])
        a = spar[i[sel]]
        b = torch.where(js + 1 < cs, spar[(i[sel] + 1) % M], torch.ones_like(a))
        u = a[:, None] + (b - a)[:, None] * gx[None, :]  # (I, 3)
        val, der = _lagrange(sig, u)
        x = (val * xy[glob][:, None, :, 0]).sum(-1)
        dy = (der * xy[glob][:, None, :, 1]).sum(-1)
        total = total + ((x * dy * gw).sum(-1) * (b - a)).sum()
    return total


def check_loop(loop: Any, dim: int | None = None, *, name: str = "loop") -> Tensor:
    """Validate one closed loop of states and return it as ``(M, 2n)``.

    A repeated first point at the end is dropped. Refused: not ``(M, 2n)``, ``M < 3`` distinct
    vertices, a dimension other than ``dim``, NaN/inf, zero length, and an open curve: a closing
    edge (last vertex back to the first) more than 10 times the median edge.

    Args:
        loop: ``(M, 2n)`` vertices in order.
        dim: the phase-space dimension ``2n`` the loop must have.
        name: the argument's name in messages.

    Returns:
        ``(M, 2n)``.

    Raises:
        SymplearnError: any of the above, with what was received and what would work.
    """
    z = check_states(loop, name, dim)
    if z.ndim != 2:
        raise SymplearnError(
            f"{name} must be one closed loop of states (M, 2n), got shape {tuple(z.shape)}; "
            f"build one with square_loop(center, side) or circle_loop(center, radius)"
        )
    if z.shape[0] >= 2:
        scale = float(z.abs().max()) + 1.0
        if float((z[-1] - z[0]).abs().max()) <= 1e-12 * scale:
            z = z[:-1]
    if z.shape[0] < 3:
        raise SymplearnError(
            f"{name} has {z.shape[0]} distinct vertices; a closed loop needs at least 3 (e.g. "
            f"square_loop(center, side, n_points=64))"
        )
    seg = (z.roll(-1, 0) - z).norm(dim=-1)
    if float(seg.max()) == 0.0:
        raise SymplearnError(f"{name} has zero length: all its vertices coincide")
    median = float(seg[:-1].median())
    if float(seg[-1]) > CLOSURE_FACTOR * median:
        raise SymplearnError(
            f"{name} does not look closed: the closing edge from the last vertex back to the first "
            f"has length {float(seg[-1]):.3g}, {float(seg[-1]) / max(median, 1e-300):.3g} times the "
            f"median edge {median:.3g}. Give the vertices of a closed curve in order (the first "
            f"point need not be repeated); if the long closing edge is intended, add vertices "
            f"along it"
        )
    return z


def _center(center: Any, dtype: torch.dtype | None) -> tuple[Tensor, int]:
    c = as_tensor(center, "center", dtype=dtype)
    if c.ndim != 1 or c.shape[0] == 0 or c.shape[0] % 2:
        raise SymplearnError(f"center must be one state (2n,) with q's then p's, got shape {tuple(c.shape)}")
    if not bool(torch.isfinite(c).all()):
        raise NonFiniteError("center contains NaN or infinite values")
    return c, c.shape[0] // 2


def square_loop(
    center: Any, side: float, n_points: int = 64, *, plane: int = 0, dtype: torch.dtype | None = None
) -> Tensor:
    """A counter-clockwise square loop of states in the ``(q_i, p_i)`` plane around ``center``.

    The other coordinates stay at ``center``'s. The four corners are vertices, so the polygon's
    area is exactly ``side^2``.

    Args:
        center: ``(2n,)`` the square's centre.
        side: side length (> 0).
        n_points: number of vertices, a multiple of 4 (``n_points / 4`` per side).
        plane: the degree of freedom i of the plane.
        dtype: dtype of the result (default: ``center``'s, float64 for non-tensors).

    Returns:
        ``(n_points, 2n)``, starting at the lower-left corner, first point not repeated.
    """
    c, n = _center(center, dtype)
    plane = check_plane(plane, n)
    side = check_positive("side", side)
    n_points = check_int("n_points", n_points, minimum=4)
    if n_points % 4:
        raise SymplearnError(
            f"n_points of a square loop must be a multiple of 4 (so the corners are vertices), got "
            f"{n_points}; try {4 * math.ceil(n_points / 4)}"
        )
    m = n_points // 4
    h = side / 2.0
    corners = torch.tensor([[-h, -h], [h, -h], [h, h], [-h, h]], dtype=c.dtype, device=c.device)
    s = torch.arange(m, dtype=c.dtype, device=c.device) / m
    pts = torch.cat([corners[k] + s[:, None] * (corners[(k + 1) % 4] - corners[k]) for k in range(4)], 0)
    out = c.expand(n_points, 2 * n).clone()
    out[:, plane] += pts[:, 0]
    out[:, n + plane] += pts[:, 1]
    return out


def circle_loop(
    center: Any, radius: float, n_points: int = 64, *, plane: int = 0, dtype: torch.dtype | None = None
) -> Tensor:
    """A counter-clockwise regular polygon inscribed in a circle in the ``(q_i, p_i)`` plane.

    Its area is ``(M/2) r^2 sin(2 pi / M)``, not ``pi r^2`` (the polygon, not the circle, is what
    the diagnostics transport and integrate over).

    Args:
        center: ``(2n,)``.
        radius: > 0.
        n_points: number of vertices M (>= 3).
        plane: the degree of freedom i of the plane.
        dtype: dtype of the result (default: ``center``'s, float64 for non-tensors).

    Returns:
        ``(n_points, 2n)``, vertex k at angle ``2 pi k / M``, first point not repeated.
    """
    c, n = _center(center, dtype)
    plane = check_plane(plane, n)
    radius = check_positive("radius", radius)
    n_points = check_int("n_points", n_points, minimum=3)
    th = 2.0 * math.pi * torch.arange(n_points, dtype=torch.float64) / n_points
    out = c.expand(n_points, 2 * n).clone()
    out[:, plane] += (radius * torch.cos(th)).to(c)
    out[:, n + plane] += (radius * torch.sin(th)).to(c)
    return out


@dataclass(frozen=True)
class LoopTransport:
    """A closed loop of states carried by a dynamics (see :func:`transport_loop`).

    Attributes:
        t: ``(S,)`` saved times.
        loops: ``S`` tensors ``(M_s, 2n)``: the loop at each saved time (``M_s`` grows as
            vertices are inserted); ``loops[0]`` is the initial loop, rotated to start at a
            corner if it did not.
        areas: ``(S,)`` areas in the chosen plane enclosed by the transported curve, signed
            relative to the initial loop's orientation (positive while the flow keeps the
            orientation; an orientation-reversing map gives a negative area): the image
            of the initial polygon, each straight piece (run of collinear edges between two
            corners) followed as a smooth curve through its vertices (piecewise cubic in the
            initial arc length; error O(h^4) in the vertex spacing h).
        polygon_areas: ``(S,)`` shoelace areas of the saved vertices (error O(h^2): for a thin
            sliver, much larger than ``areas``'s).
        perimeters: ``(S,)`` perimeters in the chosen plane (their growth shows the shear).
        action: ``(S,)`` signed symplectic area ``sum_i A_i`` over all planes (conserved by any
            Hamiltonian flow, also for n > 1; equals the signed area for n = 1).
        n_points: vertices at each saved time.
        n_inserted: vertices inserted in total.
        saturated: refinement stopped at ``max_points`` (later areas may be less accurate).
        plane: the plane of ``areas``.
        max_segment: the refinement threshold used.
    """

    t: Tensor
    loops: list[Tensor]
    areas: Tensor
    polygon_areas: Tensor
    perimeters: Tensor
    action: Tensor
    n_points: list[int] = field(default_factory=list)
    n_inserted: int = 0
    saturated: bool = False
    plane: int = 0
    max_segment: float = math.nan

    @property
    def area_ratio(self) -> float:
        """Final area over initial area, signed (1 for an area-preserving flow; -1 for an
        area-preserving map that reverses orientation, such as a reflection)."""
        return float(self.areas[-1] / self.areas[0])

    @property
    def max_area_deviation(self) -> float:
        """``max_t |A(t) / A(0) - 1|``."""
        return float((self.areas / self.areas[0] - 1.0).abs().max())

    @property
    def max_polygon_area_deviation(self) -> float:
        """``max_t |P(t) / P(0) - 1|`` of the shoelace areas of the vertices."""
        return float((self.polygon_areas / self.polygon_areas[0] - 1.0).abs().max())

    @property
    def max_action_deviation(self) -> float:
        """``max_t |S(t) / S(0) - 1|`` of the symplectic area :attr:`action`."""
        return float((self.action / self.action[0] - 1.0).abs().max())

    @property
    def perimeter_ratio(self) -> float:
        """Largest perimeter over the initial one: how much the loop stretched."""
        return float(self.perimeters.max() / self.perimeters[0])

    def polygons(self) -> list[Tensor]:
        """The loops projected onto the plane: ``S`` tensors ``(M_s, 2)`` for
        :func:`~symplearn.plotting.transported_patch_figure`."""
        n = self.loops[0].shape[-1] // 2
        return [lp[:, [self.plane, n + self.plane]] for lp in self.loops]

    def as_dict(self) -> dict[str, float | int | bool]:
        """Summary as plain Python values (JSON-able)."""
        return {
            "initial_area": float(self.areas[0]),
            "final_area": float(self.areas[-1]),
            "area_ratio": self.area_ratio,
            "max_area_deviation": self.max_area_deviation,
            "max_polygon_area_deviation": self.max_polygon_area_deviation,
            "max_action_deviation": self.max_action_deviation,
            "perimeter_ratio": self.perimeter_ratio,
            "t_final": float(self.t[-1]),
            "n_points_final": int(self.n_points[-1]),
            "n_inserted": int(self.n_inserted),
            "saturated": bool(self.saturated),
        }


def transport_loop(
    flow: Any,
    loop: Any,
    n_steps: int,
    *,
    t0: float = 0.0,
    save_every: int = 1,
    plane: int = 0,
    max_segment: float | None = None,
    max_points: int = 20000,
) -> LoopTransport:
    """Carry a closed loop of initial states by a dynamics and measure its area over time.

    Every vertex is integrated. At each saved time, every edge longer than ``max_segment`` is
    split: new vertices are placed on the *initial* edge (between the initial states of the two
    ends, which the initial polygon connects by a straight line) and integrated from the start
    to the current time with the same steps. The saved polygon therefore stays a faithful
    picture of the image of the initial polygon as it shears into a long thin sliver.

    The area is that of the transported curve: each straight piece of the initial polygon
    (a run of collinear edges between two corners) maps to a smooth curve, followed through its
    vertices by cubic interpolation in the initial arc-length parameter, and ``oint x dy`` is
    integrated exactly along it (error O(h^4) in the vertex spacing h). The shoelace area of
    the vertices (``polygon_areas``, error O(h^2)) misses the bulge of every edge; along a
    long sliver those errors add up (about 4e-4 relative for the pendulum test below, against
    3e-8). An edge that is ``r`` times too long is split into ``2 r``
    pieces at once (so it is not split again before it doubles), repeated until no edge is too
    long. The cost is dominated by these catch-up integrations: at most a few per saved time,
    each from the start, so save only as often as needed.

    The edge length is measured in the full phase space (in the plane when ``n = 1``), so every
    projection stays resolved.

    Args:
        flow: a :class:`~symplearn.FlowMap`: ``symplearn.discretize(dynamics, integrator, dt)``
            or a learned flow map.
        loop: ``(M, 2n)`` vertices of a closed polygon (see :func:`check_loop`).
        n_steps: number of steps.
        t0: initial time.
        save_every: save (and refine) every k-th step; the final step is always saved.
        plane: the ``(q_i, p_i)`` plane of :attr:`LoopTransport.areas`.
        max_segment: largest allowed edge at a saved time; default twice the initial mean edge
            (the error of ``areas`` scales like ``max_segment^4``, that of ``polygon_areas``
            like ``max_segment^2``).
        max_points: stop inserting at this many vertices (``saturated`` is then set).

    Returns:
        :class:`LoopTransport`.

    Raises:
        SymplearnError: bad arguments or loop.
        NonFiniteError: a vertex became NaN or infinite.
    """
    step, dt, _ = stepper(flow, "transport_loop")
    z0 = check_loop(loop, dynamics_dim(flow))
    n = z0.shape[-1] // 2
    plane = check_plane(plane, n)
    n_steps = check_int("n_steps", n_steps)
    save_every = check_int("save_every", save_every)
    max_points = check_int("max_points", max_points, minimum=3)
    seg0 = (z0.roll(-1, 0) - z0).norm(dim=-1)
    if max_segment is None:
        max_segment = 2.0 * float(seg0.mean())
    max_segment = check_positive("max_segment", max_segment)

    def advance(z: Tensor, k: int, t_now: float) -> Tensor:
        for j in range(k):
            z = step(t0 + j * dt, z)
        if not bool(torch.isfinite(z).all()):
            raise NonFiniteError(
                f"transport_loop: a vertex became NaN or infinite by t={t_now:g}; try a smaller dt"
            )
        return z

    # the initial polygon is a chain of straight pieces (runs of collinear edges) between its
    # corners; every vertex carries its piece and its arc-length parameter s in [0, 1) on it
    z0, edge, spar, n_pieces = _straight_pieces(z0)
    init, cur = z0.clone(), z0.clone()
    # areas are reported relative to the initial loop's orientation, so that a map that
    # reverses it shows a negative area ratio (abs() would hide it)
    orientation = 1.0 if float(_curve_area(z0[:, [plane, n + plane]], edge, spar, n_pieces)) >= 0 else -1.0
    times, loops, areas, poly_areas, perims, actions, counts = [], [], [], [], [], [], []
    inserted, saturated = 0, False

    def save(t_now: float) -> None:
        loops.append(cur.clone())
        times.append(t_now)
        xy = cur[:, [plane, n + plane]]
        areas.append(_curve_area(xy, edge, spar, n_pieces) * orientation)
        poly_areas.append(signed_polygon_area(xy) * orientation)
        perims.append((xy.roll(-1, 0) - xy).norm(dim=-1).sum())
        actions.append(sum(_curve_area(cur[:, [i, n + i]], edge, spar, n_pieces) for i in range(n)))
        counts.append(cur.shape[0])

    with torch.no_grad():
        save(float(t0))
        for k in range(1, n_steps + 1):
            cur = step(t0 + (k - 1) * dt, cur)
            if k % save_every and k != n_steps:
                continue
            t_now = t0 + k * dt
            if not bool(torch.isfinite(cur).all()):
                raise NonFiniteError(
                    f"transport_loop: a vertex became NaN or infinite by step {k} (t={t_now:g}); "
                    f"try a smaller dt"
                )
            for _ in range(64):  # refinement rounds at this time
                seg = (cur.roll(-1, 0) - cur).norm(dim=-1)
                long = seg > max_segment
                if not bool(long.any()):
                    break
                M = cur.shape[0]
                if M >= max_points:
                    saturated = True
                    break
                idx = long.nonzero()[:, 0]
                r = torch.clamp(torch.ceil(2.0 * seg[idx] / max_segment), min=2).long()
                if int((r - 1).sum()) > max_points - M:
                    saturated = True
                    keep = seg[idx].argsort(descending=True)[: max_points - M]
                    idx, r = idx[keep], torch.full_like(idx[keep], 2)
                seg_id = torch.repeat_interleave(idx, r - 1)
                rr = torch.repeat_interleave(r, r - 1)
                j = torch.cat([torch.arange(1, int(x)) for x in r.tolist()]).to(rr)
                frac = j.double() / rr.double()
                nxt = (seg_id + 1) % M
                e_new = edge[seg_id]
                s_end = torch.where(edge[nxt] == e_new, spar[nxt], torch.ones_like(frac))
                s_new = spar[seg_id] + frac * (s_end - spar[seg_id])
                w = frac.to(z0.dtype)[:, None]
                new_init = init[seg_id] + w * (init[nxt] - init[seg_id])  # on a straight piece
                new_cur = advance(new_init, k, t_now)
                order = torch.cat([edge.double() + spar, e_new.double() + s_new]).argsort()
                init = torch.cat([init, new_init], 0)[order]
                cur = torch.cat([cur, new_cur], 0)[order]
                edge = torch.cat([edge, e_new])[order]
                spar = torch.cat([spar, s_new])[order]
                inserted += new_init.shape[0]
            save(t_now)

    return LoopTransport(
        t=torch.tensor(times, dtype=z0.dtype),
        loops=loops,
        areas=torch.stack(areas).to(z0.dtype),
        polygon_areas=torch.stack(poly_areas),
        perimeters=torch.stack(perims),
        action=torch.stack(actions).to(z0.dtype),
        n_points=counts,
        n_inserted=inserted,
        saturated=saturated,
        plane=plane,
        max_segment=max_segment,
    )
