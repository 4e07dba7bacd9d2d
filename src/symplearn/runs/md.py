"""Molecular dynamics of a particle system: ``symplearn md lennard-jones --n 256 ... --out DIR``.

fcc start at a density with Maxwell-Boltzmann momenta at a temperature (the LAMMPS ``in.lj``
protocol by default), an optional Langevin (BAOAB) equilibration (its random total momentum removed,
as LAMMPS ``velocity ... mom yes``), then NVE velocity Verlet
through the library's ``integrate``. Writes ``trajectory.extxyz`` (ASE / OVITO / MDAnalysis),
``thermo.csv`` (step, time, KE, PE, E, T, P), ``metrics.json``, ``report.md`` and figures (pair
potential, g(r), energy over time).

``--potential DIR`` runs a learned potential's model folder instead (``symplearn train --data
frames.extxyz --model potential-...``, or the Lennard-Jones experiment's ``model_*``): the number
of atoms, box and cutoff are the model's; the start is the folder's first held-out frame (an fcc
lattice for a folder without frames) with Maxwell-Boltzmann momenta at ``--temperature`` (``k_B T``
in the data's energy unit, ``--dt`` in its time unit). A direct-force model has no energy: its PE
and E columns are NaN.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import md
from .._errors import SymplearnError, lookup
from .._validate import DTYPES
from ..diagnostics.md import first_peak, radial_distribution
from ..report import Column, Report, write_run
from ..systems.particles import CUTOFF_TREATMENTS, LennardJones

DESCRIPTION = "NVE molecular dynamics of a Lennard-Jones fluid (fcc start, LAMMPS in.lj protocol)"

#: particle systems the md command knows
MD_SYSTEMS = {"lennard-jones": LennardJones}


@dataclass
class Config:
    """Settings of an MD run (defaults: LAMMPS ``in.lj`` with 256 instead of 32000 atoms).

    Attributes:
        system: particle system name (``"lennard-jones"``).
        n: number of particles (``4 k^3`` for the fcc start: 32, 108, 256, 500, 864, 4000, ...).
        density: number density (reduced units).
        temperature: temperature of the initial momenta (and of the Langevin bath).
        steps: NVE steps; dt: time step (tau).
        cutoff: pair cutoff (sigma), at most half the box.
        cutoff_treatment: "truncated", "shifted" or "switched".
        equilibrate: Langevin BAOAB steps at ``temperature`` before NVE (0: none, as in.lj).
        friction: Langevin friction (1/tau).
        seed: momenta (and Langevin noise) seed.
        save_every: trajectory frame interval (steps); thermo_every: thermo log interval.
        neighbor: "auto", "vesin" or "all-pairs"; skin: neighbour-list skin.
        compile: the neighbour list's pair loop through ``torch.compile`` (true systems; about
            20 s of compilation; 1.2-1.4x faster at N = 32000; see ``ParticleSystem``).
        dtype: "float64" or "float32".
        quiet: no progress lines.
        potential: a learned potential's model folder to run instead of ``system`` (its N, box
            and cutoff are used; ``n``, ``density``, ``cutoff`` and ``cutoff_treatment`` are not).
    """

    system: str = "lennard-jones"
    n: int = 256
    density: float = 0.8442
    temperature: float = 1.44
    steps: int = 1000
    dt: float = 0.005
    cutoff: float = 2.5
    cutoff_treatment: str = "shifted"
    equilibrate: int = 0
    friction: float = 1.0
    seed: int = 0
    save_every: int = 100
    thermo_every: int = 10
    neighbor: str = "auto"
    skin: float = 0.3
    compile: bool = False
    dtype: str = "float64"
    quiet: bool = False
    potential: str | None = None

    def resolved(self) -> Config:
        """Validate (raising :class:`SymplearnError` with what would work) and return self."""
        lookup(self.system, MD_SYSTEMS, "particle system")
        lookup(self.cutoff_treatment, {t: t for t in CUTOFF_TREATMENTS}, "cutoff treatment")
        lookup(self.dtype, DTYPES, "dtype")
        for name in ("n", "steps", "save_every", "thermo_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SymplearnError(f"{name} must be a positive integer, got {v!r}")
        if (
            isinstance(self.equilibrate, bool)
            or not isinstance(self.equilibrate, int)
            or self.equilibrate < 0
        ):
            raise SymplearnError(f"equilibrate must be an integer >= 0, got {self.equilibrate!r}")
        for name in ("dt", "friction"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SymplearnError(f"{name} must be a positive number, got {v!r}")
        if self.save_every % self.thermo_every:
            raise SymplearnError(
                f"save_every ({self.save_every}) must be a multiple of thermo_every ({self.thermo_every})"
            )
        return self

    def build(self) -> Setup:
        """Validate and make the names objects, once: the :class:`Setup` that :func:`run` runs
        (the particle system or the learned model of ``potential``, and that folder's start).

        Raises:
            SymplearnError: as :meth:`resolved` and :meth:`build_system`; a non-physical
                temperature for a learned potential.
        """
        cfg = self.resolved()
        system = cfg.build_system()
        probe = None
        if cfg.potential:
            from ..frames import probe_positions
            from ..systems.particles import _check_temperature

            _check_temperature(cfg.temperature)
            probe = probe_positions(cfg.potential, system)
        return Setup(config=cfg, system=system, probe=probe)

    def build_system(self) -> LennardJones:
        """The particle system (validates density, temperature, cutoff vs box, N); with
        ``potential``, the learned model of that folder (in ``dtype``)."""
        if self.potential:
            from ..frames import load_potential

            return load_potential(self.potential, dtype=DTYPES[self.dtype])
        cls = lookup(self.system, MD_SYSTEMS, "particle system")
        return cls(
            self.n,
            density=self.density,
            temperature=self.temperature,
            cutoff=self.cutoff,
            cutoff_treatment=self.cutoff_treatment,
            neighbor=self.neighbor,
            skin=self.skin,
            compile=self.compile,
        )


@dataclass(frozen=True, eq=False)
class Setup:
    """An MD run with its names made objects (:meth:`Config.build`, once): what :func:`run` runs.

    Attributes:
        config: the validated configuration (recorded in ``config.json``).
        system: the particle system, or the learned potential of ``config.potential``.
        probe: a learned potential's start positions (its folder's held-out frames), ``None``
            for a true system or a folder without frames (an fcc start).
    """

    config: Config
    system: Any
    probe: torch.Tensor | None


def run(config: Config | Setup, out: str | Path) -> Report:
    """Run MD and write the run folder ``out``.

    Args:
        config: the settings (validated and built here first, :meth:`Config.build`), or the
            :class:`Setup` they built.
        out: the run folder.

    Returns:
        The :class:`~symplearn.report.Report` (its ``metrics`` are ``metrics.json``'s entries).

    Raises:
        SymplearnError: bad settings (see :meth:`Config.resolved`), non-physical density or
            temperature, a cutoff above half the box, N not ``4 k^3``.
    """
    from ..ase import write_extxyz

    t_start = time.perf_counter()
    setup = config if isinstance(config, Setup) else config.build()
    cfg, system, probe = setup.config, setup.system, setup.probe
    dtype = DTYPES[cfg.dtype]
    N = system.n_particles
    learned = bool(cfg.potential)
    if probe is not None:  # the folder's first held-out frame, momenta at the temperature
        from ..systems.particles import maxwell_boltzmann

        p = maxwell_boltzmann(system.masses, cfg.temperature, seed=cfg.seed)[0]
        z = torch.cat([probe[0], p]).to(dtype)
    else:
        z = system.sample(1, temperature=cfg.temperature, seed=cfg.seed, dtype=dtype)[0]
    what = f"{system.kind} model of {cfg.potential} (N={N})" if learned else repr(system)
    _log(cfg, f"md: {what}, box {system.box_length:.4f}, {system.neighbor} pairs, {cfg.steps} steps")
    if cfg.equilibrate:
        z, _ = md.langevin_baoab(
            system,
            z,
            cfg.dt,
            cfg.equilibrate,
            temperature=cfg.temperature,
            friction=cfg.friction,
            seed=cfg.seed,
            zero_momentum=True,
        )
        _log(
            cfg,
            f"md: Langevin equilibration, {cfg.equilibrate} steps at T = {cfg.temperature:g} "
            "(total momentum removed before NVE)",
        )

    # NVE in chunks (one progress line each), thermo states every thermo_every steps
    states, steps = [z], [0]
    chunk = max(cfg.thermo_every, (cfg.steps // 10) // cfg.thermo_every * cfg.thermo_every)
    done, t_nve = 0, 0.0
    while done < cfg.steps:
        k = min(chunk, cfg.steps - done)
        t0 = time.perf_counter()
        tr = md.nve(system, states[-1], cfg.dt, k, save_every=cfg.thermo_every)
        t_nve += time.perf_counter() - t0
        saved_steps = [done + s for s in range(cfg.thermo_every, k + 1, cfg.thermo_every)]
        if k % cfg.thermo_every:
            saved_steps.append(done + k)
        states.extend(tr.z[1:])
        steps.extend(saved_steps)
        done += k
        _log(cfg, f"md: step {done}/{cfg.steps}, {done / t_nve:.0f} steps/s")
    zt = torch.stack(states)  # (T, 6N)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    th = md.write_thermo_csv(out / "thermo.csv", system, zt, steps=steps, dt=cfg.dt)
    frames = [i for i, s in enumerate(steps) if s % cfg.save_every == 0 or s == cfg.steps]
    write_extxyz(
        out / "trajectory.extxyz",
        system,
        zt[frames],
        steps=[steps[i] for i in frames],
        dt=cfg.dt,
        energies={"pe": th["pe"][frames], "ke": th["ke"][frames]},
    )

    t = np.asarray(steps, dtype=float) * cfg.dt
    E = th["energy"].double().numpy()
    KE = th["ke"].double().numpy()
    half = len(steps) // 2  # second half of the run: the averages (the start may be melting)
    finite_e = bool(np.isfinite(E).all())  # a direct-force model has no energy (NaN)
    slope = float(np.polyfit(t, E / N, 1)[0]) if len(t) > 2 and finite_e else float("nan")
    r, g = radial_distribution(system, zt[half:].double(), n_bins=200)
    r_peak, g_peak = first_peak(r, g)
    metrics = {
        "n_particles": N,
        "steps_per_s": cfg.steps / t_nve,
        "particle_steps_per_s": cfg.steps * N / t_nve,
        "temperature_mean": float(th["temperature"][half:].mean()),
        "potential_energy_per_particle_mean": float(th["pe"][half:].mean() / N),
        "pressure_mean": float(th["pressure"][half:].mean()),
        "energy_std_over_ke_std": float(E.std() / KE.std()) if KE.std() > 0 and finite_e else float("nan"),
        "energy_drift_per_particle_per_tau": slope,
        "g_r_peak": {"r": r_peak, "height": g_peak},
        "neighbor": system.neighbor,
        "box_length": system.box_length,
    }
    if learned:
        metrics["potential"] = {
            "folder": str(cfg.potential),
            "kind": system.kind,
            "has_energy": system.has_energy,
            "force_path": _force_path(system),
        }
        metrics["start"] = "held-out frame 0 of the folder" if probe is not None else "fcc lattice"
    figures = {
        "pair_potential.png": _pair_figure(system),
        "g_r.png": _gr_figure(r, g, r_peak, g_peak, system.density),
        "energy.png": _energy_figure(t, th, N),
    }
    if figures["pair_potential.png"] is None:  # a many-body model has no pair potential to draw
        del figures["pair_potential.png"]
    if learned:
        title = f"MD: learned {system.kind} ({cfg.potential}), N = {N}, box {system.box_length:.5g}"
        described = f"Learned {system.kind} model from {cfg.potential}, cutoff {system.pair.cutoff:g}"
    else:
        title = f"MD: {cfg.system}, N = {N}, density {cfg.density:g}"
        described = f"Cutoff {cfg.cutoff:g} ({cfg.cutoff_treatment})"
    report = Report(
        title=f"{title}, T0 = {cfg.temperature:g}, {cfg.steps} steps of {cfg.dt:g}",
        rows={"nve": {k: v for k, v in metrics.items() if isinstance(v, (int, float))}},
        columns=[
            Column("temperature_mean", "<T>"),
            Column("potential_energy_per_particle_mean", "<PE>/N", ".5g"),
            Column("pressure_mean", "<P>", ".4g"),
            Column("energy_std_over_ke_std", "std(E)/std(KE)", ".2e"),
            Column("energy_drift_per_particle_per_tau", "drift (eps/tau/N)", ".2e"),
            Column("steps_per_s", "steps/s", ".4g"),
        ],
        figures=figures,
        sections=[
            f"Averages over the second half of the run (t >= {t[half]:.3g} tau). {described}, "
            f"{system.neighbor} pair search, {cfg.dtype}. "
            f"First g(r) peak at r = {r_peak:.3f} sigma, height {g_peak:.3f}. Files: "
            "`trajectory.extxyz` (wrapped positions, momenta, `unwrapped` array), `thermo.csv`.",
            "Conventions: T = 2 (KE - |P|^2/2M) / (3N - 3) (LAMMPS compute temp/com; the total momentum P "
            "is zero here: the fcc start has none and a Langevin equilibration's is removed before NVE), "
            "P = (2 KE + W) / (3V), no tail corrections.",
        ],
        metrics=metrics,
    )
    write_run(out, cfg, report, wall_time_s=time.perf_counter() - t_start)
    _log(cfg, f"md: wrote {out}")
    return report


def _log(cfg: Config, msg: str) -> None:
    if not cfg.quiet:
        print(msg, flush=True)


def _figure(figsize=(6.4, 4.4)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, constrained_layout=True)
    return fig, fig.add_subplot(1, 1, 1)


def _force_path(system) -> str:
    """How the learned model's last force call ran (the fused C kernel, or eager torch and why)."""
    return getattr(system, "last_force_path", "eager torch")


def _pair_figure(system):
    pair = system.pair
    if hasattr(system, "pair_energy"):  # a learned pair potential
        fig, ax = _figure()
        r = torch.linspace(0.5 * pair.cutoff, pair.cutoff, 400, dtype=torch.float64)
        with torch.no_grad():
            dtype = next(system.parameters()).dtype
            ax.plot(r, system.pair_energy(r.to(dtype)).double(), color="C0")
        ax.set(xlabel="pair distance r", ylabel="phi(r)", title="Learned pair potential")
        return fig
    if not hasattr(pair, "epsilon"):
        return None
    fig, ax = _figure()
    r = torch.linspace(0.9, pair.cutoff + 0.5, 600, dtype=torch.float64)
    raw = 4 * pair.epsilon * ((pair.sigma / r) ** 12 - (pair.sigma / r) ** 6)
    ax.plot(r, raw, color="0.6", lw=1.2, ls="--", label="Lennard-Jones (no cutoff)")
    ax.plot(r, pair.energy(r), color="C0", lw=1.8, label=f"used: {pair.treatment}, rc = {pair.cutoff:g}")
    rmin = 2 ** (1 / 6) * pair.sigma
    ax.plot([rmin], [-pair.epsilon], "o", color="C3", label=r"minimum $2^{1/6}\sigma$, depth $-\varepsilon$")
    ax.axvline(pair.cutoff, color="0.3", lw=0.8, ls=":")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.set_ylim(-1.3 * pair.epsilon, 1.5 * pair.epsilon)
    ax.set_xlabel(r"pair distance r ($\sigma$)")
    ax.set_ylabel(r"u(r) ($\varepsilon$)")
    ax.set_title("Pair potential")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def _gr_figure(r, g, r_peak, g_peak, density):
    fig, ax = _figure()
    ax.plot(r, g, color="C0", lw=1.5, label="g(r), second half of the run")
    ax.plot([r_peak], [g_peak], "v", color="C3", label=f"first peak: r = {r_peak:.3f}, g = {g_peak:.2f}")
    ax.axhline(1, color="0.7", lw=0.8, ls="--", label="ideal gas")
    ax.set_xlabel(r"r ($\sigma$)")
    ax.set_ylabel("g(r)")
    ax.set_title(f"Radial distribution function (density {density:.4g})")
    ax.legend(fontsize=8)
    return fig


def _energy_figure(t, th, N):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.6), constrained_layout=True)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    for key, label, c in (("energy", "E", "k"), ("pe", "PE", "C0"), ("ke", "KE", "C3")):
        ax1.plot(t, th[key].double().numpy() / N, color=c, lw=1.2, label=label)
    ax1.set_ylabel(r"energy per particle ($\varepsilon$)")
    ax1.set_title("Energy over time (NVE, velocity Verlet)")
    ax1.legend(fontsize=8, ncol=3)
    E = th["energy"].double().numpy() / N
    ax2.plot(t, E - E[0], color="k", lw=1.0, label="E(t) - E(0)")
    ax2.set_xlabel(r"time ($\tau$)")
    ax2.set_ylabel(r"(E - E$_0$)/N ($\varepsilon$)")
    ax2.legend(fontsize=8)
    return fig


