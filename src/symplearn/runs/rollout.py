"""Roll a trained model out from fresh initial states and compare it with the truth:
``symplearn rollout MODEL_DIR --steps 1000 --dt 0.1 --out DIR``.

The initial states are sampled from the system the model was trained on (in its data's energy
range, another seed than training); the truth is the Gauss-Legendre-6 reference from the same
states. A model trained on a user's trajectory file (no system, ``docs/your_data.md``) starts
instead from the first states of that file's held-out trajectories and is compared with the
recorded states (``state_error_*``; no true energy, so the energy columns are empty and the
model's own energy drift is reported when it has one; ``trajectory.npz`` then holds ``t``, ``t0``,
``z``, ``t_data``, ``z_data``). Writes ``trajectory.npz`` (``t (T,)``, ``z``, ``z_true (T, K, 2n)``,
``energy_true (T, K)``, ``energy_model (T, K)`` for a model with an energy), ``metrics.json``
(true energy error, state error), ``config.json``, ``report.md``, ``energy_error.png`` and
``phase_portrait.png``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .. import diagnostics as dg
from .. import plotting
from .._errors import NonFiniteError, SymplearnError
from .._files import check_output_folder
from ..dynamics import FlowMap, HamiltonianDynamics
from ..integrators import integrate, reference_trajectory
from ..integrators.discretize import discretize
from ..modelio import load_model, load_run_config
from ..report import Column, Report, write_run
from . import args as _args
from ._common import check_float, check_int, check_memory, log, system_from_config
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
        step and the integrator's canonical name (``"own step"`` for a flow map); :meth:`build`'s
        ``config``.

        Raises:
            SymplearnError: as :meth:`build`.
        """
        return self.build().config

    def build(self) -> Setup:
        """Validate and make the names objects, once: the :class:`Setup` that :func:`run` runs
        (the model folder loaded, its true system, the rollout's flow map).

        Raises:
            SymplearnError: a folder that is not a model folder, a step that does not fit the
                model, an integrator that does not suit it, non-positive counts.
        """
        check_int("steps", self.steps)
        check_int("n_traj", self.n_traj)
        check_int("save_every", self.save_every)
        folder_config, model, system = _load(self.model_dir)
        flow = _flow(model, self.dt, self.integrator)
        n_saved = self.steps // self.save_every + 1
        check_memory(
            n_saved * self.n_traj * model.dim * 8 * 4,
            f"{n_saved} saved states of {self.n_traj} trajectories (model and truth)",
            "keep fewer states (--save-every), take fewer steps or fewer trajectories",
        )
        name = "own step" if isinstance(model, FlowMap) else flow.integrator.name
        config = replace(self, model_dir=str(self.model_dir), dt=float(flow.dt), integrator=name)
        return Setup(config=config, model=model, system=system, flow=flow, folder_config=folder_config)


@dataclass(frozen=True, eq=False)
class Setup:
    """A rollout with its names made objects (:meth:`Config.build`, once): what :func:`run` runs.

    Attributes:
        config: the validated configuration actually run (recorded in ``config.json``).
        model: the model loaded from ``config.model_dir``.
        system: the true system it was trained on; ``None`` for a model trained on a user's
            trajectory file.
        flow: the rollout's flow map (a flow map model as it is, a continuous one discretised).
        folder_config: the model folder's ``config.json``.
    """

    config: Config
    model: Any
    system: Any
    flow: FlowMap
    folder_config: dict


def _load(model_dir):
    """``(the folder's config.json, model, true system)``; the system is ``None`` for a model
    trained on a user's trajectory file (then the rollout compares with that file's held-out
    trajectories)."""
    cfg = load_run_config(model_dir)
    if "system" not in cfg and _trajectory_file(cfg) is not None:
        return cfg, load_model(model_dir), None
    system = system_from_config(cfg, model_dir)
    return cfg, load_model(model_dir), system


def _trajectory_file(cfg) -> dict | None:
    """The ``data`` section of a model folder trained on a user's trajectory file, or ``None``."""
    data = cfg.get("data") if isinstance(cfg, dict) else None
    if isinstance(data, dict) and data.get("source") == "trajectory file":
        return data
    return None


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


