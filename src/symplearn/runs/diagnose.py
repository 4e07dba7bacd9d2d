"""Geometric diagnostics of a system or a trained model:
``symplearn diagnose pendulum --out DIR`` or ``symplearn diagnose MODEL_DIR --out DIR``.

For a continuous dynamics: divergence of the field (zero for a Hamiltonian one), the loop
integral of ``i_X omega`` (zero for a field with an energy); for its flow map (the dynamics
discretised by an integrator, or a SympNet's own step): the symplecticity defect of one step, the
transported area of a loop (Liouville), the energy error along a few trajectories, optionally the
Poisson bracket ``{f, H}`` of an observable, a Poincare section (n >= 2) and the largest Lyapunov
exponent. Writes ``metrics.json``, ``config.json``, ``report.md`` and the figures.
"""

from __future__ import annotations

import argparse
import ast
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .. import diagnostics as dg
from .. import plotting
from .._errors import SymplearnError
from .._files import check_output_folder
from ..dynamics import FlowMap, HamiltonianDynamics, SeparableHamiltonian
from ..geometry import divergence
from ..integrators import integrate
from ..integrators.discretize import discretize
from ..modelio import load_model, load_run_config
from ..report import Column, Report, write_run
from ..systems import SYSTEMS, get_system
from . import args as _args
from ._common import check_float, check_int, system_from_config
from ._states import is_lagrangian

DESCRIPTION = "geometric diagnostics (divergence, loop integral, symplecticity, area) of a system or model"


def exact_flow_integrator(dynamics: Any) -> str:
    """The integrator that stands in for the exact flow of a continuous dynamics in the
    diagnostics: Verlet where ``H = T(p) + V(q)`` separates (explicit, symplectic), Gauss-Legendre 4
    otherwise (implicit, symplectic, any H). The one place that decides it."""
    return "verlet" if isinstance(dynamics, SeparableHamiltonian) else "gauss-legendre-4"


@dataclass
class Config:
    """Settings of a diagnosis.

    Attributes:
        target: a system name (``symplearn systems``) or a model folder.
        params: system parameters (a system target only).
        dt: step of the flow map (a SympNet uses its own).
        steps: steps of the transported loop, the energy trajectories, the Poincare section and
            the Lyapunov estimate.
        integrator: integrator name; ``None``: :func:`exact_flow_integrator`. Must be ``None``
            for a flow map.
        n_points: sampled states for the field statistics (divergence, symplecticity, bracket).
        seed: seed of the sampled states.
        observable: an expression ``f(q, p)`` (see :func:`parse_observable`) for ``{f, H}``.
        loop: vertices ``((q0, p0), ...)`` of a closed polygon in the (q0, p0) plane (the first
            not repeated; other coordinates: those of a sampled state); ``None``: a small circle.
        lyapunov: also estimate the largest Lyapunov exponent.
        quiet: no progress or summary lines.
    """

    target: str
    params: dict[str, float] = field(default_factory=dict)
    dt: float = 0.05
    steps: int = 400
    integrator: str | None = None
    n_points: int = 256
    seed: int = 0
    observable: str | None = None
    loop: tuple[tuple[float, float], ...] | None = None
    lyapunov: bool = False
    quiet: bool = False

    def resolved(self) -> Config:
        """Validate (loading a model folder) and return the configuration actually run: the
        system's full parameters, the step and the integrator's canonical name (``"own step"``
        for a flow map); :meth:`build`'s ``config``.

        Raises:
            SymplearnError: as :meth:`build`.
        """
        return self.build().config

    def build(self) -> Setup:
        """Validate and make the names objects, once: the :class:`Setup` that :func:`run` runs
        (the dynamics, a system or the model folder loaded, the true system, the flow map, the
        parsed observable).

        Raises:
            SymplearnError: an unknown target, a Lagrangian model, non-positive numbers, a bad
                observable or loop, an integrator that does not suit the dynamics.
        """
        check_int("steps", self.steps)
        check_int("n_points", self.n_points, minimum=2)  # the default loop's radius needs a spread
        dyn, system, label = _target(self.target, self.params)
        fmap = _flow(dyn, self.dt, self.integrator)
        observable = None
        if self.observable is not None:
            observable = parse_observable(self.observable, system.n_dof)
        loop = None
        if self.loop is not None:
            loop = tuple((float(a), float(b)) for a, b in self.loop)
            if len(loop) < 3 or not all(math.isfinite(x) for pt in loop for x in pt):
                raise SymplearnError(
                    f"loop needs at least 3 finite (q, p) vertices, got {len(loop)}: {self.loop}"
                )
        name = "own step" if isinstance(dyn, FlowMap) else fmap.integrator.name
        params = {} if _is_model_folder(self.target) else dict(system.params)
        config = replace(self, params=params, dt=float(fmap.dt), integrator=name, loop=loop)
        return Setup(
            config=config, dynamics=dyn, system=system, label=label, flow=fmap, observable=observable
        )