# -- command line --------------------------------------------------------------------------
def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``md`` subcommand on an argparse subparsers object (``symplearn md ...``).

    Returns:
        The subcommand's parser (its handler is set as ``func``; it returns the exit code 0).
    """
    d = Config()
    p = subparsers.add_parser("md", help="molecular dynamics of a particle system (NVE, fcc start)")
    p.add_argument(
        "system", nargs="?", default=d.system, help=f"particle system: {', '.join(MD_SYSTEMS)} (default)"
    )
    p.add_argument(
        "--potential", default=None, metavar="DIR", help="a learned potential's model folder to run instead"
    )
    # None: not given (the defaults are filled in config_from_args; --potential brings its own)
    p.add_argument("--n", type=int, default=None, help=f"number of particles, 4 k^3 (default {d.n})")
    p.add_argument("--density", type=float, default=None, help=f"number density (default {d.density})")
    p.add_argument("--temperature", type=float, default=d.temperature, help="initial temperature")
    p.add_argument("--steps", type=int, default=d.steps, help=f"NVE steps (default {d.steps})")
    p.add_argument("--dt", type=float, default=d.dt, help=f"time step in tau (default {d.dt})")
    p.add_argument("--cutoff", type=float, default=None, help=f"pair cutoff in sigma (default {d.cutoff})")
    p.add_argument(
        "--cutoff-treatment",
        default=None,
        help=f"{', '.join(CUTOFF_TREATMENTS)} (default {d.cutoff_treatment})",
    )
    p.add_argument("--equilibrate", type=int, default=0, help="Langevin BAOAB steps before NVE (default 0)")
    p.add_argument("--friction", type=float, default=d.friction, help="Langevin friction (1/tau)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--save-every", type=int, default=d.save_every, help="trajectory frame interval")
    p.add_argument("--thermo-every", type=int, default=d.thermo_every, help="thermo log interval")
    p.add_argument("--neighbor", default=d.neighbor, help="auto, vesin or all-pairs")
    p.add_argument("--dtype", default=d.dtype, help="float64 or float32")
    p.add_argument(
        "--compile",
        action="store_true",
        help="compile the pair loop with torch.compile (needs g++; ~20 s once; pays from N ~ 10^4)",
    )
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_md)
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    """The :class:`Config` of parsed ``md`` arguments (validated by its :meth:`Config.build`)."""
    d = Config()
    sizes = {
        "n": args.n,
        "density": args.density,
        "cutoff": args.cutoff,
        "cutoff_treatment": args.cutoff_treatment,
    }
    potential = getattr(args, "potential", None)
    if potential:
        given = [f"--{k.replace('_', '-')}" for k, v in sizes.items() if v is not None]
        if given:
            raise SymplearnError(
                f"--potential {potential} brings its own number of atoms, box and cutoff; "
                f"drop {', '.join(given)}"
            )
        if args.system != d.system:
            raise SymplearnError(f"give either a system ({args.system}) or --potential DIR, not both")
    sizes = {k: getattr(d, k) if v is None else v for k, v in sizes.items()}
    return replace(
        Config(),
        system=args.system,
        potential=potential,
        **sizes,
        temperature=args.temperature,
        steps=args.steps,
        dt=args.dt,
        equilibrate=args.equilibrate,
        friction=args.friction,
        seed=args.seed,
        save_every=args.save_every,
        thermo_every=args.thermo_every,
        neighbor=args.neighbor,
        compile=args.compile,
        dtype=args.dtype,
        quiet=args.quiet,
    )


def _cmd_md(args: argparse.Namespace) -> int:
    setup = config_from_args(args).build()
    md.retain_freed_memory()  # the command owns its process: keep freed pair arrays for reuse
    cfg = setup.config
    report = run(setup, args.out)
    if not cfg.quiet:
        m = report.metrics
        print(
            f"md: <T> = {m['temperature_mean']:.4f}, <PE>/N = {m['potential_energy_per_particle_mean']:.4f}, "
            f"<P> = {m['pressure_mean']:.4f}, {m['steps_per_s']:.0f} steps/s"
        )
    return 0
