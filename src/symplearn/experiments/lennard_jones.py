"""Learned Lennard-Jones potentials: a conservative model (forces = -grad E) against a
direct-force model of the same size on the same descriptors (the specification's Figure 5,
section 8.4).

Steps: (1) energies and forces of the true LJ fluid (jax-md's switched cutoff, so the truth's
forces are continuous) at a few temperatures from Langevin BAOAB; (2) train the conservative
model (:class:`~symplearn.models.potentials.SymmetryFunctionPotential` by default) and
:class:`~symplearn.models.potentials.DirectForceModel` on a training split, force RMSE on the
held-out frames; (3) from one equilibrated liquid state, velocity-Verlet (NVE) runs of the truth
and both models, and of the truth from a second equilibrated state (the g(r) noise floor);
(4) the non-conservation detectors of :mod:`symplearn.diagnostics.forces` on held-out frames.

Energy along a run: the model's own for the conservative model; the direct model has none, so
its runs are judged by the TRUE potential energy along its trajectory (and its temperature).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import md
from .._errors import SymplearnError
from ..diagnostics.forces import energy_statistics, jacobian_asymmetry, loop_work, system_force_fn
from ..diagnostics.md import centre_of_mass_kinetic_energy, radial_distribution
from ..integrators import integrate
from ..integrators.discretize import discretize
from ..models import build_model
from ..report import Column, Report, write_run
from ..systems.particles import LennardJones
from ..training.potentials import generate_md_data, train_potential
from ._common import log

DESCRIPTION = "Learned LJ potentials: conservative vs direct-force (Fig. 5: pair potential, g(r), NVE energy)"

#: the direct model's lambda and relative loop work exceed these at the quick run's fixed seed
DIRECT_FLOORS = {"jacobian_asymmetry": 1e-4, "loop_work": 1e-6}


@dataclass
class Config:
    """Settings of the Lennard-Jones experiment.

    Attributes:
        quick: a reduced run (< 90 s) for the test suite (structure only: tiny training, short runs).
        seed: seed of the data, split, initial weights and the equilibrated state.
        quiet: no progress lines.
        n_particles, density: the fluid (fcc start needs N = 4 k^3; 108 fits rc = 2.5 in the box).
        temperature: the NVE state's temperature (Langevin-equilibrated before NVE).
        train_temperatures: bath temperatures of the training data.
        frames_per_temperature, sample_every, equilibration_steps: the data runs (Langevin BAOAB).
        conservative_kind: ``symmetry-function`` or ``pair-potential``.
        n_basis, width, depth: both networks.
        train_steps, batch_size, lr, energy_weight: training (Adam, cosine decay).
        dt, nve_steps, save_every: the NVE runs (every model from the same state).
        n_check_configs: held-out frames the Jacobian and loop-work detectors are run on.
        check_atoms: cluster size of the Jacobian block; loop_points: quadrature points per loop.
    """

    quick: bool = False
    seed: int = 0
    quiet: bool = False
    n_particles: int = 108
    density: float = 0.8442
    temperature: float = 1.0
    train_temperatures: tuple = (0.8, 1.0, 1.3)
    frames_per_temperature: int = 100
    sample_every: int = 20
    equilibration_steps: int = 1000
    conservative_kind: str = "symmetry-function"
    n_basis: int = 12
    width: int = 32
    depth: int = 2
    train_steps: int = 1000
    batch_size: int = 4
    lr: float = 1e-2
    energy_weight: float = 100.0
    dt: float = 0.005
    nve_steps: int = 100_000
    save_every: int = 100
    n_check_configs: int = 2
    check_atoms: int = 8
    loop_points: int = 128

    def resolved(self) -> Config:
        cfg = self
        if self.quick:
            cfg = replace(
                self,
                frames_per_temperature=min(self.frames_per_temperature, 8),
                equilibration_steps=min(self.equilibration_steps, 200),
                sample_every=min(self.sample_every, 10),
                train_steps=min(self.train_steps, 30),
                nve_steps=min(self.nve_steps, 200),
                save_every=min(self.save_every, 10),
                n_check_configs=1,
                check_atoms=min(self.check_atoms, 4),
                loop_points=min(self.loop_points, 64),
            )
        if cfg.conservative_kind not in ("symmetry-function", "pair-potential"):
            raise SymplearnError(
                "conservative_kind must be 'symmetry-function' or 'pair-potential', "
                f"got {cfg.conservative_kind!r}"
            )
        for name in ("frames_per_temperature", "train_steps", "nve_steps", "save_every", "n_check_configs"):
            v = getattr(cfg, name)
            if not isinstance(v, int) or v < 1:
                raise SymplearnError(f"{name} must be a positive integer, got {v!r}")
        if cfg.nve_steps < 10 * cfg.save_every:
            raise SymplearnError(
                f"nve_steps ({cfg.nve_steps}) must be at least 10 x save_every ({cfg.save_every})"
            )
        if not (cfg.dt > 0 and math.isfinite(cfg.dt)):
            raise SymplearnError(f"dt must be a positive number, got {cfg.dt!r}")
        return cfg


def _gr_distance(g_a, g_b, r) -> float:
    """RMS difference of two g(r) over the bins: ``sqrt(mean_r (g_a - g_b)^2)``."""
    return float(torch.sqrt(((g_a - g_b) ** 2).mean()))


def _nve(system, z0, cfg, desc, quiet):
    t0 = time.perf_counter()
    with torch.no_grad():  # not inference mode: cached pair indices are reused with autograd later
        traj = integrate(
            discretize(system, "verlet", cfg.dt), z0, cfg.nve_steps, save_every=cfg.save_every,
            check_finite=False, progress=not quiet, desc=desc,
        )  # fmt: skip
    return traj.t.clone(), traj.z.clone(), time.perf_counter() - t0


def run(config: Config, out: str | Path) -> Report:
    """Run the experiment and write the run folder ``out``. Returns the :class:`Report`."""
    start = time.perf_counter()
    cfg = config.resolved()
    torch.manual_seed(cfg.seed)
    truth = LennardJones(cfg.n_particles, density=cfg.density, cutoff_treatment="switched")
    n, N, L = truth.n_dof, truth.n_particles, truth.box_length

    log(
        cfg.quiet, f"data: Langevin at T = {cfg.train_temperatures}, {cfg.frames_per_temperature} frames each"
    )
    t0 = time.perf_counter()
    data = generate_md_data(
        truth, cfg.train_temperatures, cfg.frames_per_temperature, dt=cfg.dt,
        equilibration_steps=cfg.equilibration_steps, sample_every=cfg.sample_every, seed=cfg.seed,
    )  # fmt: skip
    data_s = time.perf_counter() - t0

    models, fits = {}, {}
    for name, kind in (("conservative", cfg.conservative_kind), ("direct", "direct-force")):
        log(cfg.quiet, f"training {name} ({kind}), {cfg.train_steps} steps")
        torch.manual_seed(cfg.seed)
        m = build_model(
            kind, n_particles=N, box_length=L, cutoff=truth.pair.cutoff, n_basis=cfg.n_basis,
            width=cfg.width, depth=cfg.depth,
        ).double()  # fmt: skip
        fits[name] = train_potential(
            m, data, steps=cfg.train_steps, batch_size=cfg.batch_size, lr=cfg.lr,
            energy_weight=cfg.energy_weight, eval_every=max(1, cfg.train_steps // 30), seed=cfg.seed,
        )  # fmt: skip
        models[name] = m
    val_idx = fits["conservative"]["val_idx"]

    # one equilibrated liquid state for all; a second (other seed) for the truth's noise floor
    # (langevin_baoab removes the total momentum of its final state: NVE with a resting centre of mass)
    log(cfg.quiet, f"equilibrating at T = {cfg.temperature} (Langevin, true LJ)")
    states = []
    for s in (cfg.seed, cfg.seed + 1):
        z = truth.sample(1, temperature=cfg.temperature, seed=1000 + s)[0]
        z, _ = md.langevin_baoab(
            truth, z, cfg.dt, 2 * cfg.equilibration_steps, temperature=cfg.temperature, seed=2000 + s,
            zero_momentum=True,
        )  # fmt: skip
        states.append(z[None])

    systems = {"true": truth, **models}
    runs = {}
    for name, sys_ in systems.items():
        log(cfg.quiet, f"NVE {name}: {cfg.nve_steps} steps at dt = {cfg.dt}")
        runs[name] = _nve(sys_, states[0], cfg, name, cfg.quiet)
    runs["true (seed 2)"] = _nve(truth, states[1], cfg, "true, second state", cfg.quiet)

    rows, energies, grs = {}, {}, {}
    for name, (t, z, wall) in runs.items():
        z = z[:, 0]
        finite = torch.isfinite(z).all(-1)
        n_ok = int(finite.long().cumprod(0).sum())
        t, z = t[:n_ok], z[:n_ok]
        sys_ = systems.get(name, truth)
        own = getattr(sys_, "has_energy", True)
        with torch.no_grad():
            pot = (sys_ if own else truth).compute(z[:, :n], virial=False)["energy"]
        kin = truth.kinetic_energy(z[:, n:])
        kcm = centre_of_mass_kinetic_energy(truth, z)  # 0 from the prepared state; a direct model drifts
        # temperature with the convention of energy_statistics: 3N - 3 degrees of freedom, the
        # centre of mass's kinetic energy taken out
        energies[name] = (t, (kin + pot) / N, 2.0 * (kin - kcm) / (3 * N - 3))
        st = energy_statistics(t.numpy(), (kin + pot).numpy(), kin.numpy(), N, com_kinetic=kcm.numpy())
        skip = max(1, len(t) // 10)
        r, g = radial_distribution(truth, z[skip:], n_bins=100)
        grs[name] = (r, g)
        rows[name] = {
            "force_rmse": None,
            "energy_drift_per_particle_per_tau": st["slope_per_particle_per_tau"],
            "energy_std_over_ke_std": st["energy_std_over_ke_std"],
            "temperature_start": st["temperature_start"],
            "temperature_end": st["temperature_end"],
            "energy_kind": "own" if own else "true V along the run",
            "steps_completed": (n_ok - 1) * cfg.save_every,
            "md_time_s": wall,
        }
    noise = _gr_distance(grs["true (seed 2)"][1], grs["true"][1], grs["true"][0])
    for name in rows:
        rows[name]["gr_distance"] = _gr_distance(grs[name][1], grs["true"][1], grs["true"][0])
    floor_row = rows.pop("true (seed 2)")

    log(cfg.quiet, "detectors: Jacobian asymmetry (autograd) and loop work on held-out frames")
    qc = data["q"][val_idx[: cfg.n_check_configs]]
    for name, sys_ in systems.items():
        fn = system_force_fn(sys_)
        ja = jacobian_asymmetry(fn, qc, n_atoms=cfg.check_atoms, box=L, method="autograd")
        lw = [
            loop_work(fn, q, n_loops=2, n_points=cfg.loop_points, amplitude=0.02, seed=cfg.seed) for q in qc
        ]
        rows[name]["jacobian_asymmetry"] = ja.max
        rows[name]["loop_work"] = max(x.relative for x in lw)
        rows[name]["loop_work_abs"] = max(x.max_abs for x in lw)
        rows[name]["loop_quadrature_error"] = max(max(x.quadrature_error) for x in lw)
        if name == "true":
            rows[name]["force_rmse"] = 0.0
            rows[name]["train_time_s"] = data_s
        else:
            rows[name]["force_rmse"] = fits[name]["val_force_rmse"]
            rows[name]["energy_rmse_per_particle"] = fits[name]["val_energy_rmse"]
            rows[name]["train_time_s"] = fits[name]["wall_s"]
            rows[name]["kind"] = sys_.kind

    force_scale = float(data["forces"][val_idx].pow(2).mean().sqrt())
    figures = {
        "fig5_lennard_jones.png": _fig5(truth, models, cfg, grs, energies),
        "learning_curves.png": _learning_figure(fits, force_scale),
        "temperature.png": _temperature_figure(energies, cfg),
    }
    report = Report(
        title="Learned Lennard-Jones potentials: conservative against direct-force (Fig. 5)",
        rows=rows,
        columns=[
            Column("force_rmse", "force RMSE (held out)", ".3g"),
            Column("energy_drift_per_particle_per_tau", "drift /N/tau", ".2e"),
            Column("energy_std_over_ke_std", "std(E)/std(KE)", ".3g"),
            Column("temperature_start", "T start", ".3f"),
            Column("temperature_end", "T end", ".3f"),
            Column("gr_distance", "g(r) dist.", ".3g"),
            Column("jacobian_asymmetry", "lambda", ".2e"),
            Column("loop_work", "loop work (rel.)", ".2e"),
            Column("train_time_s", "train s", ".0f"),
            Column("md_time_s", "MD s", ".0f"),
        ],
        figures=figures,
        sections=_sections(cfg, rows, noise, force_scale, floor_row),
        metrics={
            "gr_noise_floor": noise,
            "force_scale_rms": force_scale,
            "n_steps": cfg.nve_steps,
            "dt": cfg.dt,
        },
    )
    write_run(out, cfg, report, wall_time_s=time.perf_counter() - start)
    from ..modelio import save_model

    for name, m in models.items():  # model folders for `symplearn check-forces`
        save_model(m, Path(out) / f"model_{name}", metrics={"val_force_rmse": fits[name]["val_force_rmse"]})
    return report


def _sections(cfg, rows, noise, force_scale, floor_row) -> list[str]:
    c, d, t = rows["conservative"], rows["direct"], rows["true"]
    run_tau = cfg.nve_steps * cfg.dt
    lines = [
        f"N = {cfg.n_particles} LJ particles at density {cfg.density}, switched cutoff 2.0-2.5 sigma; NVE "
        f"(velocity Verlet) for {cfg.nve_steps} steps at dt = {cfg.dt} ({run_tau:g} tau) from one "
        f"Langevin-equilibrated state at T = {cfg.temperature}. Training data: "
        f"{len(cfg.train_temperatures)} x {cfg.frames_per_temperature} frames "
        f"(T = {cfg.train_temperatures}), "
        f"80/20 split; force RMSE on the held-out frames (RMS true force component {force_scale:.3g}).",
        f"g(r) distance: RMS difference to the truth's g(r) over 100 bins up to L/2; noise floor "
        f"(truth from a second equilibrated state) {noise:.3g}. lambda = ||J_anti||/||J|| of the force "
        f"Jacobian (autograd, {cfg.check_atoms}-particle cluster); loop work = max |oint F.dq| / oint |F.dq| "
        f"over random loops ({cfg.loop_points}-point trapezoid, stated quadrature error in metrics.json).",
        "The direct model has no energy: its drift and std(E)/std(KE) use the TRUE potential along its "
        "trajectory.",
    ]
    checks = []
    if t["energy_drift_per_particle_per_tau"] is not None:
        ratio_drift = abs(c["energy_drift_per_particle_per_tau"]) / max(
            abs(t["energy_drift_per_particle_per_tau"]), 1e-300
        )
        ratio_std = c["energy_std_over_ke_std"] / max(t["energy_std_over_ke_std"], 1e-300)
        checks.append(
            f"- conservative drift / truth's drift = {ratio_drift:.3g} (goal <= 2); std(E)/std(KE) ratio "
            f"{ratio_std:.3g} (goal <= 2)."
        )
    checks.append(
        f"- conservative g(r) distance / noise floor = {c['gr_distance'] / max(noise, 1e-300):.3g} "
        "(goal <= 2)."
    )
    checks.append(
        f"- lambda: conservative {c['jacobian_asymmetry']:.2e}, direct {d['jacobian_asymmetry']:.2e}; "
        f"loop work: conservative {c['loop_work']:.2e}, direct {d['loop_work']:.2e}."
    )
    dT = d["temperature_end"] - d["temperature_start"]
    checks.append(
        f"- direct model at force RMSE {d['force_rmse']:.3g} (conservative {c['force_rmse']:.3g}): "
        f"T {d['temperature_start']:.3f} -> {d['temperature_end']:.3f} ({dT:+.3f}), true-energy drift "
        f"{d['energy_drift_per_particle_per_tau']:.2e} per particle per tau, g(r) distance "
        f"{d['gr_distance']:.3g} ({d['gr_distance'] / max(noise, 1e-300):.2g} x noise floor); "
        f"{d['steps_completed']} of {cfg.nve_steps} steps finite."
    )
    return lines + ["\n".join(checks)]


def _fig5(truth, models, cfg, grs, energies) -> Figure:
    fig = Figure(figsize=(12, 9))
    ax = fig.subplots(2, 2).reshape(-1)
    r = torch.linspace(0.88, truth.pair.cutoff, 300, dtype=torch.float64)
    ax[0].plot(r, truth.pair.energy(r), "k-", label="true LJ (switched 2.0-2.5)")
    cons = models["conservative"]
    if hasattr(cons, "pair_energy"):
        with torch.no_grad():
            ax[0].plot(r, cons.pair_energy(r), "C0--", label="learned phi(r)")
    else:
        ax[0].text(
            0.35, 0.5, f"conservative model: {cons.kind}\n(many-body: no pair potential)",
            transform=ax[0].transAxes, fontsize=9,
        )  # fmt: skip
    ax[0].axvline(2 ** (1 / 6), color="0.7", lw=0.8)
    ax[0].axhline(-1.0, color="0.7", lw=0.8)
    ax[0].set(xlabel="r (sigma)", ylabel="u(r) (epsilon)", title="(a) pair potential", ylim=(-1.3, 2.0))
    ax[0].legend()
    styles = {"true": "k-", "conservative": "C0--", "direct": "C3:", "true (seed 2)": "0.6"}
    for name, (rr, g) in grs.items():
        ax[1].plot(rr, g, styles[name], label=name, lw=1.2)
    ax[1].set(xlabel="r (sigma)", ylabel="g(r)", title=f"(b) g(r), NVE from T = {cfg.temperature}")
    ax[1].legend()
    for k, names in ((2, ("true", "conservative", "direct")), (3, ("true", "conservative"))):
        for name in names:
            t, e, _ = energies[name]
            label = name + (" (true V along its run)" if name == "direct" else " (own H)")
            ax[k].plot(t, e - e[0], styles[name], label=label, lw=1)
        ax[k].set(xlabel="t (tau)", ylabel="(E(t) - E(0)) / N (epsilon)")
        ax[k].legend()
    ax[2].set_yscale("symlog", linthresh=1e-3)  # the direct model's overlaps reach 1e17
    ax[2].set_title(f"(c) total energy, {cfg.nve_steps} Verlet steps at dt = {cfg.dt} (symlog)")
    ax[3].set_title("(c, zoom) truth and conservative model")
    fig.tight_layout()
    return fig


def _temperature_figure(energies, cfg) -> Figure:
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    styles = {"true": "k-", "conservative": "C0--", "direct": "C3:", "true (seed 2)": "0.6"}
    for name, (t, _, temp) in energies.items():
        if name == "true (seed 2)":
            continue
        ax.plot(t, temp, styles[name], label=name, lw=1)
    ax.set(
        xlabel="t (tau)",
        ylabel="temperature (epsilon / k_B)",
        yscale="log",
        title=f"Temperature along NVE ({cfg.nve_steps} steps at dt = {cfg.dt})",
    )
    ax.legend()
    fig.tight_layout()
    return fig


def _learning_figure(fits, force_scale) -> Figure:
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for name, c in (("conservative", "C0"), ("direct", "C3")):
        h = fits[name]["history"]
        ax.plot(h["step"], h["val_force_rmse"], c + "-", label=f"{name}: force RMSE (validation)")
        ax.plot(h["step"], np.sqrt(h["train_loss"]), c + ":", label=f"{name}: sqrt(train loss)")
    ax.axhline(force_scale, color="0.6", lw=0.8, label="RMS true force")
    ax.set(
        xlabel="training step", ylabel="force error (epsilon/sigma)", yscale="log", title="Learning curves"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