@dataclass(frozen=True, eq=False)
class Setup:
    """A diagnosis with its names made objects (:meth:`Config.build`, once): what :func:`run` runs.

    Attributes:
        config: the validated configuration actually run (recorded in ``config.json``).
        dynamics: the target's dynamics (the system, or the model loaded from its folder, in
            float64).
        system: the true system (the model folder's for a model).
        label: the target's name in the report.
        flow: the flow map diagnosed (the dynamics discretised, or a flow map model itself).
        observable: the parsed ``config.observable`` (:func:`parse_observable`), or ``None``.
    """

    config: Config
    dynamics: Any
    system: Any
    label: str
    flow: FlowMap
    observable: Callable[[torch.Tensor], torch.Tensor] | None


def _is_model_folder(target: str) -> bool:
    """A folder, unless the bare name is a system's: ``pendulum`` is always the system (a folder
    of that name is ``./pendulum``), so a folder never shadows a system."""
    return target not in SYSTEMS and Path(target).is_dir()


def _target(target: str, params: dict[str, float] | None):
    """``(dynamics, true system, label)`` of a system name or a model folder."""
    if _is_model_folder(target):
        if params:
            raise SymplearnError(
                f"{target} is a model folder: its system's parameters are the trained ones; leave --param out"
            )
        dyn = load_model(target).double()
        system = system_from_config(load_run_config(target), target)
        label = f"model {dyn.config.get('kind')} ({Path(target).name})"
    elif target in SYSTEMS or not Path(target).exists():
        system = get_system(target, **dict(params or {}))
        dyn, label = system, system.name
    else:
        raise SymplearnError(f"{target} is neither a system name nor a model folder")
    if is_lagrangian(dyn):
        raise SymplearnError(
            "diagnose works in canonical coordinates (q, p); an LNN lives in (q, q_dot): "
            "roll it out with `symplearn rollout` instead"
        )
    return dyn, system, label


def _flow(dyn, dt, integrator) -> FlowMap:
    if isinstance(dyn, FlowMap):
        if integrator not in (None, "own step"):
            raise SymplearnError(
                f"a flow map steps with its own dt ({dyn.dt:g}) and takes no integrator (got "
                f"{integrator!r}): leave --integrator out"
            )
        return discretize(dyn)
    dt = check_float("dt", dt, positive=True)
    return discretize(dyn, integrator or exact_flow_integrator(dyn), dt)