def run(config: Config | Setup, out: str | Path) -> Report:
    """Roll the model out and write the run folder ``out`` (replaced whole).

    Args:
        config: the settings (validated and built here first, :meth:`Config.build`), or the
            :class:`Setup` they built.
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
    setup = config if isinstance(config, Setup) else config.build()
    cfg, model, system, flow = setup.config, setup.model, setup.system, setup.flow
    out = check_output_folder(out)
    if system is None:
        return _run_on_file(setup, out, t_start)
    dtype = next(model.parameters()).dtype
    erange = setup.folder_config.get("data", {}).get("energy_range")
    z0 = system.sample(
        cfg.n_traj, energy_range=tuple(erange) if erange else None, seed=cfg.seed, dtype=torch.float64
    )
    z0 = z0.to(dtype).double()  # the states the model actually starts from, for truth too
    x0 = to_model_states(model, system, z0).to(dtype)
    traj = integrate(
        flow, x0, cfg.steps, save_every=cfg.save_every, grad=False, trace=True, progress=not cfg.quiet
    )
    t, x, wall = traj.t, traj.z, traj.wall_s
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


def _file_trajectories(setup: Setup):
    """The held-out trajectories of the file a model was trained on, in the model's coordinates:
    ``(times (T, K), states (T, K, 2n), data dt, which split, file)``."""
    from ..datasets import TrainingData, load_trajectories

    cfg, model = setup.config, setup.model
    data = _trajectory_file(setup.folder_config)
    file = data.get("file")
    where = f"{cfg.model_dir} was trained on the trajectory file {file!r}, which names no system:"
    if not isinstance(file, str) or not Path(file).is_file():
        raise SymplearnError(
            f"{where} a rollout starts from and compares with that file's held-out trajectories, "
            f"and the file is not there; put it back where it was"
        )
    ds = load_trajectories(
        file, seed=int(data.get("seed", 0)), test_fraction=float(data.get("test_fraction", 0.2))
    )
    if ds.metadata["file_sha256"] != data.get("file_sha256"):
        raise SymplearnError(
            f"{where} the file has changed since the model was trained (its SHA-256 differs); "
            f"a rollout compares with the trajectories it was trained and tested on"
        )
    td = TrainingData.from_dataset(ds)
    if getattr(model, "state_kind", "canonical") == "lagrangian":
        td = td.to_lagrangian()  # (q, q_dot): the data's own velocities, or finite differences
    split = "test" if len(td.test_idx) else "train"
    return td.times(split), td.states(split), ds.dt, split, file


def _run_on_file(setup: Setup, out: Path, t_start: float) -> Report:
    """Rollout of a model trained on a user's trajectory file (no system): from the first states
    of the file's held-out trajectories (the training one when there is a single trajectory), at
    their own start times, compared with the recorded states at the file's times."""
    from ..integrators import integrate

    cfg, model, flow = setup.config, setup.model, setup.flow
    times, states, data_dt, split, file = _file_trajectories(setup)
    ratio = data_dt / float(flow.dt)
    stride = round(ratio)
    if stride < 1 or abs(ratio - stride) > 1e-6 * ratio:
        raise SymplearnError(
            f"the data's time step is {data_dt:g}: a rollout compared with it needs a step that "
            f"divides it (--dt {data_dt:g}, {data_dt / 2:g}, ...), got {float(flow.dt):g}"
        )
    dtype = next(model.parameters()).dtype
    K = min(cfg.n_traj, states.shape[1])
    x0, t0 = states[0, :K].to(dtype), times[0, :K].double()
    x = torch.empty(cfg.steps + 1, K, model.dim, dtype=torch.float64)
    start = time.perf_counter()
    with torch.inference_mode():  # one rollout per start time (trajectories may start apart)
        for t_first in torch.unique(t0).tolist():
            sel = (t0 == t_first).nonzero()[:, 0]
            x[:, sel] = integrate(flow, x0[sel], cfg.steps, t0=float(t_first)).z.double()
    wall = time.perf_counter() - start
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteError(
            "the model's trajectory became NaN or infinite (the rollout diverged); "
            "try a smaller --dt, fewer --steps, or another integrator"
        )
    t_rel = torch.arange(cfg.steps + 1, dtype=torch.float64) * float(flow.dt)
    J = min(states.shape[0] - 1, cfg.steps // stride)  # recorded times the rollout reaches
    z_data = states[: J + 1, :K].double()
    dist = (x[::stride][: J + 1] - z_data).norm(dim=-1)  # (J + 1, K)
    kind = model.config.get("kind")
    name = Path(file).name
    metrics = {
        "model": kind,
        "system": None,
        "data_file": file,
        "compared_with": f"{split} trajectories of the file",
        "integrator": cfg.integrator,
        "dt": cfg.dt,
        "steps": cfg.steps,
        "n_trajectories": K,
        "t_final": float(t_rel[-1]),
        "t_compared": float(J * data_dt),
        "max_rel_energy_error": None,  # no system: no true energy
        "final_rel_energy_error": None,
        "state_error_final": float(dist[-1].mean()),
        "state_error_max": float(dist.max()),
        "integration_time_s": wall,
    }
    keep = slice(None, None, cfg.save_every)
    arrays = {
        "t": t_rel[keep],
        "t0": t0,
        "z": x[keep],
        "t_data": (torch.arange(J + 1) * data_dt),
        "z_data": z_data,
    }
    figures = {}
    n = model.dim // 2
    if isinstance(model, HamiltonianDynamics):
        with torch.no_grad():
            arrays["energy_model"] = e_model = model.hamiltonian(x.to(dtype)).double()
        own = dg.invariant_error(e_model, t_rel)
        metrics["max_rel_model_energy_error"] = own.max
        figures["energy_error.png"] = plotting.energy_error_figure(
            t_rel[keep].numpy(),
            {kind: own.errors[keep].numpy()},
            title=f"The model's own energy along its rollout: {kind} on {name}",
        )
    figures["phase_portrait.png"] = plotting.phase_portrait_figure(
        {"data": z_data[..., [0, n]].numpy(), kind: x[: J * stride + 1][..., [0, n]].numpy()},
        labels=("q", "q_dot" if getattr(model, "state_kind", "") == "lagrangian" else "p"),
        title=f"Phase portrait: {kind} on {name}, {cfg.integrator}, dt={cfg.dt:g}",
    )
    keys = ("state_error_final", "state_error_max", "t_compared")
    report = Report(
        title=f"Rollout: {kind} on {name}, {cfg.integrator}, dt={cfg.dt:g}, {cfg.steps} steps",
        rows={kind: {k: metrics[k] for k in keys}},
        columns=[
            Column("state_error_final", "final state error", ".3e"),
            Column("state_error_max", "max state error", ".3e"),
            Column("t_compared", "time compared", ".3g"),
        ],
        figures=figures,
        sections=[
            f"The model in `{cfg.model_dir}` was trained on the trajectory file `{file}`, which names "
            f"no system: it starts from the first states of {K} of the file's {split} trajectories "
            f"(at their own start times) and is compared with the recorded states over the "
            f"{J + 1} recorded times its {cfg.steps} steps reach (t up to {J * data_dt:g} after each "
            f"start). No true energy is known; "
            + (
                f"the model's own energy drifts by {metrics['max_rel_model_energy_error']:.3e} (relative)."
                if "max_rel_model_energy_error" in metrics
                else "the model has no energy of its own."
            )
        ],
        metrics=metrics,
        arrays={"trajectory.npz": arrays},
    )
    write_run(out, cfg, report, wall_time_s=time.perf_counter() - t_start, replace=True)
    log(
        cfg.quiet,
        f"final state error {metrics['state_error_final']:.3e} against the {split} trajectories of "
        f"{name} over t = {metrics['t_compared']:g}; results in {out}",
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
    run(config_from_args(args).build(), args.out)
    return 0
