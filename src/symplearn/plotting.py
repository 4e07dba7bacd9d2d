"""Figures for the whole project: energy errors, phase portraits, transported patches, vector
fields with their divergence, Poincare sections, Lyapunov estimates, loss curves, trajectories.

Every function takes numpy arrays or torch tensors (any dtype or device; they are copied to
float64 numpy), validates shapes with :class:`~symplearn.SymplearnError`, and returns a
:class:`matplotlib.figure.Figure` built without pyplot (no global figure state, no backend
selection, nothing is shown). Save one with :func:`symplearn._files.save_figure`.

Colours and line styles come from one table, :data:`FIG_STYLE`, looked up by
:func:`style_for`: the same model or integrator has the same colour in every figure
(truth black and dashed, HNN blue, MLP red, LNN green, SympNet purple, ...).

Time is in the natural units of the system ("time t"); energies are the values of the
Hamiltonian ``H(q, p)``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps, patheffects
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from matplotlib.ticker import ScalarFormatter

from ._errors import SymplearnError

__all__ = [
    "ERROR_FLOOR",
    "FIG_STYLE",
    "energy_error_figure",
    "energy_figure",
    "fit_loss_figure",
    "loss_history_figure",
    "loss_figure",
    "lyapunov_figure",
    "phase_portrait_figure",
    "poincare_figure",
    "style_for",
    "trajectory_figure",
    "transported_patch_figure",
    "vector_field_figure",
]

#: Values drawn on a logarithmic axis are floored here, so exact zeros (an exactly conserved
#: energy, a loss that reached 0) are drawn at the bottom of the plot instead of vanishing.
ERROR_FLOOR = 1e-17

_TRUTH = {"color": "black", "ls": "--"}

#: Style of every known model / integrator / reference name: ``{"color": ..., "ls": ...}``.
FIG_STYLE: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        # references
        "true": _TRUTH,
        "truth": _TRUTH,
        "exact": _TRUTH,
        "reference": _TRUTH,
        "ground-truth": _TRUTH,
        # models
        "hnn": {"color": "tab:blue", "ls": "-"},
        "mlp": {"color": "tab:red", "ls": "-"},
        "vanilla": {"color": "tab:red", "ls": "-"},
        "baseline": {"color": "tab:red", "ls": "-"},
        "lnn": {"color": "tab:green", "ls": "-"},
        "sympnet": {"color": "tab:purple", "ls": "-"},
        "la-sympnet": {"color": "tab:purple", "ls": "-"},
        "g-sympnet": {"color": "tab:purple", "ls": "-"},
        # variants of one family: another shade and dash, so they can share a figure
        "lnn-structured": {"color": "darkgreen", "ls": "--"},
        "sympnet-g-free": {"color": "magenta", "ls": "--"},
        "sympnet-p": {"color": "indigo", "ls": "-."},
        # integrators
        "euler": {"color": "tab:orange", "ls": "-"},
        "symplectic-euler": {"color": "tab:pink", "ls": "-"},
        "rk4": {"color": "tab:brown", "ls": "-"},
        "verlet": {"color": "tab:cyan", "ls": "-"},
        "yoshida4": {"color": "tab:olive", "ls": "-"},
        "implicit-midpoint": {"color": "darkgoldenrod", "ls": "-"},
        "gauss-legendre-4": {"color": "navy", "ls": "-"},
        "gauss-legendre-6": {"color": "teal", "ls": "-"},
    }
)

# colours for names not in FIG_STYLE (none of them is used by a known name)
_FALLBACK_COLORS = (
    "slategray",
    "crimson",
    "seagreen",
    "darkorange",
    "slateblue",
    "sienna",
    "deeppink",
    "darkkhaki",
    "steelblue",
    "indigo",
)
# line styles that tell apart several series of the same family (e.g. "hnn h=0.1", "hnn h=0.01")
_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


def _normalise(label: str) -> str:
    return "-".join(str(label).strip().lower().replace("_", " ").split())


def _known_style(label: str) -> dict[str, Any] | None:
    key = _normalise(label)
    if key in FIG_STYLE:
        return dict(FIG_STYLE[key])
    best = None
    for name in FIG_STYLE:
        if key.startswith(name) and not key[len(name)].isalnum():
            if best is None or len(name) > len(best):
                best = name
    return dict(FIG_STYLE[best]) if best is not None else None


def style_for(label: str) -> dict[str, Any]:
    """Colour and line style of a series, by model / integrator name.

    Known names (see :data:`FIG_STYLE`; case, spaces and underscores do not matter) match
    exactly or as a prefix followed by a separator, so ``"HNN (verlet)"`` is drawn like
    ``"hnn"`` and ``"sympnet-la"`` like ``"sympnet"``. Unknown names get a fixed colour chosen
    from the label's checksum (the same label always gets the same colour).

    Args:
        label: the series name.

    Returns:
        A new dict ``{"color": str, "ls": str}``, ready to pass to ``ax.plot(**style)``.
    """
    known = _known_style(label)
    if known is not None:
        return known
    i = zlib.crc32(str(label).encode()) % len(_FALLBACK_COLORS)
    return {"color": _FALLBACK_COLORS[i], "ls": "-"}


def _repeat_markers(style: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Open markers for a line that repeats an earlier line's colour in another line style (an
    MLP under two integrators): where the two curves coincide, the markers keep it visible."""
    if not any(e["color"] == style["color"] for e in earlier):
        return {}
    return {"marker": "o", "markevery": 0.08, "ms": 4, "mfc": "none"}


