"""Noether made measurable: an energy blind to a symmetry generalises across it and conserves
its charge.

Movement III of the specification (``001_*.txt``): "impose a symmetry on the learned energy and
Noether hands back the conserved quantity exactly", and "conservation was generalization
wearing a physicist's hat": an energy blind to absolute position, trained near the origin, is
correct everywhere. Two tests of the same claim:

* translations: two unit masses on a line joined by a unit spring, no wall
  (:class:`~symplearn.systems.TwoBodySpring`). A plain HNN on ``(q1, q2, p1, p2)`` and a
  translation-invariant HNN (same width, depth, data, steps) trained on states whose centre of
  mass lies in [-1, 1], tested on held-out states shifted by 0, 10, 100, 1000;
* rotations: the planar Kepler problem, a plain HNN and a rotation-invariant HNN trained on
  states in a sector of polar angles, tested on held-out states of that sector rotated by
  0, 90, 180, 270 degrees.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .._errors import ConvergenceError, SymplearnError
from ..diagnostics.symmetry import angular_momentum, rotation, total_momentum, translation
from ..integrators import integrate
from ..integrators.discretize import discretize
from ..report import Column, Report, write_run
from ..systems import Kepler, TwoBodySpring
from ._common import log
from ._flows import train_models

DESCRIPTION = (
    "Noether made measurable: symmetric HNNs generalise across shifts/rotations and conserve the charge"
)


@dataclass
class Config:
    """Settings of the Noether experiment.

    Attributes:
        quick: a reduced run (< 60 s) for the test suite.
        seed: one seed for data, initial weights, minibatches and test states.
        width, depth, activation: every network; both models of a comparison get the same.
        steps, batch_size, lr: training (Adam, cosine, derivative loss, float64), the same budget
            for both models.
        n_train: training states of the two-body spring (energies 0.1..1, centre of mass in
            [-1, 1], total momentum in [-0.5, 0.5]), 20 % held out.
        n_test: held-out test states, shifted by each of ``shifts``.
        shifts: common shifts of both positions at test time.
        periods, steps_per_period: rollout length (periods of the separation, 2 pi / sqrt(2)) and
            resolution, implicit midpoint for both models.
        kepler_n_train, kepler_sector: Kepler training states (bound orbits, uniform in time)
            kept only where the polar angle of q is within +-sector/2 of 0 (radians).
        kepler_n_test, angles: held-out Kepler states in the sector, rotated by each angle (rad).
        kepler_orbits, kepler_steps_per_orbit: the Kepler rollouts (implicit midpoint).
        quiet: no progress lines.
    """

    quick: bool = False
    seed: int = 0
    width: int = 64
    depth: int = 2
    activation: str = "tanh"
    steps: int = 3000
    batch_size: int = 256
    lr: float = 3e-3
    n_train: int = 2048
    n_test: int = 16
    shifts: tuple[float, ...] = (0.0, 10.0, 100.0, 1000.0)
    periods: int = 100
    steps_per_period: int = 40
    kepler_n_train: int = 2048
    kepler_sector: float = math.pi / 3
    kepler_n_test: int = 16
    angles: tuple[float, ...] = (0.0, math.pi / 2, math.pi, 3 * math.pi / 2)
    kepler_orbits: int = 10
    kepler_steps_per_orbit: int = 80
    quiet: bool = False

    def resolved(self) -> Config:
        """The configuration actually run (quick mode applied), validated."""
        cfg = self
        if self.quick:
            cfg = replace(
                cfg,
                width=min(cfg.width, 32),
                steps=min(cfg.steps, 300),
                n_train=min(cfg.n_train, 512),
                n_test=min(cfg.n_test, 8),
                periods=min(cfg.periods, 5),
                steps_per_period=min(cfg.steps_per_period, 30),
                kepler_n_train=min(cfg.kepler_n_train, 512),
                kepler_n_test=min(cfg.kepler_n_test, 8),
                kepler_orbits=min(cfg.kepler_orbits, 1),
                kepler_steps_per_orbit=min(cfg.kepler_steps_per_orbit, 64),
            )
        for name in (
            "width",
            "depth",
            "steps",
            "batch_size",
            "n_train",
            "n_test",
            "periods",
            "steps_per_period",
            "kepler_n_train",
            "kepler_n_test",
            "kepler_orbits",
            "kepler_steps_per_orbit",
        ):
            v = getattr(cfg, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SymplearnError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("shifts", "angles"):
            vals = tuple(float(x) for x in getattr(cfg, name))
            if not vals or vals[0] != 0.0 or not all(math.isfinite(x) for x in vals):
                raise SymplearnError(
                    f"{name} must be finite numbers starting with 0 (the reference), "
                    f"got {getattr(cfg, name)!r}"
                )
        if not 0 < cfg.kepler_sector <= 2 * math.pi:
            raise SymplearnError(f"kepler_sector must be in (0, 2 pi], got {cfg.kepler_sector!r}")
        return cfg


# -- measurements shared by both symmetries ----------------------------------------------------------
def _field_error(model: Any, system: Any, z: Tensor) -> float:
    """Relative RMS field error ``sqrt(sum |f_theta - f|^2 / sum |f|^2)`` over states ``z``."""
    with torch.no_grad():
        f, g = model.vector_field(0.0, z), system.vector_field(0.0, z)
    return float(((f - g) ** 2).sum().sqrt() / (g**2).sum().sqrt())


def _rollout(model: Any, system: Any, z0: Tensor, dt: float, n_steps: int, save_every: int, charge: Any):
    """Implicit-midpoint rollout of ``model`` from ``z0 (B, 2n)`` against the exact solution:
    the mean over states of the largest state error over time, and the largest charge change."""
    flow = discretize(model, "implicit-midpoint", dt)
    try:
        with torch.inference_mode():
            zs = integrate(flow, z0, n_steps, save_every=save_every, check_finite=False).z
    except ConvergenceError:
        return math.inf, math.inf
    t = dt * save_every * torch.arange(zs.shape[0], dtype=z0.dtype)
    if n_steps % save_every:
        t[-1] = dt * n_steps
    exact = system.exact_solution(z0, t)
    err = (zs - exact).norm(dim=-1)  # (T, B)
    if not bool(torch.isfinite(err).all()):
        return math.inf, math.inf
    Q = charge(zs)
    return float(err.amax(0).mean()), float((Q - Q[0]).abs().max())


def _spread(values: list[float]) -> float:
    """``max_i |v_i - v_0| / |v_0|``: how far each error is from the reference (shift/angle 0)."""
    v0 = values[0]
    if not math.isfinite(v0) or v0 == 0:
        return math.nan
    return max(abs(v - v0) / abs(v0) if math.isfinite(v) else math.inf for v in values)


def _compare(
    kinds: list[str],
    models: dict[str, Any],
    fits: dict[str, Any],
    system: Any,
    z_test: Tensor,
    actions: list[Any],
    dt: float,
    n_steps: int,
    save_every: int,
    charge: Any,
    suffix: str,
) -> dict[str, dict[str, Any]]:
    rows = {}
    for kind in kinds:
        model = models[kind]
        field, roll, drift, wall = [], [], [], 0.0
        for g in actions:
            z = g.act(z_test)
            field.append(_field_error(model, system, z))
            t0 = time.perf_counter()
            e, d = _rollout(model, system, z, dt, n_steps, save_every, charge)
            wall += time.perf_counter() - t0
            roll.append(e)
            drift.append(d)
        rows[kind] = {
            f"field_error_by_{suffix}": field,
            f"rollout_error_by_{suffix}": roll,
            f"momentum_drift_by_{suffix}": drift,
            "max_momentum_drift": max(drift),
            "field_error_spread": _spread(field),
            "rollout_error_spread": _spread(roll),
            "train_loss": fits[kind].train_loss,
            "test_loss": fits[kind].test_loss,
            "train_time_s": fits[kind].wall_time,
            "rollout_time_s": wall,
            "n_parameters": sum(p.numel() for p in model.parameters()),
        }
    return rows


# -- the two tests ---------------------------------------------------------------------------------------
def _translations(cfg: Config) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    system = TwoBodySpring()
    z = system.sample(cfg.n_train, seed=cfg.seed)
    sizes = {"width": cfg.width, "depth": cfg.depth, "activation": cfg.activation}
    kinds = ["hnn", "hnn-translation"]
    models, fits = train_models(
        kinds,
        z,
        system.vector_field(0.0, z),
        seed=cfg.seed,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        quiet=cfg.quiet,
        **sizes,
    )
    z_test = system.sample(cfg.n_test, seed=cfg.seed + 1000)
    dt = system.period / cfg.steps_per_period
    n_steps = cfg.periods * cfg.steps_per_period
    log(cfg.quiet, f"translations: rollouts of {cfg.periods} periods at shifts {list(cfg.shifts)}")
    rows = _compare(
        kinds,
        models,
        fits,
        system,
        z_test,
        [translation(s) for s in cfg.shifts],
        dt,
        n_steps,
        cfg.steps_per_period,
        total_momentum,
        "shift",
    )
    return rows, {"dt": dt, "period": system.period, "n_steps": n_steps}


def _sector_states(system: Kepler, n: int, sector: float, seed: int) -> Tensor:
    """``n`` states on bound orbits (uniform in time) with polar angle of q in ``+-sector/2``."""
    out, got, s = [], 0, seed
    while got < n:
        z = system.sample(max(4 * n, 256), seed=s)
        theta = torch.atan2(z[:, 1], z[:, 0])
        z = z[theta.abs() <= 0.5 * sector]
        out.append(z)
        got += z.shape[0]
        s += 7919
    return torch.cat(out)[:n]


def _rotations(cfg: Config) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    system = Kepler()
    z = _sector_states(system, cfg.kepler_n_train, cfg.kepler_sector, cfg.seed)
    sizes = {"width": cfg.width, "depth": cfg.depth, "activation": cfg.activation}
    kinds = ["hnn", "hnn-rotation"]
    models, fits = train_models(
        kinds,
        z,
        system.vector_field(0.0, z),
        seed=cfg.seed,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        quiet=cfg.quiet,
        **sizes,
    )
    z_test = _sector_states(system, cfg.kepler_n_test, cfg.kepler_sector, cfg.seed + 1000)
    # periods differ between test orbits: dt is a fraction of the shortest one
    E = system.hamiltonian(z_test)
    period_min = float((2 * math.pi * (-system.k / (2 * E)) ** 1.5 / math.sqrt(system.k)).min())
    period_mean = float((2 * math.pi * (-system.k / (2 * E)) ** 1.5 / math.sqrt(system.k)).mean())
    dt = period_min / cfg.kepler_steps_per_orbit
    n_steps = max(1, round(cfg.kepler_orbits * period_mean / dt))
    log(
        cfg.quiet,
        f"rotations: rollouts of {cfg.kepler_orbits} orbits at angles {[round(a, 3) for a in cfg.angles]}",
    )
    rows = _compare(
        kinds,
        models,
        fits,
        system,
        z_test,
        [rotation(a) for a in cfg.angles],
        dt,
        n_steps,
        max(1, cfg.kepler_steps_per_orbit // 8),
        angular_momentum,
        "angle",
    )
    return rows, {"dt": dt, "n_steps": n_steps, "mean_period": period_mean}


# -- the figure -----------------------------------------------------------------------------------------
STYLE = {
    "hnn": {"color": "tab:blue", "marker": "o", "ls": "-"},
    "hnn-translation": {"color": "tab:green", "marker": "s", "ls": "-"},
    "hnn-rotation": {"color": "tab:green", "marker": "s", "ls": "-"},
}


def _figure(cfg: Config, trans: dict[str, Any], rot: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(12.5, 8.4))
    axes = fig.subplots(2, 2)
    x_shift = np.array(cfg.shifts, dtype=float)
    x_angle = np.degrees(np.array(cfg.angles, dtype=float))
    panels = (
        (
            axes[0, 0],
            trans,
            "field_error_by_shift",
            x_shift,
            "relative RMS field error",
            "two-body spring: field",
        ),
        (
            axes[0, 1],
            trans,
            "rollout_error_by_shift",
            x_shift,
            f"mean max state error over {cfg.periods} periods",
            "two-body spring: rollout (implicit midpoint)",
        ),
        (axes[1, 0], rot, "field_error_by_angle", x_angle, "relative RMS field error", "Kepler: field"),
        (
            axes[1, 1],
            rot,
            "rollout_error_by_angle",
            x_angle,
            f"mean max state error over {cfg.kepler_orbits} orbits",
            "Kepler: rollout (implicit midpoint)",
        ),
    )
    for ax, rows, key, x, ylabel, title in panels:
        for kind, row in rows.items():
            y = np.array([v if math.isfinite(v) else np.nan for v in row[key]])
            ax.plot(x, y, label=kind, lw=1.4, ms=6, **STYLE.get(kind, {}))
        ax.set_yscale("log")
        ax.set_ylabel(ylabel + " (state units)" if "state" in ylabel else ylabel + " (dimensionless)")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    for ax in axes[0]:
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(-0.3, 2.0 * max(cfg.shifts[-1], 1.0))
        ax.set_xticks(x_shift)
        ax.set_xticklabels([f"{s:g}" for s in cfg.shifts])
        ax.set_xlabel("common shift of both positions (length units; symlog axis)")
    for ax in axes[1]:
        ax.set_xlabel("rotation of the test states (degrees)")
        ax.set_xticks(x_angle)
    fig.suptitle(
        "Trained near the origin / in one sector, tested after a shift / rotation "
        f"(training: |centre of mass| <= 1; Kepler sector ±{math.degrees(cfg.kepler_sector) / 2:.0f}°)"
    )
    fig.tight_layout()
    return fig


# -- run ------------------------------------------------------------------------------------------------
def run(config: Config, out: str | Path) -> Report:
    """Run the experiment and write its folder ``out``; returns the written report."""
    start = time.perf_counter()
    cfg = config.resolved()
    torch.set_num_threads(1)
    trans, trans_info = _translations(cfg)
    rot, rot_info = _rotations(cfg)
    fmt = ".3e"
    columns = [Column("n_parameters", "parameters", "d")]
    columns += [
        Column(f"field_error_by_shift_{i}", f"field err. shift {s:g}", fmt) for i, s in enumerate(cfg.shifts)
    ]
    columns += [
        Column(f"rollout_error_by_shift_{i}", f"rollout err. shift {s:g}", fmt)
        for i, s in enumerate(cfg.shifts)
    ]
    columns += [
        Column("field_error_spread", "field spread", ".1e"),
        Column("rollout_error_spread", "rollout spread", ".1e"),
        Column("max_momentum_drift", "max abs ΔP", ".1e"),
    ]
    # metrics.json "rows": {"hnn": {...}, "hnn-translation": {...}} (lists by shift, and flattened
    # per-shift entries for the table); the Kepler rows are under "rotation"
    table_rows = {}
    for k, v in trans.items():
        flat = dict(v)
        for i in range(len(cfg.shifts)):
            flat[f"field_error_by_shift_{i}"] = v["field_error_by_shift"][i]
            flat[f"rollout_error_by_shift_{i}"] = v["rollout_error_by_shift"][i]
        table_rows[k] = flat
    report = Report(
        title="Noether made measurable: symmetric energies across shifts and rotations"
        + (" (quick)" if cfg.quick else ""),
        rows=table_rows,
        columns=columns,
        figures={"noether_shift.png": _figure(cfg, trans, rot)},
        sections=_sections(cfg, trans, rot, trans_info, rot_info),
        metrics={
            "quick": cfg.quick,
            "shifts": list(cfg.shifts),
            "angles": list(cfg.angles),
            "translation": trans_info,
            "rotation": {"info": rot_info, "rows": rot},
        },
    )
    write_run(out, cfg, report, wall_time_s=time.perf_counter() - start)
    return report


def _sections(
    cfg: Config, trans: dict[str, Any], rot: dict[str, Any], ti: dict[str, Any], ri: dict[str, Any]
) -> list[str]:
    h, t = trans["hnn"], trans["hnn-translation"]
    kh, kr = rot["hnn"], rot["hnn-rotation"]

    def errs(row, key):
        return ", ".join(f"{v:.3g}" for v in row[key])

    rot_lines = [
        "| | parameters | "
        + " | ".join(f"field err. {math.degrees(a):.0f}°" for a in cfg.angles)
        + " | "
        + " | ".join(f"rollout err. {math.degrees(a):.0f}°" for a in cfg.angles)
        + " | field spread | rollout spread | max abs ΔL |",
        "|---|" + "---:|" * (2 * len(cfg.angles) + 4),
    ]
    for k, r in rot.items():
        rot_lines.append(
            f"| `kepler/{k}` | {r['n_parameters']} | "
            + " | ".join(f"{v:.3e}" for v in r["field_error_by_angle"])
            + " | "
            + " | ".join(f"{v:.3e}" for v in r["rollout_error_by_angle"])
            + f" | {r['field_error_spread']:.1e} | {r['rollout_error_spread']:.1e}"
            + f" | {r['max_momentum_drift']:.1e} |"
        )
    return [
        f"**Translations (two-body spring, H = (p1² + p2²)/2 + (q1 - q2)²/2).** Both HNNs {cfg.depth} x "
        f"{cfg.width} {cfg.activation}, {cfg.steps} Adam steps on the same {cfg.n_train} states (centre of "
        f"mass in [-1, 1]) with exact derivatives. {cfg.n_test} held-out states shifted by "
        f"{list(cfg.shifts)}; "
        f"field error = relative RMS error of J grad H_θ; rollout error = mean over states of the largest "
        f"distance to the exact trajectory over {cfg.periods} periods (implicit midpoint, dt = period/"
        f"{cfg.steps_per_period}); spread = max over shifts of |error - error at 0| / error at 0; "
        "|ΔP| = largest change of p1 + p2 along any rollout.",
        f"Plain HNN, field error by shift: {errs(h, 'field_error_by_shift')}; rollout: "
        f"{errs(h, 'rollout_error_by_shift')}; momentum drift up to {h['max_momentum_drift']:.2e}. "
        f"Translation-invariant HNN: field {errs(t, 'field_error_by_shift')} (spread "
        f"{t['field_error_spread']:.1e}); rollout {errs(t, 'rollout_error_by_shift')} (spread "
        f"{t['rollout_error_spread']:.1e}); momentum drift {t['max_momentum_drift']:.1e}.",
        "**Weight sharing for physics, read from the numbers.** The translation-invariant energy never saw "
        f"a state with its centre of mass beyond 1, yet at a shift of {cfg.shifts[-1]:g} its field and "
        f"rollout errors are its shift-0 errors (relative spread {t['field_error_spread']:.1e} and "
        f"{t['rollout_error_spread']:.1e}: round-off of subtracting two large positions), exactly as a "
        "convolution's filter learned in one corner of an image applies in every corner. The plain HNN, "
        "trained on the same data with the same budget, has field error "
        f"{h['field_error_by_shift'][0]:.3g} at shift 0 and {h['field_error_by_shift'][-1]:.3g} at shift "
        f"{cfg.shifts[-1]:g}: it learned the physics only where it was shown it. The same constraint "
        "is cashed twice: Noether turns the "
        f"invariance into a conserved total momentum (changed by at most {t['max_momentum_drift']:.1e}, "
        f"round-off, against {h['max_momentum_drift']:.2e} for the plain HNN).",
        f"**Rotations (Kepler, trained in a sector of ±{math.degrees(cfg.kepler_sector) / 2:.0f}° of polar "
        f"angle).** Held-out states of the sector rotated by {[round(math.degrees(a)) for a in cfg.angles]} "
        f"degrees; rollouts of {cfg.kepler_orbits} orbits (implicit midpoint, dt = {ri['dt']:.4f}); "
        "ΔL = largest change of the angular momentum along any rollout.",
        "\n".join(rot_lines),
        f"The rotation-invariant energy's errors are the same at every angle (spread "
        f"{kr['field_error_spread']:.1e} field, {kr['rollout_error_spread']:.1e} rollout) and it keeps L "
        f"to {kr['max_momentum_drift']:.1e}; the plain HNN's field error goes from "
        f"{kh['field_error_by_angle'][0]:.3g} in its sector to {max(kh['field_error_by_angle'][1:]):.3g} "
        f"outside it, and its L changes by up to {kh['max_momentum_drift']:.2e}.",
    ]
