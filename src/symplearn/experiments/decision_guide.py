"""The decision guide of the specification ("three architectures and when to pick each"),
measured: every family on the spring, the pendulum, Kepler and the double pendulum.

One protocol for the three integrable systems: true trajectories (Gauss-Legendre 6) from states
across an energy band, each model kind trained by :func:`~symplearn.fit` on the same data, seed,
steps and learning rate, then rolled out from held-out initial states over a long horizon with
the integrator that suits it (its ``default_integrator``: RK4 where there is no canonical
structure to keep, implicit midpoint for a learned H, a SympNet's own step). Measured per row:

* the largest relative error of the **true** energy along the rollout and its verdict (bounded
  or drifting),
* a long-horizon statistic: the 1-Wasserstein distance between the model's and the truth's
  distributions of a coordinate over the whole horizon (``q`` for the spring and the pendulum, the
  radius ``|q|`` for Kepler, which precession leaves alone), in units of the truth's spread,
* the symplecticity defect ``max ||A^T J A - J||`` of one step of the rollout map (canonical
  models only: an LNN steps ``(q, q_dot)``),
* training time and rollout cost (microseconds per step of the batch).

The double pendulum rows come from the ``double-pendulum`` experiment (its own protocol: the
Lyapunov exponent and ``W1(q2)`` against the truth's own floor), read from a finished run folder
(``double_pendulum_run``) or run here.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from .. import diagnostics as dg  # noqa: E402
from .._errors import SymplearnError  # noqa: E402
from ..datasets import generate_dataset  # noqa: E402
from ..dynamics import FlowMap  # noqa: E402
from ..integrators import integrate, reference_trajectory, trace_flow  # noqa: E402
from ..integrators.discretize import discretize  # noqa: E402
from ..models import build_model  # noqa: E402
from ..report import Column, Report, write_run  # noqa: E402
from ..systems import get_system  # noqa: E402
from ..training import fit, seed_everything  # noqa: E402
from ._common import held_out_states, is_lagrangian, log, to_canonical_states, to_model_states  # noqa: E402

DESCRIPTION = (
    "decision guide: each family (MLP, HNN, LNN, SympNet) on spring, pendulum, Kepler, double pendulum"
)

#: model kind -> family
FAMILIES = {
    "mlp": "baseline",
    "hnn": "HNN",
    "lnn": "LNN",
    "lnn-structured": "LNN",
    "sympnet-g": "SympNet",
    "sympnet-g-free": "SympNet",
    "sympnet-la": "SympNet",
    "sympnet-p": "SympNet",
}


@dataclass(frozen=True)
class Protocol:
    """One integrable system of the guide: its data, horizon and statistic.

    Attributes:
        system, params: registry name and parameters.
        n_traj, data_dt, data_steps, energy_range: training data (20 % of trajectories held out).
        horizon: rollout time.
        statistic: ``"q"`` (every coordinate's marginal, the worst reported) or ``"radius"``.
    """

    system: str
    params: dict[str, float]
    n_traj: int
    data_dt: float
    data_steps: int
    energy_range: tuple[float, float]
    horizon: float
    statistic: str


PROTOCOLS: dict[str, Protocol] = {
    "spring": Protocol("oscillator", {"omega": 1.0}, 32, 0.1, 60, (0.1, 1.0), 1000.0, "q"),
    "pendulum": Protocol("pendulum", {"g": 1.0, "L": 1.0}, 64, 0.1, 40, (0.1, 1.5), 500.0, "q"),
    "kepler": Protocol("kepler", {"k": 1.0}, 64, 0.05, 126, (-0.7, -0.3), 300.0, "radius"),
}


@dataclass
class Config:
    """Settings of the decision guide.

    Attributes:
        quick: a reduced run (< 60 s) for the test suite: spring and pendulum only, small nets,
            short horizons, no double pendulum.
        seed: one seed for data, weights, minibatches.
        systems: which of ``spring``, ``pendulum``, ``kepler`` to run with the shared protocol.
        models: the model kinds trained on each.
        width, depth: MLP / HNN / LNN networks; ``sympnet_layers``, ``sympnet_width``: G-SympNet;
            ``psympnet_layers``, ``psympnet_width``: P-SympNet.
        steps, batch_size, lr: training (Adam, cosine schedule, float64, the same for every kind).
        n_rollout: held-out initial states rolled out.
        horizon_scale: multiplies every protocol's horizon.
        goal_w1: the long-horizon goal on the integrable systems: ``W1 / spread`` at most this.
        double_pendulum: include the double pendulum rows.
        double_pendulum_run: a finished ``symplearn experiment double-pendulum`` run folder whose
            rows are read; empty: the experiment is run here (about 15 minutes on one core).
        quiet: no progress lines.
    """

    quick: bool = False
    seed: int = 0
    systems: tuple[str, ...] = ("spring", "pendulum", "kepler")
    models: tuple[str, ...] = ("mlp", "hnn", "lnn", "lnn-structured", "sympnet-g", "sympnet-p")
    width: int = 64
    depth: int = 2
    sympnet_layers: int = 8
    sympnet_width: int = 64
    psympnet_layers: int = 16
    psympnet_width: int = 16
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    n_rollout: int = 8
    horizon_scale: float = 1.0
    goal_w1: float = 0.05
    double_pendulum: bool = True
    double_pendulum_run: str = ""
    quiet: bool = False

    def resolved(self) -> Config:
        """Apply quick mode and validate."""
        cfg = self
        if cfg.quick:
            cfg = replace(
                cfg,
                systems=tuple(s for s in cfg.systems if s != "kepler"),
                models=tuple(m for m in cfg.models if m != "lnn"),
                width=min(cfg.width, 32),
                sympnet_layers=min(cfg.sympnet_layers, 4),
                sympnet_width=min(cfg.sympnet_width, 16),
                psympnet_layers=min(cfg.psympnet_layers, 6),
                psympnet_width=min(cfg.psympnet_width, 8),
                steps=min(cfg.steps, 300),
                n_rollout=min(cfg.n_rollout, 4),
                horizon_scale=min(cfg.horizon_scale, 0.05),
                double_pendulum=False,
            )
        unknown = [s for s in cfg.systems if s not in PROTOCOLS]
        if unknown or not cfg.systems:
            raise SymplearnError(f"systems must be some of {', '.join(PROTOCOLS)}, got {list(cfg.systems)}")
        unknown = [m for m in cfg.models if m not in FAMILIES]
        if unknown or not cfg.models:
            raise SymplearnError(f"models must be some of {', '.join(FAMILIES)}, got {list(cfg.models)}")
        for name in (
            "width",
            "depth",
            "steps",
            "batch_size",
            "n_rollout",
            "sympnet_layers",
            "psympnet_layers",
        ):
            v = getattr(cfg, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SymplearnError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("lr", "horizon_scale", "goal_w1"):
            v = getattr(cfg, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SymplearnError(f"{name} must be a positive number, got {v!r}")
        if cfg.double_pendulum_run and not (Path(cfg.double_pendulum_run) / "metrics.json").is_file():
            raise SymplearnError(
                f"double_pendulum_run {cfg.double_pendulum_run!r} is not a finished run folder (no "
                "metrics.json); run `symplearn experiment double-pendulum --out DIR` first, or leave it empty"
            )
        return cfg

    def horizon(self, system: str) -> float:
        """The rollout time of ``system`` (its protocol's horizon times ``horizon_scale``)."""
        return PROTOCOLS[system].horizon * self.horizon_scale

    def protocols(self) -> dict[str, dict[str, Any]]:
        """What ran, for ``metrics.json``."""
        return {s: {**PROTOCOLS[s].__dict__, "horizon": self.horizon(s)} for s in self.systems}


# -- one integrable system ------------------------------------------------------------------------
def _build(kind: str, cfg: Config, n_dof: int, dt: float):
    seed_everything(cfg.seed)
    sizes: dict[str, Any] = {"width": cfg.width, "depth": cfg.depth, "dt": dt}
    if kind == "sympnet-p":
        sizes.update(layers=cfg.psympnet_layers, width=cfg.psympnet_width)
    elif kind.startswith("sympnet"):
        sizes.update(layers=cfg.sympnet_layers, width=cfg.sympnet_width)
    return build_model(kind, ignore_unused=True, n_dof=n_dof, **sizes).double()


def _statistic(system: Any, z: Tensor, how: str) -> list[Tensor]:
    """The coordinates whose long-horizon distributions are compared: each ``q_i`` or ``|q|``."""
    n = z.shape[-1] // 2
    if how == "radius":
        return [z[..., :n].norm(dim=-1)]
    return [z[..., i] for i in range(n)]


def _roll(
    flow: FlowMap, z0: Tensor, n_steps: int, save_every: int
) -> tuple[Tensor | None, float, str | None]:
    """States ``(T, K, d)`` of ``flow`` (NaNs allowed), the wall seconds of the stepping (after
    tracing the step once), and the failure if the model broke down (e.g. a singular LNN
    Hessian)."""
    try:
        with torch.inference_mode():
            traced = trace_flow(flow, z0)
            start = time.perf_counter()
            z = integrate(traced, z0, n_steps, save_every=save_every, check_finite=False).z.clone()
            wall = time.perf_counter() - start
    except (SymplearnError, RuntimeError, FloatingPointError) as exc:
        return None, float("nan"), f"{type(exc).__name__}: {str(exc)[:160]}"
    return z, wall, None


def _symplecticity(model: Any, flow: FlowMap, z0: Tensor) -> float | None:
    if is_lagrangian(model):
        return None  # steps (q, q_dot): not a canonical map
    return dg.map_symplecticity(flow, z0).max_defect


def _integrable_rows(name: str, cfg: Config) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    p = PROTOCOLS[name]
    horizon = cfg.horizon(name)
    system = get_system(p.system, **p.params)
    ds = generate_dataset(
        system,
        n_traj=p.n_traj,
        dt=p.data_dt,
        n_steps=p.data_steps,
        energy_range=p.energy_range,
        seed=cfg.seed,
    )
    z0 = held_out_states(ds, system, cfg.n_rollout, energy_range=p.energy_range, seed=cfg.seed)
    n_steps = max(1, round(horizon / p.data_dt))
    save_every = max(1, n_steps // 2000)
    log(cfg.quiet, f"{name}: truth over t = {horizon:g} ({n_steps} steps)")
    ref = reference_trajectory(system, z0, p.data_dt, n_steps, save_every=save_every).z
    truth_stats = _statistic(system, ref, p.statistic)
    spread = [float(s.std()) for s in truth_stats]
    rows: dict[str, dict[str, Any]] = {}
    curves: dict[str, np.ndarray] = {}
    for kind in cfg.models:
        model = _build(kind, cfg, system.n_dof, p.data_dt)
        log(cfg.quiet, f"{name}: training {kind} ({cfg.steps} steps)")
        res = fit(
            model,
            ds,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=cfg.seed,
            progress=not cfg.quiet,
        )
        model.eval()
        flow = discretize(model, dt=p.data_dt)
        integ = getattr(getattr(flow, "integrator", None), "name", "own step")
        x0 = to_model_states(model, system, z0)
        x, wall, failure = _roll(flow, x0, n_steps, save_every)
        row: dict[str, Any] = {
            "system": name,
            "family": FAMILIES[kind],
            "model": kind,
            "integrator": integ,
            "train_s": res.wall_time,
            "train_loss": res.train_loss,
            "test_loss": res.test_loss,
            "rollout_us_per_step": 1e6 * wall / n_steps,
            "batch": int(z0.shape[0]),
            "symplecticity_defect": _symplecticity(model, flow, x0),
            "statistic": "W1(|q|)/spread" if p.statistic == "radius" else "max_i W1(q_i)/spread",
            "failure": failure,
        }
        if x is not None:
            z = to_canonical_states(model, system, x)
            finite = torch.isfinite(z).all(-1).all(0)  # (K,) trajectories that stayed finite
            row["diverged_trajectories"] = int((~finite).sum())
            if bool(finite.any()):
                t = torch.arange(z.shape[0], dtype=torch.float64) * (save_every * p.data_dt)
                err = dg.energy_error(system, z[:, finite], t=t)
                row["max_rel_energy_error"] = err.max
                row["energy_verdict"] = err.verdict
                curves[kind] = err.errors.max(-1).values.numpy()
                stats = _statistic(system, z[:, finite], p.statistic)
                ref_stats = [s[:, finite] for s in truth_stats]
                row["long_horizon_stat"] = max(
                    dg.wasserstein_1d(a, b) / s for a, b, s in zip(stats, ref_stats, spread, strict=True)
                )
        if row.get("diverged_trajectories") or failure:
            row["energy_verdict"] = "diverged"
        row["goal_met"] = bool(
            row.get("energy_verdict") == "bounded"
            and row.get("long_horizon_stat") is not None
            and row["long_horizon_stat"] <= cfg.goal_w1
        )
        row["goal"] = "yes" if row["goal_met"] else "no"
        rows[f"{name}/{kind}"] = row
        log(
            cfg.quiet,
            f"{name}/{kind}: energy error {_fmt(row.get('max_rel_energy_error'))} "
            f"({row.get('energy_verdict')}), W1/spread {_fmt(row.get('long_horizon_stat'))}",
        )
    return rows, curves


# -- the double pendulum --------------------------------------------------------------------------
def _double_pendulum_rows(cfg: Config) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    if cfg.double_pendulum_run:
        folder = Path(cfg.double_pendulum_run)
        metrics = json.loads((folder / "metrics.json").read_text())
        dp_cfg = json.loads((folder / "config.json").read_text())
        source = str(folder)
    else:
        from . import double_pendulum

        log(cfg.quiet, "double pendulum: running its experiment")
        with tempfile.TemporaryDirectory() as tmp:
            double_pendulum.run(double_pendulum.Config(seed=cfg.seed, quiet=cfg.quiet), Path(tmp) / "dp")
            metrics = json.loads((Path(tmp) / "dp" / "metrics.json").read_text())
            dp_cfg = json.loads((Path(tmp) / "dp" / "config.json").read_text())
        source = "run here"
    dp = dp_cfg.get("config", dp_cfg)
    goals = metrics.get("goals", {})
    rows = {}
    for kind, r in metrics["rows"].items():
        if kind not in FAMILIES:
            continue  # the truth rows
        dt = dp.get("data_dt", 0.02) if kind.startswith("sympnet") else dp.get("roll_dt", 0.02)
        reached = r.get("horizon_reached_s") or 0.0
        steps = max(1.0, reached / dt)
        g = goals.get(kind, {})
        met = bool(g) and all(bool(v) for k, v in g.items() if isinstance(v, bool))
        rows[f"double-pendulum/{kind}"] = {
            "system": "double-pendulum",
            "family": FAMILIES[kind],
            "model": kind,
            "integrator": r.get("integrator"),
            "train_s": r.get("train_s"),
            "train_loss": r.get("train_loss"),
            "test_loss": r.get("test_loss"),
            "rollout_us_per_step": 1e6 * r["rollout_s"] / steps if r.get("rollout_s") is not None else None,
            "batch": dp.get("n_rollout"),
            "symplecticity_defect": None,
            "statistic": "W1(q2)/floor",
            "long_horizon_stat": r.get("w1_q2_over_floor"),
            "lyapunov_rel_error": r.get("lyapunov_rel_error"),
            "max_rel_energy_error": r.get("max_rel_energy_error"),
            "energy_verdict": r.get("energy_verdict"),
            "failure": r.get("failure"),
            "horizon_reached_s": reached,
            "goal_met": met,
            "goal": "yes" if met else "no",
        }
    return rows, {"source": source, "horizon": dp.get("horizon"), "goals": goals}


# -- report ---------------------------------------------------------------------------------------
def _fmt(x: Any, spec: str = ".2e") -> str:
    return "-" if x is None else format(x, spec)


def _figure(rows: dict[str, dict[str, Any]], systems: list[str], goal: float):
    fig, axes = plt.subplots(2, len(systems), figsize=(4.2 * len(systems), 7.0), squeeze=False)
    colors = {"baseline": "tab:gray", "HNN": "tab:blue", "LNN": "tab:green", "SympNet": "tab:red"}
    for j, s in enumerate(systems):
        rs = [r for r in rows.values() if r["system"] == s]
        names = [r["model"] for r in rs]
        for i, (key, label) in enumerate(
            (("max_rel_energy_error", "max relative error of the true energy"), ("long_horizon_stat", ""))
        ):
            ax = axes[i, j]
            vals = [r.get(key) for r in rs]
            y = [v if v is not None and math.isfinite(v) and v > 0 else np.nan for v in vals]
            ax.bar(range(len(rs)), y, color=[colors[r["family"]] for r in rs])
            for k, v in enumerate(vals):
                if v is None or not math.isfinite(v):
                    ax.text(k, 1.0, "diverged", rotation=90, ha="center", va="bottom", fontsize=8)
            ax.set_yscale("log")
            ax.set_xticks(range(len(rs)), names, rotation=35, ha="right", fontsize=8)
            ax.grid(True, axis="y", alpha=0.3)
            if i == 0:
                ax.set_title(s)
                ax.set_ylabel(label if j == 0 else "")
            else:
                stat = rs[0]["statistic"] if rs else ""
                ax.set_ylabel(stat + " (dimensionless)")
                line = 2.0 if s == "double-pendulum" else goal
                ax.axhline(line, color="k", ls="--", lw=1, label=f"goal <= {line:g}")
                ax.legend(fontsize=8, loc="upper left")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    fig.legend(handles, list(colors), loc="upper center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def _energy_figure(curves: dict[str, dict[str, np.ndarray]], cfg: Config):
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.6), squeeze=False)
    for ax, (s, cs) in zip(axes[0], curves.items(), strict=True):
        horizon = cfg.horizon(s)
        for kind, c in cs.items():
            t = np.linspace(0.0, horizon, len(c))
            ax.semilogy(t[1:], np.maximum(c[1:], 1e-16), label=kind, lw=1)
        ax.set_title(s)
        ax.set_xlabel("time (natural units)")
        ax.set_ylabel("relative error of the true energy (worst trajectory)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _picks(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Per system: the families with a row meeting the goal, and the cheapest such row."""
    lines = []
    for s in dict.fromkeys(r["system"] for r in rows.values()):
        rs = [r for r in rows.values() if r["system"] == s]
        ok = [r for r in rs if r["goal_met"]]
        fams = sorted({r["family"] for r in ok})
        if ok:
            cheapest = min(ok, key=lambda r: r["rollout_us_per_step"] or float("inf"))
            lines.append(
                f"- **{s}**: goal met by {', '.join(r['model'] for r in ok)} (families: {', '.join(fams)}); "
                f"cheapest rollout among them: `{cheapest['model']}` at "
                f"{cheapest['rollout_us_per_step']:.0f} us per step."
            )
        else:
            lines.append(f"- **{s}**: no model met the goal.")
    return lines


def run(config: Config, out: str | Path) -> Report:
    """Run the guide and write its folder ``out``; returns the written report."""
    start = time.perf_counter()
    cfg = config.resolved()
    torch.manual_seed(cfg.seed)
    rows: dict[str, dict[str, Any]] = {}
    curves: dict[str, dict[str, np.ndarray]] = {}
    for s in cfg.systems:
        r, c = _integrable_rows(s, cfg)
        rows.update(r)
        curves[s] = c
    dp_meta = None
    if cfg.double_pendulum:
        r, dp_meta = _double_pendulum_rows(cfg)
        rows.update(r)
    systems = list(dict.fromkeys(r["system"] for r in rows.values()))
    figures = {
        "decision_guide.png": _figure(rows, systems, cfg.goal_w1),
        "decision_guide_energy.png": _energy_figure(curves, cfg),
    }
    columns = [
        Column("family", "family", "s"),
        Column("integrator", "rollout", "s"),
        Column("max_rel_energy_error", "max rel. energy error", ".1e"),
        Column("energy_verdict", "energy", "s"),
        Column("long_horizon_stat", "long-horizon statistic", ".3g"),
        Column("statistic", "statistic", "s"),
        Column("lyapunov_rel_error", "Lyapunov rel. error", ".2f"),
        Column("symplecticity_defect", "symplecticity defect", ".0e"),
        Column("train_s", "train s", ".0f"),
        Column("rollout_us_per_step", "rollout us/step", ".0f"),
        Column("goal", "goal met", "s"),
    ]
    data = ", ".join(
        f"{s}: {PROTOCOLS[s].n_traj} x {PROTOCOLS[s].data_steps} steps of {PROTOCOLS[s].data_dt:g}"
        for s in cfg.systems
    )
    horizons = ", ".join(f"{s} {cfg.horizon(s):g}" for s in cfg.systems)
    sections = [
        f"**Protocol (spring, pendulum, Kepler).** Each model kind trained by `fit` on the same "
        f"true trajectories ({data}; "
        f"20 % held out), {cfg.steps} Adam steps, learning rate {cfg.lr:g}, batch {cfg.batch_size}, "
        f"float64, seed {cfg.seed}; MLP/HNN/LNN width {cfg.width} x {cfg.depth}, G-SympNet "
        f"{cfg.sympnet_layers} x {cfg.sympnet_width}, P-SympNet "
        f"{cfg.psympnet_layers} x {cfg.psympnet_width}. "
        f"Rollouts from {cfg.n_rollout} held-out states at the data step over t = {horizons} "
        "(natural units). The long-horizon statistic is the 1-Wasserstein distance between the "
        "model's and the truth's distributions of each position coordinate over the whole horizon "
        "(Kepler: of the radius |q|), divided by the truth's standard deviation of it; the goal is "
        f"a bounded energy error and a statistic <= {cfg.goal_w1:g}. The symplecticity defect is "
        "max ||A^T J A - J|| of one rollout step at the initial states (canonical models only). "
        "Rollout cost is wall time per step of the whole batch, one process.",
    ]
    if dp_meta is not None:
        sections.append(
            f"**Double pendulum** (rows from the `double-pendulum` experiment, {dp_meta['source']}): its "
            f"own protocol (3 mgl shell, {dp_meta['horizon']} s horizon, see docs/double_pendulum.md); "
            "the statistic is W1(q2) divided by the distance between two independent sets of true "
            "trajectories (goal <= 2); the goal also asks the Lyapunov exponent within 20 % and no "
            "divergence."
        )
    sections.append("**What met the goal.**\n" + "\n".join(_picks(rows)))
    report = Report(
        title=f"Decision guide: the families measured{' (quick)' if cfg.quick else ''}",
        rows=rows,
        columns=columns,
        figures=figures,
        sections=sections,
        metrics={"quick": cfg.quick, "protocols": cfg.protocols(), "double_pendulum": dp_meta},
        files={
            "decision_guide.json": json.dumps({"rows": list(rows.values())}, indent=1, default=_json_default)
        },
    )
    write_run(out, cfg, report, wall_time_s=time.perf_counter() - start)
    return report


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON-able: {type(x).__name__}")