def run(config: Config | Setup, out: str | Path) -> Report:
    """Diagnose the target and write the run folder ``out`` (replaced whole).

    Args:
        config: the settings (validated and built here first, :meth:`Config.build`), or the
            :class:`Setup` they built.
        out: the run folder.

    Returns:
        The :class:`~symplearn.report.Report`; ``report.metrics`` holds (continuous dynamics)
        ``divergence_rms``, ``loop_gap``, ``loop_gap_relative``; ``symplecticity_defect_max``,
        ``step_det_max_deviation``, ``area_ratio`` (for n > 1 the symplectic area
        ``sum_i A_i`` over the (q_i, p_i) planes, and ``area_ratio_plane0``), ``energy_error``
        (the true energy along 8 trajectories, :meth:`InvariantError.as_dict`), and where asked
        ``bracket``, ``poincare_crossings``, ``lyapunov_exponent``.

    Raises:
        SymplearnError: an invalid configuration or output folder (before any work).
    """
    t_start = time.perf_counter()
    setup = config if isinstance(config, Setup) else config.build()
    cfg, dyn, system, label, fmap = setup.config, setup.dynamics, setup.system, setup.label, setup.flow
    out = check_output_folder(out)
    flow = isinstance(dyn, FlowMap)
    n, dt, integ_name = system.n_dof, cfg.dt, cfg.integrator
    sample = system.sample(cfg.n_points, seed=cfg.seed)
    center = sample[0]
    m: dict[str, Any] = {"target": label, "system": system.name, "integrator": integ_name, "dt": dt}
    m["steps"] = cfg.steps
    if cfg.loop is not None:
        loop2 = torch.tensor(cfg.loop, dtype=torch.float64)
        loop = center.repeat(len(loop2), 1)
        loop[:, 0], loop[:, n] = loop2[:, 0], loop2[:, 1]
    else:
        r = 0.1 * float(sample[:, [0, n]].std(0).mean())
        loop = dg.circle_loop(center, r, 128)
    figures = {}
    if not flow:
        div = dg.divergence_stats(dyn, sample)
        li = dg.loop_integral(dyn, loop)
        m["divergence_rms"] = float(div.rms)
        m["loop_gap"] = float(li.gap)
        m["loop_gap_relative"] = float(li.relative)
    sym = dg.map_symplecticity(fmap, sample[: min(64, len(sample))])
    m["symplecticity_defect_max"] = float(sym.max_defect)
    m["step_det_max_deviation"] = float((sym.det - 1).abs().max())
    tr = dg.transport_loop(fmap, loop, cfg.steps, save_every=max(1, cfg.steps // 100))
    # one degree of freedom: the loop's area; more: the symplectic area sum_i A_i over the
    # (q_i, p_i) planes (a single plane's area is not invariant when n > 1)
    m["area_ratio"] = float(tr.area_ratio) if n == 1 else float(tr.action[-1] / tr.action[0])
    if n > 1:
        m["area_ratio_plane0"] = float(tr.area_ratio)
    k = min(8, len(sample))
    t, z = integrate(fmap, sample[:k], cfg.steps, grad=False, trace=True, progress=not cfg.quiet)[:2]
    err = dg.invariant_error(system.hamiltonian(z), t)
    m["energy_error"] = err.as_dict()
    if cfg.observable:
        f = setup.observable
        H = dyn.hamiltonian if isinstance(dyn, HamiltonianDynamics) else system.hamiltonian
        br = dg.bracket_with_energy(f, H, sample)
        m["bracket"] = {
            "observable": cfg.observable,
            "max_abs_normalised": float(br.abs().max()),
            "rms_normalised": float(br.pow(2).mean().sqrt()),
        }
    if n >= 2:  # Poincare section q0 = 0 (crossing upwards), drawn in the (q1, p1) plane
        ps = dg.poincare_section(fmap, sample[:k], cfg.steps, index=0, value=0.0, direction=1)
        m["poincare_crossings"] = int(ps.z.shape[0])
        if ps.z.shape[0] > 0:
            figures["poincare.png"] = plotting.poincare_figure(
                ps.z[:, [1, n + 1]].detach().numpy(),
                labels=("q1", "p1"),
                size=40.0 if ps.z.shape[0] < 200 else 6.0 if ps.z.shape[0] < 2000 else 1.5,
                title=f"Poincaré section q0 = 0, p0 > 0: {label} ({ps.z.shape[0]} crossings)",
            )
    if cfg.lyapunov:
        ly = dg.lyapunov_exponent(fmap, sample[:2], cfg.steps)
        m["lyapunov_exponent"] = [float(x) for x in ly.exponent]
        figures["lyapunov.png"] = plotting.lyapunov_figure(
            ly.t.numpy(), ly.running.numpy(), title=f"Largest Lyapunov exponent: {label}"
        )
    figures["energy_error.png"] = plotting.energy_error_figure(
        t.numpy(), {integ_name: err.errors.numpy()}, title=f"Relative energy error: {label}, dt={dt:g}"
    )
    idx = torch.linspace(0, len(tr.loops) - 1, 5).round().long().tolist()
    figures["transported_loop.png"] = plotting.transported_patch_figure(
        [tr.loops[i][:, [0, n]].numpy() for i in idx],
        tr.t[idx].numpy(),
        tr.t.numpy(),
        tr.areas.numpy(),
        hamiltonian=system.hamiltonian if n == 1 else None,
        title=f"Transported loop: {label}",
    )
    if n == 1:
        figures["phase_portrait.png"] = plotting.phase_portrait_figure(
            {label: z.numpy()}, hamiltonian=system.hamiltonian, title=f"Phase portrait: {label}"
        )
        if not flow:
            lo, hi = sample.min(0).values, sample.max(0).values
            bounds = ((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])))
            figures["vector_field.png"] = plotting.vector_field_figure(
                lambda x: dyn.vector_field(0.0, x),
                bounds,
                divergence_fn=lambda x: divergence(lambda y: dyn.vector_field(0.0, y), x),
                loop=loop.numpy(),
                title=f"Vector field and divergence: {label}",
            )
    row = {key: m[key] for key in _ROW_KEYS if key in m}
    row["max_rel_energy_error"] = err.max
    report = Report(
        title=f"Diagnostics: {label}, {integ_name}, dt={dt:g}, {cfg.steps} steps",
        rows={label: row},
        columns=[Column(key, header, ".3e") for key, header in _COLUMNS if key in row],
        figures=figures,
        sections=[
            f"Field statistics over {cfg.n_points} sampled states (seed {cfg.seed}); symplecticity of "
            f"one step at {min(64, cfg.n_points)} of them; energy error along {k} trajectories: "
            f"{err.verdict}. An exact Hamiltonian flow has divergence 0, loop gap 0, symplecticity "
            f"defect 0 and area ratio 1."
        ],
        metrics=m,
    )
    write_run(out, cfg, report, wall_time_s=time.perf_counter() - t_start, replace=True)
    if not cfg.quiet:
        for key in ("divergence_rms", "loop_gap", "symplecticity_defect_max", "area_ratio"):
            if key in m:
                print(f"{key:26s} {m[key]:.3e}")
        print(f"{'max_rel_energy_error':26s} {err.max:.3e} ({err.verdict})")
        print(f"metrics.json, report.md and figures in {out}")
    return report


