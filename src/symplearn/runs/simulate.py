"""Integrate a ground-truth system: ``symplearn simulate pendulum --dt 0.05 --steps 2000 --out DIR``.

Writes the run folder: ``trajectory.npz`` (``t (T,)``, ``z (T, K, 2n)``, ``energy (T, K)``),
``metrics.json`` (relative energy error, conserved quantities, speed), ``config.json``,
``report.md`` and the figures ``energy_error.png`` and ``phase_portrait.png``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .. import diagnostics as dg
from .. import plotting
from .._errors import SymplearnError
from .._files import check_output_folder
from ..dynamics import FlowMap
from ..integrators import integrate
from ..integrators.discretize import discretize
from ..report import Column, Report, write_run
from ..systems import get_system
from ..systems.base import format_params
from . import args as _args
from ._common import check_dtype, check_float, check_int, check_memory, log

DESCRIPTION = "integrate a ground-truth system, write trajectory and figures"


@dataclass
class Config:
    """Settings of a simulation.

    Attributes:
        system: system name (``symplearn systems``).
        dt: step size.
        steps: number of steps.
        params: system parameters (the others keep their defaults; :meth:`resolved` fills in all).
        integrator: integrator name; ``None``: the system's ``default_integrator`` (Verlet for a
            separable Hamiltonian, implicit midpoint otherwise).
        n_traj: number of sampled initial states (when ``z0`` is not given).
        z0: explicit initial states, each ``(q's, p's)`` of length 2n; ``None`` samples them.
        energy: energy range ``(low, high)`` of sampled states; ``None``: the system's.
        save_every: keep every k-th state.
        seed: seed of the sampled initial states.
        dtype: ``"float64"`` or ``"float32"``.
        quiet: no progress or summary lines.
    """

    system: str
    dt: float
    steps: int
    params: dict[str, float] = field(default_factory=dict)
    integrator: str | None = None
    n_traj: int = 4
    z0: tuple[tuple[float, ...], ...] | None = None
    energy: tuple[float, float] | None = None
    save_every: int = 1
    seed: int = 0
    dtype: str = "float64"
    quiet: bool = False

    def resolved(self) -> Config:
        """Validate and return the configuration actually run (the system's full parameters,
        the integrator's canonical name): :meth:`build`'s ``config``.

        Raises:
            SymplearnError: as :meth:`build`.
        """
        return self.build().config

    def build(self) -> Setup:
        """Validate and make the names objects, once: the :class:`Setup` that :func:`run` runs
        (the configuration actually run, the system, its flow map, the dtype).

        Raises:
            SymplearnError: what is wrong and what would work (unknown names, a non-positive step,
                an integrator that does not suit the system, states of the wrong length, ...).
        """
        system = get_system(self.system, **dict(self.params or {}))
        check_float("dt", self.dt, positive=True)
        check_int("steps", self.steps)
        check_int("save_every", self.save_every)
        check_int("n_traj", self.n_traj)
        check_dtype(self.dtype)
        flow = discretize(system, self.integrator, float(self.dt))  # checks the pair
        z0 = None
        if self.z0 is not None:
            z0 = tuple(tuple(float(x) for x in row) for row in self.z0)
            for row in z0:
                if len(row) != system.dim:
                    raise SymplearnError(
                        f"z0 state {','.join(f'{x:g}' for x in row)} has {len(row)} numbers; this "
                        f"system's states have {system.dim} (q's then p's)"
                    )
                if not all(math.isfinite(x) for x in row):
                    raise SymplearnError(f"z0 state {row} contains a non-finite number")
            if not z0:
                raise SymplearnError("z0 is empty; give at least one state or None to sample them")
        energy = None
        if self.energy is not None:
            energy = tuple(float(e) for e in self.energy)
            if len(energy) != 2 or not all(map(math.isfinite, energy)) or energy[0] > energy[1]:
                raise SymplearnError(
                    f"energy must be a range (low, high) with low <= high, got {self.energy}"
                )
        k = len(z0) if z0 is not None else self.n_traj
        n_saved = self.steps // self.save_every + 1
        check_memory(
            n_saved * k * system.dim * torch.finfo(check_dtype(self.dtype)).bits / 8 * 3,
            f"{n_saved} saved states of {k} trajectories",
            "keep fewer states (--save-every), take fewer steps or fewer trajectories",
        )
        config = replace(
            self,
            params=dict(system.params),
            integrator=flow.integrator.name,
            dt=float(self.dt),
            z0=z0,
            energy=energy,
        )
        return Setup(config=config, system=system, flow=flow, dtype=check_dtype(self.dtype))


@dataclass(frozen=True, eq=False)
class Setup:
    """A simulation with its names made objects (:meth:`Config.build`, once): what :func:`run` runs.

    Attributes:
        config: the validated configuration actually run (recorded in ``config.json``).
        system: the ground-truth system.
        flow: its flow map (the system discretised by the integrator at ``dt``).
        dtype: the torch dtype of the states.
    """

    config: Config
    system: Any
    flow: FlowMap
    dtype: torch.dtype


def run(config: Config | Setup, out: str | Path) -> Report:
    """Integrate the system and write the run folder ``out`` (replaced whole).

    Args:
        config: the settings (validated and built here first, :meth:`Config.build`), or the
            :class:`Setup` they built.
        out: the run folder.

    Returns:
        The :class:`~symplearn.report.Report`; ``report.metrics`` holds ``max_rel_energy_error``,
        ``final_rel_energy_error`` (over time and trajectories), ``energy_verdict``, the largest
        absolute error of each other conserved quantity (``max_abs_<name>_error``), ``t_final``,
        ``state_steps_per_s``.

    Raises:
        SymplearnError: an invalid configuration or output folder (before any work).
    """
    t_start = time.perf_counter()
    setup = config if isinstance(config, Setup) else config.build()
    cfg, system, flow, dtype = setup.config, setup.system, setup.flow, setup.dtype
    out = check_output_folder(out)
    if cfg.z0 is not None:
        z0 = torch.tensor(cfg.z0, dtype=dtype)
    else:
        z0 = system.sample(cfg.n_traj, energy_range=cfg.energy, seed=cfg.seed, dtype=dtype)
    traj = integrate(
        flow, z0, cfg.steps, save_every=cfg.save_every, grad=False, trace=True, progress=not cfg.quiet
    )
    t, z, wall = traj.t, traj.z, traj.wall_s
    energy = system.hamiltonian(z)  # (T, K)
    err = dg.invariant_error(energy, t)
    name = flow.integrator.name
    metrics = {
        "system": system.name,
        "integrator": name,
        "dt": cfg.dt,
        "max_rel_energy_error": err.max,
        "final_rel_energy_error": err.final,
        "energy_verdict": err.verdict,
        "n_trajectories": int(z.shape[1]),
        "n_steps": cfg.steps,
        "t_final": float(t[-1]),
        "integration_time_s": wall,
        "state_steps_per_s": cfg.steps * z.shape[1] / max(wall, 1e-12),
    }
    for qname, val in system.conserved_quantities(z).items():
        if qname == "energy":
            continue
        d = (val - val[0]).abs()
        d = d.flatten(2).norm(dim=-1) if d.ndim > 2 else d
        metrics[f"max_abs_{qname}_error"] = float(d.max())
    n = system.n_dof
    label = f"{system.name}, {name}, dt={cfg.dt:g}"
    figures = {
        "energy_error.png": plotting.energy_error_figure(
            t.numpy(), {name: err.errors.numpy()}, title=f"Relative energy error: {label}"
        ),
        "phase_portrait.png": plotting.phase_portrait_figure(
            {name: z[..., [0, n]].numpy()},
            hamiltonian=system.hamiltonian if n == 1 else None,
            title=f"Phase portrait (q{'' if n == 1 else '1'}, p{'' if n == 1 else '1'}): {label}",
        ),
    }
    report = Report(
        title=f"Simulation: {label}, {cfg.steps} steps",
        rows={name: {k: metrics[k] for k in ("max_rel_energy_error", "final_rel_energy_error", "t_final")}},
        columns=[
            Column("max_rel_energy_error", "max rel. energy error", ".3e"),
            Column("final_rel_energy_error", "final rel. energy error", ".3e"),
            Column("t_final", "t final", ".4g"),
        ],
        figures=figures,
        sections=[
            f"{metrics['n_trajectories']} trajector{'y' if z.shape[1] == 1 else 'ies'} of {system.name} "
            f"({format_params(cfg.params) or 'no parameters'}), "
            f"{cfg.dtype}; energy error {err.verdict} ({err.mode}). States in `trajectory.npz` "
            "(`t (T,)`, `z (T, K, 2n)`, `energy (T, K)`)."
        ],
        metrics=metrics,
        arrays={"trajectory.npz": {"t": t, "z": z, "energy": energy}},
    )
    write_run(out, cfg, report, wall_time_s=time.perf_counter() - t_start, replace=True)
    log(
        cfg.quiet,
        f"max relative energy error {err.max:.3e} over t = {metrics['t_final']:g} ({wall:.2f} s); "
        f"results in {out}",
    )
    return report


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``simulate`` subcommand (its handler is the parser's ``func`` default)."""
    p = subparsers.add_parser(
        "simulate", help="integrate a ground-truth system, write trajectory and figures"
    )
    p.add_argument("system", help="system name (see `symplearn systems`)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="system parameter, repeatable")
    p.add_argument(
        "--integrator", default=None, help="integrator name (default: the system's: verlet if separable)"
    )
    p.add_argument("--dt", type=_args.pos_float, required=True, help="step size")
    p.add_argument("--steps", type=_args.pos_int, required=True, help="number of steps")
    p.add_argument(
        "--n-traj", type=_args.pos_int, default=4, help="number of sampled trajectories (default 4)"
    )
    p.add_argument(
        "--z0",
        action="append",
        metavar="Q..,P..",
        help="explicit initial state, q's then p's (e.g. --z0 1.0,0.0); repeatable",
    )
    p.add_argument(
        "--energy", type=float, nargs=2, metavar=("EMIN", "EMAX"), help="energy range of sampled states"
    )
    p.add_argument("--save-every", type=_args.pos_int, default=1, help="keep every k-th state (default 1)")
    p.add_argument("--dtype", choices=_args.DTYPE_NAMES, default="float64")
    _args.add_common(p)
    p.set_defaults(func=_main)
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    """The :class:`Config` of parsed ``simulate`` arguments."""
    return Config(
        system=args.system,
        dt=args.dt,
        steps=args.steps,
        params=_args.parse_params(args.param),
        integrator=args.integrator,
        n_traj=args.n_traj,
        z0=_args.parse_states(args.z0),
        energy=None if args.energy is None else tuple(args.energy),
        save_every=args.save_every,
        seed=args.seed,
        dtype=args.dtype,
        quiet=args.quiet,
    )


def _main(args: argparse.Namespace) -> int:
    run(config_from_args(args).build(), args.out)
    return 0
