"""The pendulum ``H = p^2/2 + (g/L)(1 - cos q)`` of the specification (``000_*.txt``).

Three parts:

1. Figure 4: explicit Euler against Stormer-Verlet at the same step: energy over time and the
   phase portrait (Euler's orbit spirals out, Verlet's closes).
2. Figure 2: a small square of initial states carried by the exact flow (Gauss-Legendre 6 at a
   small step) shears into a sliver while its area (shoelace formula on a refined boundary)
   stays constant to four decimals.
3. Trained models on pendulum data (MLP, HNN, LNN, SympNet-G, SympNet-LA), each rolled out over
   a long horizon with the integrator that suits it, with a table and one energy-error figure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import diagnostics as dg
from .. import plotting
from ..datasets import generate_dataset
from ..integrators import integrate, reference_trajectory
from ..integrators.discretize import discretize
from ..models import build_model
from ..report import Column, Report, write_run
from ..systems import get_system
from ..training import fit, seed_everything
from ._common import held_out_states, history_for_plot, log, to_canonical_states, to_model_states

DESCRIPTION = (
    "pendulum: Euler vs Verlet (Fig. 4), area of a transported square (Fig. 2), "
    "MLP/HNN/LNN/SympNets over a long horizon"
)


@dataclass
class Config:
    """Settings of the pendulum experiment.

    Attributes:
        quick: a reduced run (< 30 s) for the test suite.
        seed: one seed for data, weights, minibatches and initial states.
        g, L: the pendulum (g/L = 1: small oscillations of period 2 pi).
        fig4_dt, fig4_steps, fig4_q0: Euler vs Verlet: step, steps, initial angle (p0 = 0).
        square_center, square_side, square_t, square_dt: the transported square (Fig. 2).
        models: the model kinds to train.
        n_traj, data_dt, data_steps, energy_range: training data (energy below the separatrix 2 g/L).
        width, depth, sympnet_layers, steps, batch_size, lr: networks and training.
        horizon, n_rollout: rollout length (time) and number of held-out initial states.
        loop_t: time over which a loop of initial states is transported by each model.
        quiet: no progress lines.
    """

    quick: bool = False
    seed: int = 0
    g: float = 1.0
    L: float = 1.0
    fig4_dt: float = 0.05
    fig4_steps: int = 1000
    fig4_q0: float = 0.5
    square_center: tuple[float, float] = (2.0, 0.0)
    square_side: float = 0.3
    square_t: float = 30.0
    square_dt: float = 0.01
    models: tuple[str, ...] = ("mlp", "hnn", "lnn", "sympnet-g", "sympnet-la")
    n_traj: int = 64
    data_dt: float = 0.1
    data_steps: int = 40
    energy_range: tuple[float, float] = (0.1, 1.5)
    width: int = 64
    depth: int = 2
    sympnet_layers: int = 6
    steps: int = 3000
    batch_size: int = 256
    lr: float = 2e-3
    horizon: float = 500.0
    n_rollout: int = 8
    loop_t: float = 30.0
    quiet: bool = False

    def resolved(self) -> Config:
        if self.quick:
            return replace(
                self,
                square_t=min(self.square_t, 10.0),
                n_traj=min(self.n_traj, 16),
                steps=min(self.steps, 150),
                width=min(self.width, 32),
                sympnet_layers=min(self.sympnet_layers, 3),
                horizon=min(self.horizon, 20.0),
                n_rollout=min(self.n_rollout, 4),
                loop_t=min(self.loop_t, 5.0),
                # the LNN's batched Hessian solves make it the slowest model; the quick mode
                # (run by the tests) keeps the models whose structure it asserts
                models=tuple(m for m in self.models if m != "lnn"),
            )
        return self


# -- part 1: Euler against Verlet ------------------------------------------------------------
def _fig4(cfg: Config, system: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    z0 = torch.tensor([[cfg.fig4_q0, 0.0]], dtype=torch.float64)
    rows, figs, energies, orbits = {}, {}, {}, {}
    for name in ("euler", "verlet"):
        traj = integrate(discretize(system, name, cfg.fig4_dt), z0, cfg.fig4_steps)
        energy = system.hamiltonian(traj.z)  # (T, 1)
        err = dg.invariant_error(energy, traj.t)
        rows[f"{name} (dt={cfg.fig4_dt:g})"] = {
            "max_rel_energy_error": err.max,
            "final_rel_energy_error": err.final,
            "energy_error_verdict": err.verdict,
            "energy_error_slope": err.slope,
        }
        energies[name], orbits[name] = energy[:, 0].numpy(), traj.z[:, 0].numpy()
        t = traj.t.numpy()
    e0 = float(system.hamiltonian(z0)[0])
    figs["fig4_energy.png"] = plotting.energy_figure(
        t,
        energies,
        reference=e0,
        title=f"Pendulum, same step dt = {cfg.fig4_dt:g}: Euler drifts, Verlet stays in a band",
    )
    figs["fig4_phase.png"] = plotting.phase_portrait_figure(
        orbits,
        hamiltonian=system.hamiltonian,
        title="Phase portrait: the Euler orbit spirals out, the Verlet orbit closes",
    )
    return rows, figs


# -- part 2: the transported square ----------------------------------------------------------
def _fig2(cfg: Config, system: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    center = torch.tensor(cfg.square_center, dtype=torch.float64)
    loop = dg.square_loop(center, cfg.square_side, 64)
    n_steps = round(cfg.square_t / cfg.square_dt)
    tr = dg.transport_loop(
        discretize(system, "gauss-legendre-6", cfg.square_dt),
        loop,
        n_steps,
        save_every=max(1, n_steps // 200),
    )
    idx = torch.linspace(0, len(tr.loops) - 1, 5).round().long().tolist()
    fig = plotting.transported_patch_figure(
        [tr.loops[i].numpy() for i in idx],
        tr.t[idx].numpy(),
        tr.t.numpy(),
        tr.areas.numpy(),
        hamiltonian=system.hamiltonian,
        tolerance=1e-4,
        title=f"A square of side {cfg.square_side:g} carried by the pendulum flow to t = {cfg.square_t:g}",
    )
    row = {
        "area_initial": float(tr.areas[0]),
        "area_final": float(tr.areas[-1]),
        "area_ratio": tr.area_ratio,
        "max_area_deviation": tr.max_area_deviation,
        "boundary_points_final": int(tr.loops[-1].shape[0]),
        "perimeter_ratio": float(_perimeter(tr.loops[-1]) / _perimeter(tr.loops[0])),
    }
    return row, {"fig2_square.png": fig}


def _perimeter(loop: Tensor) -> Tensor:
    pts = loop[:, [0, loop.shape[-1] // 2]]
    return (pts.roll(-1, 0) - pts).norm(dim=-1).sum()


# -- part 3: trained models ------------------------------------------------------------------
def _build(kind: str, cfg: Config, dt: float):
    seed_everything(cfg.seed)
    return build_model(
        kind, ignore_unused=True, n_dof=1, dt=dt, width=cfg.width, depth=cfg.depth, layers=cfg.sympnet_layers
    )


def _models(cfg: Config, system: Any, quiet: bool):
    ds = generate_dataset(
        system,
        n_traj=cfg.n_traj,
        dt=cfg.data_dt,
        n_steps=cfg.data_steps,
        energy_range=cfg.energy_range,
        seed=cfg.seed,
    )
    z0 = held_out_states(ds, system, cfg.n_rollout, energy_range=cfg.energy_range, seed=cfg.seed)
    dt = cfg.data_dt
    n_steps = round(cfg.horizon / dt)
    save_every = max(1, n_steps // 1000)
    ref = reference_trajectory(system, z0, dt, n_steps, save_every=save_every)
    rows, curves, fits = {}, {}, {}
    e0 = system.hamiltonian(z0)
    horizons = [h for h in (10.0, 100.0, cfg.horizon) if h <= cfg.horizon]
    loop0 = dg.circle_loop(torch.tensor([1.0, 0.0], dtype=torch.float64), 0.15, 64)
    loop_steps = round(cfg.loop_t / dt)
    for kind in cfg.models:
        model = _build(kind, cfg, dt).double()
        log(quiet, f"training {kind} ({cfg.steps} steps)")
        res = fit(
            model,
            ds,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=cfg.seed,
            progress=not quiet,
        )
        model.eval()
        fits[kind] = res
        # each kind rolls out with the integrator that suits it (its default_integrator): RK4
        # for the MLP and the LNN (no canonical structure to keep), implicit midpoint for the
        # HNN (symplectic for any learned H); a SympNet is its own flow map
        flow = discretize(model, dt=dt)
        integ_name = getattr(getattr(flow, "integrator", None), "name", "own step")
        t, x, wall = integrate(
            flow,
            to_model_states(model, system, z0),
            n_steps,
            save_every=save_every,
            grad=False,
            trace=True,
            progress=not quiet,
            desc=f"{kind}: t = {cfg.horizon:g}",
        )[:3]
        z = to_canonical_states(model, system, x)
        rel = dg.energy_error(system, z, t=t).errors
        err = (z - ref.z).norm(dim=-1).mean(-1)  # (T,)
        tr = dg.transport_loop(
            flow,
            to_model_states(model, system, loop0),
            loop_steps,
            save_every=max(1, loop_steps // 50),
        )
        row = {
            "integrator": integ_name,
            "train_loss": res.train_loss,
            "test_loss": res.test_loss,
            "max_rel_energy_error": float(rel.max()),
            "final_energy_ratio": float((system.hamiltonian(z[-1]) / e0).mean()),
        }
        for h in horizons:
            i = int(torch.argmin((t - h).abs()))
            row[f"state_error_t{h:g}"] = float(err[i])
        row.update({"area_ratio": tr.area_ratio, "train_time_s": res.wall_time, "rollout_time_s": wall})
        rows[kind], curves[kind] = row, rel.numpy()
        log(
            quiet,
            f"{kind:11s} max rel energy error {row['max_rel_energy_error']:.3e}, "
            f"area ratio {row['area_ratio']:.4f}",
        )
    return rows, curves, fits, t.numpy(), horizons


def run(config: Config, out: str | Path) -> Report:
    """Run the experiment and write its folder ``out``; returns the written report."""
    start = time.perf_counter()
    cfg = config.resolved()
    system = get_system("pendulum", g=cfg.g, L=cfg.L)
    log(cfg.quiet, "Euler against Verlet (Fig. 4)")
    rows, figures = _fig4(cfg, system)
    log(cfg.quiet, "transporting a square (Fig. 2)")
    square, fig2 = _fig2(cfg, system)
    figures.update(fig2)
    model_rows, curves, fits, t, horizons = _models(cfg, system, cfg.quiet)
    rows.update(model_rows)
    figures["energy_error_models.png"] = plotting.energy_error_figure(
        t[1:],
        {k: v[1:] for k, v in curves.items()},
        title=f"True energy along each model's rollout (t up to {cfg.horizon:g})",
    )
    for kind, res in fits.items():
        figures[f"loss_{kind}.png"] = plotting.loss_figure(
            history_for_plot(res.history), title=f"{kind} training loss ({res.loss})"
        )
    columns = [
        Column("integrator", "rollout", "s"),
        Column("train_loss", "train loss", ".2e"),
        Column("max_rel_energy_error", "max rel. energy error", ".2e"),
        Column("energy_error_verdict", "verdict", "s"),
    ]
    columns += [Column(f"state_error_t{h:g}", f"state error t={h:g}", ".2e") for h in horizons]
    columns += [
        Column("area_ratio", f"area ratio (t={cfg.loop_t:g})", ".4f"),
        Column("train_time_s", "train s", ".1f"),
        Column("rollout_time_s", "rollout s", ".1f"),
    ]
    eu, ve = rows[f"euler (dt={cfg.fig4_dt:g})"], rows[f"verlet (dt={cfg.fig4_dt:g})"]
    sections = [
        f"**Figure 4 (Euler vs Verlet).** Both from q = {cfg.fig4_q0:g}, p = 0 with g/L = "
        f"{cfg.g / cfg.L:g} and dt = {cfg.fig4_dt:g} for {cfg.fig4_steps} steps: Euler's energy error "
        f"ends at {eu['final_rel_energy_error']:.3g} and is judged *{eu['energy_error_verdict']}*; "
        f"Verlet's stays below {ve['max_rel_energy_error']:.2e} and is judged *{ve['energy_error_verdict']}* "
        "(verdict: the error envelope over the last tenth of the run against the first tenth).",
        f"**Figure 2 (Liouville).** A square of side {cfg.square_side:g} centred at "
        f"{tuple(cfg.square_center)} carried by the exact flow (Gauss-Legendre 6, dt = {cfg.square_dt:g}) "
        f"to t = {cfg.square_t:g}: its perimeter grows x{square['perimeter_ratio']:.2f} as it shears "
        f"(boundary refined to {square['boundary_points_final']} points), while its area goes from "
        f"{square['area_initial']:.4f} to {square['area_final']:.4f} (largest relative change "
        f"{square['max_area_deviation']:.1e}).",
        f"**Trained models.** Data: {cfg.n_traj} trajectories (energies {cfg.energy_range}, 20 % held "
        f"out) of {cfg.data_steps} steps of {cfg.data_dt:g}, exact derivatives. MLP and HNN match slopes, "
        "the LNN matches accelerations, SympNets match one-step maps. Rollout integrators: "
        + "; ".join(f"{k}: {r['integrator']}" for k, r in rows.items() if "integrator" in r)
        + " (each kind's own default: RK4 where there is no canonical structure to keep, implicit "
        "midpoint for a learned H, a SympNet's own step)"
        + f". Each model is rolled out at dt = {cfg.data_dt:g} from {cfg.n_rollout} held-out initial "
        "states; energies are the true H along the model's trajectory (the LNN's through the true "
        "Legendre map p = dL/dq_dot); state errors are mean distances to the exact trajectory. The area "
        f"ratio is that of a circle of initial states (radius 0.15 around (1, 0)) carried to t = "
        f"{cfg.loop_t:g} by the model (the LNN's in (q, q_dot), which equal (q, p) for this pendulum). "
        "Trained models' numbers depend on training; the structural ones are Verlet's band, the "
        "square's area, and the area ratios of the HNN and the SympNets (symplectic by construction).",
    ]
    report = Report(
        title=f"Pendulum: integrators, Liouville and trained models{' (quick)' if cfg.quick else ''}",
        rows=rows,
        columns=columns,
        figures=figures,
        sections=sections,
        metrics={
            "square": square,
            "quick": cfg.quick,
            "fits": {k: v.metrics() for k, v in fits.items()},
            "rollout_integrators": {k: r["integrator"] for k, r in rows.items() if "integrator" in r},
        },
    )
    write_run(out, cfg, report, wall_time_s=time.perf_counter() - start)
    return report