_COLUMNS = (
    ("divergence_rms", "divergence RMS"),
    ("loop_gap_relative", "loop gap (rel.)"),
    ("symplecticity_defect_max", "symplecticity defect"),
    ("area_ratio", "area ratio"),
    ("max_rel_energy_error", "max rel. energy error"),
)
_ROW_KEYS = tuple(k for k, _ in _COLUMNS)

_OBS_FUNCS = {
    "sin": torch.sin,
    "cos": torch.cos,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "tanh": torch.tanh,
    "abs": torch.abs,
}


#: the longest --observable accepted (a few hundred terms)
_OBS_MAX_CHARS = 4000
#: the deepest expression tree accepted (a sum of 300 terms is 300 deep): checked before
#: evaluation, so that the answer does not depend on the interpreter's recursion limit (which
#: libraries such as torch.compile raise)
_OBS_MAX_DEPTH = 300


def _tree_depth(tree) -> int:
    """Nesting depth of the expressions in an ``ast`` tree (``q + q + q``: 3), without recursion."""
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        depth += isinstance(node, ast.expr) and not isinstance(node, (ast.Name, ast.Constant))
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))
    return deepest + 1


def parse_observable(expr: str, n_dof: int):
    """A safe observable ``f(z)`` from an arithmetic expression in ``q0.., p0..`` (or ``q``, ``p``
    for one degree of freedom), e.g. ``"q0*p1 - q1*p0"``.

    Only numbers, these names, + - * / ** and sin, cos, exp, log, sqrt, tanh, abs are allowed;
    nothing is evaluated by Python.

    Args:
        expr: the expression.
        n_dof: degrees of freedom n of the states it will be evaluated on.

    Returns:
        ``f``: ``(..., 2n) -> (...)``.

    Raises:
        SymplearnError: a syntax error, a name that the states do not have, anything else than
            the allowed operations.
    """
    names = {f"q{i}": i for i in range(n_dof)} | {f"p{i}": n_dof + i for i in range(n_dof)}
    if n_dof == 1:
        names |= {"q": 0, "p": 1}
    if len(expr) > _OBS_MAX_CHARS:
        raise SymplearnError(
            f"--observable is {len(expr)} characters long; at most {_OBS_MAX_CHARS} are accepted"
        )
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise SymplearnError(f"--observable {expr!r} is not an arithmetic expression") from None
    except (RecursionError, MemoryError):
        raise SymplearnError(
            "--observable is nested too deeply to parse; write a shorter expression"
        ) from None
    depth = _tree_depth(tree)
    if depth > _OBS_MAX_DEPTH:
        raise SymplearnError(
            f"--observable is nested {depth} levels deep (a sum of n terms is n deep); at most "
            f"{_OBS_MAX_DEPTH} are accepted: write a shorter expression"
        )
    ops = {
        ast.Add: torch.add,
        ast.Sub: torch.sub,
        ast.Mult: torch.mul,
        ast.Div: torch.div,
        ast.Pow: torch.pow,
    }

    def ev(node, z):
        if isinstance(node, ast.Expression):
            return ev(node.body, z)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return torch.full(z.shape[:-1], float(node.value), dtype=z.dtype)
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise SymplearnError(
                    f"--observable uses {node.id!r}, but this system has {n_dof} degree(s) of freedom; "
                    f"valid names: {', '.join(names)}"
                )
            return z[..., names[node.id]]
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left, z), ev(node.right, z))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand, z)
            return -v if isinstance(node.op, ast.USub) else v
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _OBS_FUNCS
            and len(node.args) == 1
            and not node.keywords
        ):
            return _OBS_FUNCS[node.func.id](ev(node.args[0], z))
        raise SymplearnError(
            f"--observable {expr!r}: only numbers, {', '.join(names)}, + - * / ** and "
            f"{', '.join(_OBS_FUNCS)} are allowed"
        )

    f = lambda z: ev(tree, z)  # noqa: E731
    try:
        f(torch.zeros(1, 2 * n_dof, dtype=torch.float64))  # validate names now
    except RecursionError:
        raise SymplearnError(
            "--observable is nested too deeply to evaluate; write a shorter expression"
        ) from None
    return f