def _styles(labels: Sequence[str]) -> list[dict[str, Any]]:
    """Styles of the series of one figure: known names keep their colour (repeated families
    get different line styles); unknown names get distinct colours not used elsewhere."""
    out: list[dict[str, Any] | None] = [_known_style(lab) for lab in labels]
    used = {s["color"] for s in out if s is not None}
    free = [c for c in _FALLBACK_COLORS if c not in used]
    for i, lab in enumerate(labels):
        if out[i] is None:
            pref = style_for(lab)["color"]
            color = pref if pref in free else (free[0] if free else pref)
            if color in free:
                free.remove(color)
            out[i] = {"color": color, "ls": "-"}
    seen: dict[tuple[str, Any], int] = {}
    for s in out:
        key = (s["color"], s["ls"])
        k = seen.get(key, 0)
        seen[key] = k + 1
        if k:  # a repeat of the same family: same colour, another line style
            alts = [ls for ls in _LINESTYLES if ls != s["ls"]]
            s["ls"] = alts[(k - 1) % len(alts)]
    return out  # type: ignore[return-value]


# -- input conversion and validation -----------------------------------------------------------
def _as_array(x: Any, name: str) -> np.ndarray:
    """A float64 numpy copy of an array-like or torch tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_complex():
            raise SymplearnError(f"{name} must be real, got a complex tensor")
        return x.to(torch.float64).numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise SymplearnError(f"{name} must be an array or tensor of numbers: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise SymplearnError(
            f"{name} must be an array or tensor of real numbers, got {type(x).__name__} with "
            f"dtype {arr.dtype}"
        )
    if np.iscomplexobj(arr):
        raise SymplearnError(f"{name} must be real, got a complex array")
    return arr.astype(np.float64)


def _as_time(t: Any, name: str = "t") -> np.ndarray:
    t = _as_array(t, name)
    if t.ndim != 1 or len(t) < 1:
        raise SymplearnError(f"{name} must be a 1-D array of times (T,), got shape {t.shape}")
    return t


def _as_series(obj: Any, name: str, example: str) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise SymplearnError(
            f"{name} must be a dict label -> array, e.g. {example}; got {type(obj).__name__}"
        )
    if len(obj) == 0:
        raise SymplearnError(f"{name} is empty: give at least one series, e.g. {example}")
    return {str(k): v for k, v in obj.items()}


def _time_series(t: np.ndarray, values: Mapping[str, Any], name: str) -> dict[str, np.ndarray]:
    """Check that every value is (T,) or (T, K) with T = len(t); returns (T, K) arrays."""
    out = {}
    for label, v in values.items():
        arr = _as_array(v, f"{name}[{label!r}]")
        if arr.ndim not in (1, 2) or arr.shape[0] != len(t):
            raise SymplearnError(
                f"{name}[{label!r}] has shape {arr.shape} but t has {len(t)} times: each value "
                f"must be (T,) or (T, K) with T = len(t) = {len(t)}"
            )
        out[label] = arr.reshape(len(t), -1)
    return out


def _module_dtype_device(fn: Callable) -> tuple[torch.dtype, torch.device]:
    owner = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
    if isinstance(owner, torch.nn.Module):
        for p in owner.parameters():
            if p.is_floating_point():
                return p.dtype, p.device
    return torch.float64, torch.device("cpu")


def _call_on_states(fn: Callable, z: np.ndarray, name: str, out_shape: tuple[int, ...]) -> np.ndarray:
    """Evaluate ``fn`` on states ``z`` (..., 2): first as a torch tensor (dtype/device of the
    module ``fn`` belongs to, else float64), then, if that fails, as a numpy array."""
    if not callable(fn):
        raise SymplearnError(f"{name} must be a callable on states (..., 2), got {type(fn).__name__}")
    dtype, device = _module_dtype_device(fn)
    try:
        out = fn(torch.as_tensor(z, dtype=dtype, device=device))
    except Exception as exc_torch:
        try:
            out = fn(z.copy())
        except Exception as exc_np:
            raise SymplearnError(
                f"{name} could not be evaluated on a grid of states of shape {z.shape}: with a "
                f"torch tensor it raised {exc_torch!r}; with a numpy array it raised {exc_np!r}"
            ) from exc_np
    arr = _as_array(out, f"the output of {name}")
    if arr.shape != out_shape:
        if arr.size == math.prod(out_shape) and arr.shape[: len(out_shape)] == out_shape:
            arr = arr.reshape(out_shape)  # e.g. (..., 1) for a scalar function
        else:
            raise SymplearnError(
                f"{name} returned shape {arr.shape} for states of shape {z.shape}; expected {out_shape}"
            )
    return arr


def _check_bounds(bounds: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        (x0, x1), (y0, y1) = bounds
        x0, x1, y0, y1 = (float(v) for v in (x0, x1, y0, y1))
    except (TypeError, ValueError) as exc:
        raise SymplearnError(f"bounds must be ((q_min, q_max), (p_min, p_max)), got {bounds!r}") from exc
    if not all(math.isfinite(v) for v in (x0, x1, y0, y1)) or not (x0 < x1 and y0 < y1):
        raise SymplearnError(
            f"bounds must be finite ((q_min, q_max), (p_min, p_max)) with min < max, got "
            f"{((x0, x1), (y0, y1))}"
        )
    return (x0, x1), (y0, y1)


def _data_bounds(points: np.ndarray, margin: float = 0.1):
    pts = points.reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(-1)]
    if len(pts) == 0:
        raise SymplearnError("no finite points to plot: every state is NaN or infinite")
    lo, hi = pts.min(0), pts.max(0)
    span = np.maximum(hi - lo, 1e-3 * np.maximum(1.0, np.abs(hi)))
    lo, hi = lo - margin * span, hi + margin * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _grid(bounds, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (x0, x1), (y0, y1) = bounds
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n), indexing="xy")
    return X, Y, np.stack([X, Y], axis=-1)


def _new_figure(nrows: int = 1, ncols: int = 1, *, figsize=(6.4, 4.4), **kwargs):
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def _floor(y: np.ndarray, floor: float) -> tuple[np.ndarray, bool]:
    below = y < floor  # NaN compares False: NaN stays a gap
    return np.where(below, floor, y), bool(below.any())


def _level_set_proxy(color: str = "0.6") -> Line2D:
    return Line2D([], [], color=color, lw=0.9, label="level sets of H")


def _draw_levels(ax, hamiltonian: Callable, bounds, levels, *, n: int = 201):
    """Contour lines of H on a grid of the bounds; returns the ContourSet."""
    X, Y, Z = _grid(bounds, n)
    H = _call_on_states(hamiltonian, Z, "hamiltonian", X.shape)
    if not np.isfinite(H).any():
        raise SymplearnError("hamiltonian is NaN or infinite everywhere on the plotted region")
    if isinstance(levels, int):
        if levels < 1:
            raise SymplearnError(f"levels must be a positive int or a sequence of energies, got {levels}")
        lv = levels
    else:
        lv = np.sort(_as_array(levels, "levels").ravel())
        if lv.size == 0:
            raise SymplearnError("levels is empty: give an int or a non-empty sequence of energies")
    cs = ax.contour(X, Y, H, levels=lv, colors="0.6", linewidths=0.9, zorder=0)
    return cs


# -- figures -------------------------------------------------------------------------------------
def energy_error_figure(
    t: Any,
    rel_errors: Mapping[str, Any],
    *,
    title: str = "Relative energy error",
    logy: bool = True,
    band: bool = True,
    floor: float = ERROR_FLOOR,
) -> Figure:
    """Relative energy error ``|E(t) - E0| / |E0|`` of several models / integrators over time.

    Args:
        t: times ``(T,)``.
        rel_errors: label -> ``(T,)`` or ``(T, K)`` non-negative relative errors (``K``
            trajectories: the maximum over K is drawn, with a shaded min..max band if ``band``).
            NaN / inf (a diverged run) are left as gaps.
        title: figure title.
        logy: logarithmic error axis; values below ``floor`` (exact zeros included) are drawn
            at ``floor`` and the axis label says so.
        band: shade min..max over K for ``(T, K)`` errors.
        floor: smallest value drawn on a log axis.

    Returns:
        The figure (one axes; one line per label, in input order).

    Raises:
        SymplearnError: a value is not ``(T,)`` / ``(T, K)`` with ``T = len(t)``, an error is
            negative, or ``rel_errors`` is empty.
    """
    t = _as_time(t)
    series = _time_series(t, _as_series(rel_errors, "rel_errors", "{'verlet': errors}"), "rel_errors")
    for label, e in series.items():
        if (e[np.isfinite(e)] < 0).any():
            raise SymplearnError(
                f"rel_errors[{label!r}] has negative values: pass |E(t) - E0| / |E0| (absolute "
                f"values), e.g. np.abs(E - E0) / np.abs(E0)"
            )
    fig, axes = _new_figure()
    ax = axes[0, 0]
    floored = False
    styles = _styles(list(series))
    for n, ((label, e), style) in enumerate(zip(series.items(), styles)):
        K = e.shape[1]
        with np.errstate(invalid="ignore"):
            top = e.max(1) if K > 1 else e[:, 0]
        name = label if K == 1 else f"{label} (max of {K}{'; band: min..max' if band else ''})"
        if logy:
            top, f1 = _floor(top, floor)
            floored |= f1
        ax.plot(t, top, label=name, lw=1.4, **style, **_repeat_markers(style, styles[:n]))
        if K > 1 and band:
            with np.errstate(invalid="ignore"):
                lo, hi = e.min(1), e.max(1)
            if logy:
                lo, f2 = _floor(lo, floor)
                hi, _ = _floor(hi, floor)
                floored |= f2
            ax.fill_between(t, lo, hi, color=style["color"], alpha=0.18, lw=0)
    ylabel = r"relative energy error $|E(t) - E_0|\,/\,|E_0|$"
    if logy:
        ax.set_yscale("log")
        if floored:
            ylabel += f"\n(values below {floor:.0e} drawn at {floor:.0e})"
    ax.set_xlabel("time t")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def energy_figure(
    t: Any,
    energies: Mapping[str, Any],
    *,
    title: str = "Energy",
    reference: float | None = None,
) -> Figure:
    """Raw energy ``H(z(t))`` over time (linear axes).

    Args:
        t: times ``(T,)``.
        energies: label -> ``(T,)`` energies, or ``(T, K)`` for K trajectories (K thin lines of
            the same colour, one legend entry).
        title: figure title.
        reference: an energy drawn as a dotted horizontal line (e.g. the initial energy ``E0``).

    Returns:
        The figure (one axes).

    Raises:
        SymplearnError: a value is not ``(T,)`` / ``(T, K)`` with ``T = len(t)``.
    """
    t = _as_time(t)
    series = _time_series(t, _as_series(energies, "energies", "{'hnn': E}"), "energies")
    fig, axes = _new_figure()
    ax = axes[0, 0]
    for (label, e), style in zip(series.items(), _styles(list(series))):
        K = e.shape[1]
        lines = ax.plot(t, e, lw=1.4 if K == 1 else 0.9, alpha=1.0 if K == 1 else 0.7, **style)
        lines[0].set_label(label if K == 1 else f"{label} ({K} trajectories)")
    if reference is not None:
        ax.axhline(float(reference), color="0.4", ls=":", lw=1.0, label=f"$E_0$ = {reference:.6g}")
    ax.set_xlabel("time t")
    ax.set_ylabel("energy H(q, p)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    ax.yaxis.get_major_formatter().set_useOffset(False)
    return fig


def phase_portrait_figure(
    trajectories: Mapping[str, Any],
    *,
    hamiltonian: Callable | None = None,
    bounds: Any = None,
    levels: int | Sequence[float] = 15,
    dof: int = 0,
    labels: tuple[str, str] = ("q", "p"),
    title: str = "Phase portrait",
) -> Figure:
    """Orbits in the (q, p) plane over the level sets of ``H``.

    Args:
        trajectories: label -> ``(T, 2n)`` or ``(T, K, 2n)`` states (positions first); the
            plane ``(q_dof, p_dof)`` is drawn. A dot marks each initial state.
        hamiltonian: optional energy of a 1-degree-of-freedom system, a callable mapping states
            ``(..., 2)`` to ``(...)`` (torch or numpy, e.g. ``system.hamiltonian`` or a learned
            model's); its level sets are drawn as grey contour lines.
        bounds: ``((q_min, q_max), (p_min, p_max))``; default: the data plus a 10% margin.
        levels: number of contour levels, or the energies to draw.
        dof: which degree of freedom to draw when ``n > 1``.
        labels: axis labels.
        title: figure title.

    Returns:
        The figure (one axes).

    Raises:
        SymplearnError: a trajectory is not ``(T, 2n)`` / ``(T, K, 2n)``, the trajectories
            disagree on ``n``, ``dof`` is out of range, or ``hamiltonian`` is given with ``n > 1``.
    """
    series = _as_series(trajectories, "trajectories", "{'verlet': z}")
    arrays, dims = {}, set()
    for label, z in series.items():
        arr = _as_array(z, f"trajectories[{label!r}]")
        if arr.ndim not in (2, 3) or arr.shape[-1] % 2 or arr.shape[-1] == 0:
            raise SymplearnError(
                f"trajectories[{label!r}] has shape {arr.shape}; expected (T, 2n) or (T, K, 2n) "
                f"states with positions first"
            )
        dims.add(arr.shape[-1])
        arrays[label] = arr.reshape(arr.shape[0], -1, arr.shape[-1])
    if len(dims) > 1:
        raise SymplearnError(f"trajectories have different state sizes {sorted(dims)}; expected one 2n")
    n = dims.pop() // 2
    if not (isinstance(dof, int) and 0 <= dof < n):
        raise SymplearnError(f"dof must be an integer in [0, {n}) for states with n = {n}, got {dof!r}")
    if hamiltonian is not None and n != 1:
        raise SymplearnError(
            f"level sets of hamiltonian can only be drawn for one degree of freedom (states (..., 2)), "
            f"got states (..., {2 * n}); leave hamiltonian=None"
        )
    planes = {k: a[..., [dof, n + dof]] for k, a in arrays.items()}
    bounds = (
        _check_bounds(bounds)
        if bounds is not None
        else _data_bounds(np.concatenate([a.reshape(-1, 2) for a in planes.values()]))
    )
    fig, axes = _new_figure(figsize=(6.4, 5.2))
    ax = axes[0, 0]
    handles = []
    if hamiltonian is not None:
        _draw_levels(ax, hamiltonian, bounds, levels)
    for (label, a), style in zip(planes.items(), _styles(list(planes))):
        K = a.shape[1]
        lines = ax.plot(a[:, :, 0], a[:, :, 1], lw=1.3, alpha=1.0 if K == 1 else 0.8, **style)
        lines[0].set_label(label if K == 1 else f"{label} ({K} orbits)")
        for ln in lines[1:]:
            ln.set_label("_nolegend_")
        ax.plot(a[0, :, 0], a[0, :, 1], "o", color=style["color"], ms=4, label="_nolegend_")
        handles.append(lines[0])
    if hamiltonian is not None:
        handles.append(_level_set_proxy())
    handles.append(Line2D([], [], color="0.3", marker="o", ls="", ms=4, label="initial state"))
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.set_xlabel(labels[0] if n == 1 else f"{labels[0]}{dof + 1}")
    ax.set_ylabel(labels[1] if n == 1 else f"{labels[1]}{dof + 1}")
    ax.set_title(title)
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.9)
    return fig


def transported_patch_figure(
    polygons: Sequence[Any],
    times: Any,
    areas_t: Any,
    areas: Any,
    *,
    hamiltonian: Callable | None = None,
    bounds: Any = None,
    tolerance: float = 1e-4,
    labels: tuple[str, str] = ("q", "p"),
    title: str = "Transported phase-space patch",
) -> Figure:
    """A patch of phase space carried by the flow (left) and its area over time (right).

    Args:
        polygons: list of ``P`` boundaries ``(M, 2)`` (``M >= 3``, the patch at ``times``),
            drawn as filled polygons that get darker with time.
        times: ``(P,)`` the times of ``polygons``.
        areas_t: ``(S,)`` times of the area measurements.
        areas: ``(S,)`` patch areas (e.g. by the shoelace formula); ``areas[0]`` is the
            reference ``A0`` and must be non-zero.
        hamiltonian: optional ``(..., 2) -> (...)`` energy whose level sets are drawn behind.
        bounds: ``((q_min, q_max), (p_min, p_max))`` of the left panel; default: the polygons
            plus a margin.
        tolerance: the relative change ``(A - A0)/A0`` shaded as ``±tolerance`` (the y-range
            always includes ``±2 tolerance``, so a flat line reads as "constant to within it").
        labels: axis labels of the phase-space panel.
        title: figure title.

    Returns:
        The figure: axes 0 phase space, axes 1 relative area change with the absolute area on
        a secondary right axis (full digits, no offset).

    Raises:
        SymplearnError: shapes disagree, a polygon is not ``(M >= 3, 2)``, or ``areas[0] == 0``.
    """
    if isinstance(polygons, (np.ndarray, torch.Tensor)) and polygons.ndim == 3:
        polygons = list(polygons)
    if not isinstance(polygons, Sequence) or len(polygons) == 0:
        raise SymplearnError(
            f"polygons must be a non-empty list of (M, 2) boundaries, got {type(polygons).__name__}"
        )
    polys = []
    for i, poly in enumerate(polygons):
        arr = _as_array(poly, f"polygons[{i}]")
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3:
            raise SymplearnError(f"polygons[{i}] has shape {arr.shape}; expected (M, 2) with M >= 3")
        polys.append(arr)
    times = _as_time(times, "times")
    if len(times) != len(polys):
        raise SymplearnError(
            f"times has {len(times)} entries but there are {len(polys)} polygons; give one time per polygon"
        )
    areas_t = _as_time(areas_t, "areas_t")
    areas = _as_array(areas, "areas")
    if areas.shape != areas_t.shape:
        raise SymplearnError(
            f"areas has shape {areas.shape} but areas_t has shape {areas_t.shape}; expected one area per time"
        )
    A0 = float(areas[0])
    if A0 == 0 or not math.isfinite(A0):
        raise SymplearnError(f"areas[0] (the initial area) must be finite and non-zero, got {A0}")
    if not (tolerance > 0):
        raise SymplearnError(f"tolerance must be > 0, got {tolerance}")

    fig, axes = _new_figure(1, 2, figsize=(11.5, 4.6))
    ax, axa = axes[0]
    bounds = _check_bounds(bounds) if bounds is not None else _data_bounds(np.concatenate(polys), 0.15)
    handles = []
    if hamiltonian is not None:
        _draw_levels(ax, hamiltonian, bounds, 15)
        handles.append(_level_set_proxy())
    shades = np.linspace(0.35, 0.95, len(polys)) if len(polys) > 1 else np.array([0.7])
    cmap = colormaps["Blues"]
    for poly, ti, s in zip(polys, times, shades):
        patch = Polygon(
            poly,
            closed=True,
            facecolor=cmap(s),
            edgecolor=cmap(min(1.0, s + 0.1)),
            lw=0.8,
            alpha=0.9,
            label=f"t = {ti:.3g}",
        )
        ax.add_patch(patch)
        handles.append(patch)
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title("patch in phase space")
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.9)

    rel = areas / A0 - 1.0
    axa.axhspan(-tolerance, tolerance, color="tab:green", alpha=0.12, lw=0, label=f"±{tolerance:g} relative")
    axa.axhline(0.0, color="black", ls="--", lw=1.0, label=f"initial area $A_0$ = {A0:.6g}")
    axa.plot(
        areas_t,
        rel,
        color="tab:blue",
        lw=1.5,
        marker="." if len(rel) < 60 else None,
        label=r"$(A(t) - A_0)/A_0$",
    )
    finite = rel[np.isfinite(rel)]
    span = max(2 * tolerance, float(np.abs(finite).max()) * 1.15 if finite.size else 0.0)
    axa.set_ylim(-span, span)
    fmt = ScalarFormatter(useMathText=True)
    fmt.set_powerlimits((-2, 2))
    axa.yaxis.set_major_formatter(fmt)
    axa.set_xlabel("time t")
    axa.set_ylabel(r"relative area change $(A(t) - A_0)/A_0$")
    axa.set_title("area of the patch")
    sec = axa.secondary_yaxis("right", functions=(lambda r: A0 * (1 + r), lambda a: a / A0 - 1))
    sec.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    sec.set_ylabel("area A(t)")
    axa.legend(loc="upper left", fontsize="small")
    axa.grid(True, alpha=0.3)
    fig.suptitle(title)
    return fig


def vector_field_figure(
    field_fn: Callable,
    bounds: Any,
    *,
    divergence_fn: Callable | None = None,
    loop: Any = None,
    n: int = 25,
    n_div: int = 120,
    labels: tuple[str, str] = ("q", "p"),
    title: str = "Vector field",
) -> Figure:
    """A 2-D vector field as arrows over its divergence (diverging colour map centred at 0).

    Args:
        field_fn: ``(..., 2) -> (..., 2)`` (torch or numpy), e.g. ``model.vector_field``.
        bounds: ``((q_min, q_max), (p_min, p_max))``.
        divergence_fn: optional ``(..., 2) -> (...)``, e.g.
            ``lambda z: symplearn.divergence(model.vector_field, z)``; drawn on an
            ``n_div x n_div`` grid with a colour bar "div X" symmetric about 0 (at least
            ``±1e-12``, so a field with zero divergence shows as white, not as round-off noise).
        loop: optional closed test curve ``(M, 2)`` (e.g. for a circulation / flux check),
            drawn on top and closed if its ends differ.
        n: arrows per axis.
        n_div: grid points per axis of the divergence map.
        labels: axis labels.
        title: figure title.

    Returns:
        The figure: axes 0 the field (a ``Quiver`` with the field on the ``n x n`` grid), plus
        the colour-bar axes when ``divergence_fn`` is given.

    Raises:
        SymplearnError: bad bounds, ``n < 2``, a function returning the wrong shape, or a loop
            that is not ``(M >= 2, 2)``.
    """
    bounds = _check_bounds(bounds)
    for name, v in (("n", n), ("n_div", n_div)):
        if not (isinstance(v, int) and v >= 2):
            raise SymplearnError(f"{name} must be an integer >= 2, got {v!r}")
    loop_arr = None
    if loop is not None:
        loop_arr = _as_array(loop, "loop")
        if loop_arr.ndim != 2 or loop_arr.shape[1] != 2 or loop_arr.shape[0] < 2:
            raise SymplearnError(f"loop has shape {loop_arr.shape}; expected (M, 2) with M >= 2")
        if not np.allclose(loop_arr[0], loop_arr[-1]):
            loop_arr = np.concatenate([loop_arr, loop_arr[:1]])
    X, Y, Z = _grid(bounds, n)
    F = _call_on_states(field_fn, Z, "field_fn", Z.shape)
    fig, axes = _new_figure(figsize=(6.8, 5.4))
    ax = axes[0, 0]
    handles = []
    if divergence_fn is not None:
        Xd, Yd, Zd = _grid(bounds, n_div)
        D = _call_on_states(divergence_fn, Zd, "divergence_fn", Xd.shape)
        finite = D[np.isfinite(D)]
        vmax = max(float(np.abs(finite).max()) if finite.size else 0.0, 1e-12)
        mesh = ax.pcolormesh(
            Xd, Yd, D, cmap="RdBu_r", norm=Normalize(-vmax, vmax), shading="nearest", zorder=0
        )
        cb = fig.colorbar(mesh, ax=ax)
        cb.set_label("div X")
    ax.quiver(X, Y, F[..., 0], F[..., 1], color="0.15", angles="xy", pivot="mid", width=0.003, zorder=2)
    handles.append(Line2D([], [], color="0.15", marker=r"$\rightarrow$", ls="", ms=10, label="field X(q, p)"))
    if loop_arr is not None:
        (ln,) = ax.plot(
            loop_arr[:, 0],
            loop_arr[:, 1],
            color="gold",
            lw=2.4,
            zorder=3,
            label="test loop",
            path_effects=[patheffects.Stroke(linewidth=4.2, foreground="black"), patheffects.Normal()],
        )
        handles.append(ln)
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.9)
    return fig


def poincare_figure(
    points: Any,
    *,
    labels: tuple[str, str] = ("y", "p_y"),
    title: str = "Poincaré section",
    size: float = 1.5,
) -> Figure:
    """A Poincaré section as a scatter of small dots.

    Args:
        points: ``(N, 2)`` section points, or label -> ``(N_i, 2)`` to overlay several
            (e.g. truth and a model; a legend is added).
        labels: axis labels (the two section coordinates).
        title: figure title.
        size: marker area in points^2.

    Returns:
        The figure (one axes, one scatter collection per series).

    Raises:
        SymplearnError: points are not ``(N, 2)``.
    """
    series = (
        _as_series(points, "points", "{'truth': pts}") if isinstance(points, Mapping) else {"section": points}
    )
    arrays = {}
    for label, pts in series.items():
        arr = _as_array(pts, "points" if len(series) == 1 else f"points[{label!r}]")
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise SymplearnError(f"points has shape {arr.shape}; expected (N, 2) section points")
        arrays[label] = arr
    fig, axes = _new_figure(figsize=(6.0, 5.4))
    ax = axes[0, 0]
    styles = _styles(list(arrays)) if isinstance(points, Mapping) else [{"color": "black"}]
    for (label, arr), style in zip(arrays.items(), styles):
        ax.scatter(
            arr[:, 0],
            arr[:, 1],
            s=size,
            color=style["color"],
            marker=".",
            lw=0,
            alpha=0.8,
            label=f"{label} ({len(arr)} points)",
            rasterized=len(arr) > 5000,
        )
    ax.set_xlabel(f"${labels[0]}$" if "_" in labels[0] else labels[0])
    ax.set_ylabel(f"${labels[1]}$" if "_" in labels[1] else labels[1])
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small", markerscale=8, framealpha=0.9)
    return fig


def lyapunov_figure(
    times: Any,
    running: Any,
    *,
    title: str = "Largest Lyapunov exponent",
    reference: float | None = None,
) -> Figure:
    """Running estimates of the largest Lyapunov exponent against time (log time axis).

    Args:
        times: ``(K,)`` positive times of the estimates.
        running: ``(K,)``, ``(K, B)`` (B initial conditions: their mean is drawn with a shaded
            min..max band), or label -> ``(K,)`` / ``(K, B)``.
        title: figure title.
        reference: a known value of the exponent, drawn as a dotted line.

    Returns:
        The figure (one axes).

    Raises:
        SymplearnError: shapes disagree with ``times`` or a time is not positive.
    """
    times = _as_time(times, "times")
    if not (times > 0).all():
        raise SymplearnError(
            f"times must be > 0 for a logarithmic time axis, got minimum {times.min():.3g}; drop "
            f"t = 0 (the running estimate is undefined there)"
        )
    series = (
        _as_series(running, "running", "{'hnn': lam}")
        if isinstance(running, Mapping)
        else {"estimate": running}
    )
    data = _time_series(times, series, "running")
    fig, axes = _new_figure()
    ax = axes[0, 0]
    styles = _styles(list(data)) if isinstance(running, Mapping) else [{"color": "black", "ls": "-"}]
    for (label, lam), style in zip(data.items(), styles):
        B = lam.shape[1]
        if B == 1:
            ax.plot(times, lam[:, 0], lw=1.5, label=label, **style)
        else:
            with np.errstate(invalid="ignore"):
                ax.plot(
                    times, np.nanmean(lam, 1), lw=1.5, label=f"{label} (mean of {B}; band: min..max)", **style
                )
                ax.fill_between(
                    times, np.nanmin(lam, 1), np.nanmax(lam, 1), color=style["color"], alpha=0.18, lw=0
                )
    ax.axhline(0.0, color="0.5", lw=0.8, ls="-", zorder=0)
    if reference is not None:
        ax.axhline(float(reference), color="0.3", ls=":", lw=1.2, label=f"reference {reference:.4g}")
    ax.set_xscale("log")
    ax.set_xlabel("time t")
    ax.set_ylabel(r"running estimate of $\lambda_{\max}$  (1 / time)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="best", fontsize="small")
    return fig


def _history_get(history: Any, key: str):
    if isinstance(history, Mapping):
        return history.get(key)
    return getattr(history, key, None)


def loss_figure(
    history: Any,
    *,
    title: str = "Training loss",
    ylabel: str = "loss (mean squared error)",
    floor: float = ERROR_FLOOR,
) -> Figure:
    """Training (and test) loss against optimisation step, log loss axis.

    Args:
        history: a dict (or an object with attributes) with ``'step'`` ``(S,)``, ``'train'``
            ``(S,)`` and optionally ``'test'``: ``(S,)`` aligned with ``step`` (NaN where not
            evaluated: those steps are skipped), or any length with its own ``'test_step'``.
        title: figure title.
        ylabel: loss axis label.
        floor: losses below this are drawn at it (and the axis label says so).

    Returns:
        The figure (one axes).

    Raises:
        SymplearnError: a key is missing or lengths disagree.
    """
    step, train = _history_get(history, "step"), _history_get(history, "train")
    if step is None or train is None:
        raise SymplearnError(
            "history must have 'step' and 'train' (and optionally 'test'), e.g. "
            "{'step': [0, 1, ...], 'train': [0.5, 0.4, ...]}"
        )
    step = _as_time(step, "history['step']")
    train = _as_array(train, "history['train']")
    if train.shape != step.shape:
        raise SymplearnError(
            f"history['train'] has shape {train.shape} but history['step'] has shape "
            f"{step.shape}; expected one loss per step"
        )
    test = _history_get(history, "test")
    test_step = _history_get(history, "test_step")
    fig, axes = _new_figure()
    ax = axes[0, 0]
    y, floored = _floor(train, floor)
    ax.plot(step, y, color="tab:blue", lw=1.2, label="train")
    if test is not None:
        test = _as_array(test, "history['test']")
        ts = step if test_step is None else _as_time(test_step, "history['test_step']")
        if test.shape != ts.shape:
            raise SymplearnError(
                f"history['test'] has shape {test.shape} but "
                f"{'history[step]' if test_step is None else 'history[test_step]'} has shape "
                f"{ts.shape}; give 'test' aligned with 'step' (NaN where not evaluated) or a "
                f"'test_step'"
            )
        keep = np.isfinite(test)
        yt, f2 = _floor(test[keep], floor)
        floored |= f2
        ax.plot(
            ts[keep],
            yt,
            color="tab:orange",
            lw=1.2,
            marker="o" if keep.sum() < 40 else None,
            ms=3,
            label="test",
        )
    ax.set_yscale("log")
    ax.set_xlabel("optimisation step")
    ax.set_ylabel(ylabel + (f"\n(values below {floor:.0e} drawn at {floor:.0e})" if floored else ""))
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def trajectory_figure(
    t: Any,
    z_model: Any,
    z_true: Any = None,
    labels: Sequence[str] | None = None,
    *,
    model_label: str = "model",
    title: str = "Trajectory",
) -> Figure:
    """Coordinates of a model's trajectory against the truth: one panel per coordinate.

    Args:
        t: times ``(T,)``.
        z_model: ``(T, 2n)`` states (positions first), or label -> ``(T, 2n)`` for several
            models.
        z_true: optional ``(T, 2n)`` reference, drawn black and dashed.
        labels: the 2n coordinate names; default ``("q", "p")`` for n = 1, else
            ``q1..qn, p1..pn``.
        model_label: legend label of ``z_model`` when it is a single array.
        title: figure title.

    Returns:
        The figure: an ``n x 2`` grid of axes, row i = degree of freedom i, columns q_i(t) and
        p_i(t).

    Raises:
        SymplearnError: a trajectory is not ``(T, 2n)`` with ``T = len(t)``, or shapes differ.
    """
    t = _as_time(t)
    models = (
        _as_series(z_model, "z_model", "{'hnn': z}")
        if isinstance(z_model, Mapping)
        else {model_label: z_model}
    )
    what = (lambda lab: f"z_model[{lab!r}]") if isinstance(z_model, Mapping) else (lambda lab: "z_model")
    arrays = {label: _as_array(z, what(label)) for label, z in models.items()}
    checks = [(what(label), a) for label, a in arrays.items()]
    truth = None
    if z_true is not None:
        truth = _as_array(z_true, "z_true")
        checks.append(("z_true", truth))
    first = checks[0][1]
    dim = first.shape[-1] if first.ndim == 2 else -1
    for name, a in checks:
        if a.ndim != 2 or a.shape[0] != len(t) or a.shape[1] % 2 or a.shape[1] != dim:
            raise SymplearnError(
                f"{name} has shape {a.shape}; expected (T, 2n) = "
                f"({len(t)}, {dim if dim > 0 else '2n'}) with T = len(t), the same n for every "
                f"trajectory (pick one trajectory of a batch with z[:, k])"
            )
    n = dim // 2
    if labels is None:
        labels = (
            ("q", "p")
            if n == 1
            else tuple(f"q{i + 1}" for i in range(n)) + tuple(f"p{i + 1}" for i in range(n))
        )
    if len(labels) != dim:
        raise SymplearnError(f"labels must name the {dim} coordinates, got {len(labels)}: {labels!r}")
    fig, axes = _new_figure(n, 2, figsize=(11.0, 2.9 * n + 0.8), sharex=True)
    styles = _styles(list(arrays))
    for i in range(n):
        for j, col in enumerate((i, n + i)):
            ax = axes[i, j]
            if truth is not None:
                ax.plot(t, truth[:, col], lw=1.6, label="truth", **_TRUTH, zorder=3)
            for (label, a), style in zip(arrays.items(), styles):
                ax.plot(t, a[:, col], lw=1.3, label=label, **style)
            ax.set_xlabel("time t")
            ax.set_ylabel(labels[col])
            ax.set_title(f"{labels[col]}(t)")
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_tick_params(labelbottom=True)
    axes[0, 0].legend(loc="best", fontsize="small")
    fig.suptitle(title)
    return fig


def loss_history_figure(history: Mapping[str, Sequence], *, title: str | None = None) -> Figure:
    """The loss curve of a training run: train and test loss against the step, log-scale
    (drawn by :func:`loss_figure`); what a model folder's ``loss.png`` shows.

    Args:
        history: ``{"step": [...], "train_loss": [...], "test_loss": [...]}`` (test entries may
            be ``None`` or absent), as in ``FitResult.history``.
        title: figure title (default "Training loss").

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    test = [math.nan if v is None else float(v) for v in history.get("test_loss", [])]
    curves: dict[str, list] = {"step": list(history["step"]), "train": list(history["train_loss"])}
    if any(v == v for v in test):
        curves["test"] = test
    return loss_figure(curves, title=title or "Training loss", ylabel="loss (mean squared error, data units)")


def fit_loss_figure(result: Any) -> Figure | None:
    """:func:`loss_history_figure` of a :class:`~symplearn.training.FitResult` (titled with its
    loss), or ``None`` when its history has no steps: the ``loss_figure`` of
    :func:`symplearn.modelio.save_model`."""
    history = getattr(result, "history", None)
    if not history or not history.get("step"):
        return None
    loss_name = getattr(result, "loss", None)
    return loss_history_figure(history, title=f"Training loss ({loss_name})" if loss_name else None)
