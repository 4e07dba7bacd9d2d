"""Roll a trained model out from fresh initial states and compare it with the truth:
``symplearn rollout MODEL_DIR --steps 1000 --dt 0.1 --out DIR``.

The initial states are sampled from the system the model was trained on (in its data's energy
range, another seed than training); the truth is the Gauss-Legendre-6 reference from the same
states. Writes ``trajectory.npz`` (``t (T,)``, ``z``, ``z_true (T, K, 2n)``, ``energy_true (T, K)``,
``energy_model (T, K)`` for a model with an energy), ``metrics.json`` (true energy error, state
error), ``config.json``, ``report.md``, ``energy_error.png`` and ``phase_portrait.png``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .. import diagnostics as dg
from .. import plotting
from .._errors import NonFiniteError, SymplearnError
from .._files import check_output_folder
from ..dynamics import FlowMap, HamiltonianDynamics, discretize
from ..integrators import reference_trajectory
from ..modelio import load_model, load_run_config
from ..report import Column, Report, write_run
from . import args as _args
from ._common import check_float, check_int, check_memory, log, rollout, system_from_config
from ._states import to_canonical_states, to_model_states

DESCRIPTION = "roll a trained model out from fresh initial states and compare it with the truth"


@dataclass
class Config:
    """Settings of a model rollout.

    Attributes:
        model_dir: a model folder written by ``symplearn train`` / :func:`symplearn.save`.
        steps: number of steps.
        dt: step size; ``None`` for a flow map (a SympNet steps with its own dt). A continuous
            model needs one.
        integrator: integrator name; ``None``: the model's ``default_integrator`` (Verlet for a
            separable HNN, implicit midpoint for an HNN, RK4 for an MLP field or an LNN). Must be
            ``None`` for a flow map.
        n_traj: number of initial states.
        seed: seed of the initial states (default 1234: not the training data's).
        save_every: keep every k-th state.
        quiet: no progress or summary lines.
    """

    model_dir: str
    steps: int
    dt: float | None = None
    integrator: str | None = None
    n_traj: int = 8
    seed: int = 1234
    save_every: int = 1
    quiet: bool = False

    def resolved(self) -> Config:
        """Validate (loading the model folder) and return the configuration actually run: the
        step and the integrator's canonical name (``"own step"`` for a flow map).

        Raises:
            SymplearnError: a folder that is not a model folder, a step that does not fit the
                model, an integrator that does not suit it, non-positive counts.
        """
        check_int("steps", self.steps)
        check_int("n_traj", self.n_traj)
        check_int("save_every", self.save_every)
        model, system = _load(self.model_dir)
        flow = _flow(model, self.dt, self.integrator)
        n_saved = self.steps // self.save_every + 1
        check_memory(
            n_saved * self.n_traj * system.dim * 8 * 4,
            f"{n_saved} saved states of {self.n_traj} trajectories (model and truth)",
            "keep fewer states (--save-every), take fewer steps or fewer trajectories",
        )
        name = "own step" if isinstance(model, FlowMap) else flow.integrator.name
        return replace(self, model_dir=str(self.model_dir), dt=float(flow.dt), integrator=name)


def _load(model_dir):
    cfg = load_run_config(model_dir)
    system = system_from_config(cfg, model_dir)
    return load_model(model_dir), system


def _flow(model, dt, integrator) -> FlowMap:
    """The flow map of the rollout: a flow map model as it is (its own dt), a continuous model
    discretised by ``integrator`` (``None``: its own default) at ``dt``."""
    if isinstance(model, FlowMap):
        if dt is not None and abs(float(dt) - model.dt) > 1e-12 * model.dt:
            raise SymplearnError(
                f"this {model.config.get('kind')} is a flow map of step {model.dt:g}; use dt "
                f"{model.dt:g} (--dt {model.dt:g}) or leave it out"
            )
        if integrator not in (None, "own step"):
            raise SymplearnError(
                f"this {model.config.get('kind')} is a flow map with its own step; it takes no "
                f"integrator (got {integrator!r}): leave --integrator out"
            )
        return discretize(model)
    if dt is None:
        raise SymplearnError("dt (--dt) is required for continuous models (SympNets use their own step)")
    return discretize(model, integrator, check_float("dt", dt, positive=True))


def run(config: Config, out: str | Path) -> Report:
    """Roll the model out and write the run folder ``out`` (replaced whole).

    Args:
        config: the settings (validated here first).
        out: the run folder.

    Returns:
        The :class:`~symplearn.report.Report`; ``report.metrics`` holds ``max_rel_energy_error``
        and ``final_rel_energy_error`` (true energy along the model's trajectories, relative to
        the initial states' energy), ``state_error_final`` (mean over trajectories) and
        ``state_error_max`` (Euclidean distance to the reference), ``t_final``.

    Raises:
        SymplearnError: an invalid configuration or output folder (before any work);
            :class:`~symplearn.NonFiniteError` when the model's trajectory diverges.
    """
    t_start = time.perf_counter()
    cfg = config.resolved()
    out = check_output_folder(out)
    model, system = _load(cfg.model_dir)
    flow = _flow(model, cfg.dt, None if cfg.integrator == "own step" else cfg.integrator)
    dtype = next(model.parameters()).dtype
    erange = load_run_config(cfg.model_dir).get("data", {}).get("energy_range")
    z0 = system.sample(
        cfg.n_traj, energy_range=tuple(erange) if erange else None, seed=cfg.seed, dtype=torch.float64
    )
    z0 = z0.to(dtype).double()  # the states the model actually starts from, for truth too
    x0 = to_model_states(model, system, z0).to(dtype)
    t, x, wall = rollout(flow, x0, cfg.steps, save_every=cfg.save_every, quiet=cfg.quiet)
    z = to_canonical_states(model, system, x.double())
    if not bool(torch.isfinite(z).all()):
        raise NonFiniteError(
            "the model's trajectory became NaN or infinite (the rollout diverged); "
            "try a smaller --dt, fewer --steps, or another integrator"
        )
    with torch.no_grad():
        z_true = reference_trajectory(system, z0, cfg.dt, cfg.steps, save_every=cfg.save_every).z
        energy_true = system.hamiltonian(z)
        e0 = system.hamiltonian(z0)
    err = dg.invariant_error(energy_true, t, reference=e0)
    dist = (z - z_true).norm(dim=-1)  # (T, K)
    kind = model.config.get("kind")
    metrics = {
        "model": kind,
        "system": system.name,
        "integrator": cfg.integrator,
        "dt": cfg.dt,
        "steps": cfg.steps,
        "n_trajectories": cfg.n_traj,
        "t_final": float(t[-1]),
        "max_rel_energy_error": err.max,
        "final_rel_energy_error": err.final,
        "energy_verdict": err.verdict,
        "state_error_final": float(dist[-1].mean()),
        "state_error_max": float(dist.max()),
        "integration_time_s": wall,
    }
    arrays = {"t": t, "z": z, "z_true": z_true, "energy_true": energy_true}
    if isinstance(model, HamiltonianDynamics):
        with torch.no_grad():
            arrays["energy_model"] = e_model = model.hamiltonian(x).double()
        metrics["max_rel_model_energy_error"] = dg.invariant_error(e_model, t).max
    n = system.n_dof
    label = f"{kind} on {system.name}, {cfg.integrator}, dt={cfg.dt:g}"
    figures = {
        "energy_error.png": plotting.energy_error_figure(
            t.numpy(), {kind: err.errors.numpy()}, title=f"True energy error: {label}"
        ),
        "phase_portrait.png": plotting.phase_portrait_figure(
            {"true": z_true[..., [0, n]].numpy(), kind: z[..., [0, n]].numpy()},
            hamiltonian=system.hamiltonian if n == 1 else None,
            title=f"Phase portrait: {label}",
        ),
    }
    keys = ("max_rel_energy_error", "final_rel_energy_error", "state_error_final", "state_error_max")
    report = Report(
        title=f"Rollout: {label}, {cfg.steps} steps",
        rows={kind: {k: metrics[k] for k in keys}},
        columns=[
            Column("max_rel_energy_error", "max rel. energy error", ".3e"),
            Column("final_rel_energy_error", "final rel. energy error", ".3e"),
            Column("state_error_final", "final state error", ".3e"),
            Column("state_error_max", "max state error", ".3e"),
        ],
        figures=figures,
        sections=[
            f"The model in `{cfg.model_dir}` from {cfg.n_traj} initial states (seed {cfg.seed}) to "
            f"t = {metrics['t_final']:g}; truth: Gauss-Legendre 6 with 10 sub-steps from the same "
            f"states. Energy error {err.verdict}. Arrays in `trajectory.npz`."
        ],
        metrics=metrics,
        arrays={"trajectory.npz": arrays},
    )
    write_run(out, cfg, report, wall_time_s=time.perf_counter() - t_start, replace=True)
    log(
        cfg.quiet,
        f"max relative energy error {err.max:.3e}, final state error {metrics['state_error_final']:.3e} "
        f"over t = {metrics['t_final']:g}; results in {out}",
    )
    return report


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``rollout`` subcommand (its handler is the parser's ``func`` default)."""
    p = subparsers.add_parser("rollout", help="roll a trained model out from test initial states")
    p.add_argument("model_dir", help="a model folder written by `symplearn train`")
    p.add_argument("--steps", type=_args.pos_int, required=True)
    p.add_argument("--dt", type=_args.pos_float, default=None, help="step (SympNets: their own)")
    p.add_argument(
        "--integrator",
        default=None,
        help="default: the model's (verlet for a separable HNN, implicit midpoint for an HNN, rk4 otherwise)",
    )
    p.add_argument("--n-traj", type=_args.pos_int, default=8)
    p.add_argument("--save-every", type=_args.pos_int, default=1)
    _args.add_common(p, seed=1234)
    p.set_defaults(func=_main)
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    """The :class:`Config` of parsed ``rollout`` arguments."""
    return Config(
        model_dir=args.model_dir,
        steps=args.steps,
        dt=args.dt,
        integrator=args.integrator,
        n_traj=args.n_traj,
        seed=args.seed,
        save_every=args.save_every,
        quiet=args.quiet,
    )


def _main(args: argparse.Namespace) -> int:
    run(config_from_args(args), args.out)
    return 0