def parse_loop(text: str, dtype=torch.float64) -> torch.Tensor:
    """``"q,p;q,p;...;q,p"`` -> ``(M, 2)`` vertices; the loop must be closed (last point = first,
    not repeated in the result).

    Raises:
        SymplearnError: not numbers, fewer than 3 distinct points, not closed.
    """
    try:
        pts = [[float(x) for x in item.split(",")] for item in text.split(";") if item.strip()]
    except ValueError:
        raise SymplearnError(f"--loop expects 'q,p;q,p;...' with numbers, got {text!r}") from None
    bad = next((item for item, p in zip(text.split(";"), pts) if len(p) != 2), None)
    if bad is not None:
        raise SymplearnError(f"--loop points are 'q,p' pairs (the (q0, p0) plane), got {bad.strip()!r}")
    if len(pts) < 4:
        raise SymplearnError(
            "--loop needs at least 3 distinct (q,p) points plus the first repeated at the end, "
            "e.g. --loop '0,0;1,0;1,1;0,0'"
        )
    if pts[0] != pts[-1]:
        raise SymplearnError(
            f"--loop is not closed: it starts at {tuple(pts[0])} and ends at {tuple(pts[-1])}; "
            "repeat the first point at the end"
        )
    return torch.tensor(pts[:-1], dtype=dtype)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``diagnose`` subcommand (its handler is the parser's ``func`` default)."""
    p = subparsers.add_parser("diagnose", help="geometric diagnostics of a system or a trained model")
    p.add_argument("target", help="a system name or a model folder")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="system parameter, repeatable")
    p.add_argument("--dt", type=_args.pos_float, default=0.05, help="step (SympNets: their own)")
    p.add_argument("--steps", type=_args.pos_int, default=400)
    p.add_argument("--integrator", default=None, help="default: verlet if separable, else gauss-legendre-4")
    p.add_argument("--n-points", type=_args.pos_int, default=256, help="sampled states for field statistics")
    p.add_argument(
        "--observable",
        default=None,
        help="observable f(q, p) for the Poisson bracket {f, H}, e.g. 'q0*p1 - q1*p0'",
    )
    p.add_argument(
        "--loop",
        default=None,
        help="closed loop in the (q0, p0) plane: 'q,p;q,p;...;q,p' "
        "(other coordinates: those of a sampled state)",
    )
    p.add_argument("--lyapunov", action="store_true", help="also estimate the largest Lyapunov exponent")
    _args.add_common(p)
    p.set_defaults(func=_main)
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    """The :class:`Config` of parsed ``diagnose`` arguments."""
    loop = None if args.loop is None else tuple(tuple(pt) for pt in parse_loop(args.loop).tolist())
    return Config(
        target=args.target,
        params=_args.parse_params(args.param),
        dt=args.dt,
        steps=args.steps,
        integrator=args.integrator,
        n_points=args.n_points,
        seed=args.seed,
        observable=args.observable,
        loop=loop,
        lyapunov=args.lyapunov,
        quiet=args.quiet,
    )


def _main(args: argparse.Namespace) -> int:
    run(config_from_args(args).build(), args.out)
    return 0
