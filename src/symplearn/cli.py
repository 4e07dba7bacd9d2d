"""The ``symplearn`` command line: a thin layer that turns names into objects and files into
arrays, then calls the library. User errors print one line and exit with code 2."""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
from pathlib import Path

import torch

from ._errors import SymplearnError
from ._version import __version__

DTYPES = {"float64": torch.float64, "float32": torch.float32}


# -- parsing helpers ----------------------------------------------------------------------
def parse_params(items: list[str] | None) -> dict[str, float]:
    """``["g=9.81", "L=2"] -> {"g": 9.81, "L": 2.0}``."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SymplearnError(f"--param expects NAME=VALUE (e.g. --param g=9.81), got {item!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise SymplearnError(f"--param {name}: {value!r} is not a number") from None
    return out


def parse_states(items: list[str] | None, dim: int, dtype: torch.dtype) -> torch.Tensor | None:
    """``["1.0,0.0", ...]`` (q's then p's) -> ``(K, dim)``; validated."""
    if not items:
        return None
    rows = []
    for item in items:
        try:
            row = [float(x) for x in item.split(",")]
        except ValueError:
            raise SymplearnError(
                f"--z0 expects comma-separated numbers (q's then p's), got {item!r}"
            ) from None
        if len(row) != dim:
            raise SymplearnError(
                f"--z0 {item!r} has {len(row)} numbers; this system's states have {dim} (q's then p's)"
            )
        if not all(math.isfinite(x) for x in row):
            raise SymplearnError(f"--z0 {item!r} contains a non-finite number")
        rows.append(row)
    return torch.tensor(rows, dtype=dtype)


def _positive(kind):
    def conv(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    conv.__name__ = f"positive {kind.__name__}"
    return conv


pos_int = _positive(int)
pos_float = _positive(float)


def _set_threads(n: int | None) -> None:
    # Small networks and batched integrators on a 2-core machine: one thread avoids the
    # oversubscription that was measured to slow small-network training many-fold.
    torch.set_num_threads(n or 1)


# -- commands -----------------------------------------------------------------------------
def cmd_systems(args) -> int:
    from .dynamics import SeparableHamiltonian
    from .systems import SYSTEMS

    for name, cls in SYSTEMS.items():
        params = ", ".join(f"{k}={v:g}" for k, v in cls.PARAMS.items()) or "(none)"
        full = cls.__doc__ or ""
        doc = " ".join(full.strip().split("\n\n")[0].split()).replace("``", "")
        if "H =" not in doc:  # the formula is displayed below the first paragraph
            formula = next((ln.strip() for ln in full.splitlines() if ln.strip().startswith("H =")), "")
            doc = doc.rstrip(":.") + (
                "; " + " ".join(formula.split("  ")[0].split()).rstrip(",") if formula else ""
            )
        flags = [
            f"n_dof={cls.n_dof}",
            "separable" if issubclass(cls, SeparableHamiltonian) else "non-separable",
        ]
        if cls.has_exact_solution:
            flags.append("exact solution")
        if cls.has_lagrangian:
            flags.append("Lagrangian")
        print(textwrap.fill(doc, 100, initial_indent=f"{name:17s}", subsequent_indent=" " * 17))
        print(f"{'':16s}   parameters: {params}; {', '.join(flags)}")
    return 0


def cmd_integrators(args) -> int:
    from .integrators import INTEGRATORS

    print(f"{'name':18s} {'order':>5s}  {'symplectic':10s} {'needs separable H':17s} {'implicit':8s}")
    for name, make in INTEGRATORS.items():
        it = make()
        print(
            f"{name:18s} {it.order:5d}  {'yes' if it.symplectic else 'no':10s} "
            f"{'yes' if it.requires_separable else 'no':17s} {'yes' if it.implicit else 'no':8s}"
        )
    return 0


def _integrate_with_progress(flow, z0, steps, save_every, quiet):
    """``(t, z)`` of an integration without gradients that shows progress."""
    from .experiments._common import rollout

    t, z, _ = rollout(flow, z0, steps, save_every=save_every, desc="integrating", quiet=quiet)
    return t, z


def cmd_simulate(args) -> int:
    from . import _files, plotting
    from .dynamics import discretize
    from .integrators import get_integrator
    from .systems import get_system

    dtype = DTYPES[args.dtype]
    system = get_system(args.system, **parse_params(args.param))
    integrator = get_integrator(args.integrator)
    flow = discretize(system, integrator, args.dt)
    z0 = parse_states(args.z0, system.dim, dtype)
    if z0 is None:
        rng = None if args.energy is None else tuple(args.energy)
        z0 = system.sample(args.n_traj, energy_range=rng, seed=args.seed, dtype=dtype)
    t_start = time.perf_counter()
    with torch.no_grad():
        t, z = _integrate_with_progress(flow, z0, args.steps, args.save_every, args.quiet)
    wall = time.perf_counter() - t_start
    energy = system.hamiltonian(z)  # (T, K)
    rel = (energy - energy[0]).abs() / energy[0].abs().clamp_min(torch.finfo(dtype).tiny)
    summary = {
        "system": system.name,
        "integrator": integrator.name,
        "max_rel_energy_error": float(rel.max()),
        "final_rel_energy_error": float(rel[-1].max()),
        "n_trajectories": int(z.shape[1]),
        "n_steps": args.steps,
        "t_final": float(t[-1]),
        "wall_time_s": wall,
        "state_steps_per_s": args.steps * z.shape[1] / max(wall, 1e-12),
    }
    for name, val in system.conserved_quantities(z).items():
        if name == "energy":
            continue
        d = (val - val[0]).abs()
        d = d.flatten(2).norm(dim=-1) if d.ndim > 2 else d
        summary[f"max_abs_{name}_error"] = float(d.max())
    config = {
        "command": "simulate",
        "system": system.name,
        "params": system.params,
        "integrator": integrator.name,
        "dt": args.dt,
        "steps": args.steps,
        "save_every": args.save_every,
        "n_trajectories": int(z.shape[1]),
        "seed": args.seed,
        "z0": z0.tolist(),
        "dtype": args.dtype,
        **_files.provenance(),
    }
    n = system.n_dof
    with _files.staged_folder(args.out) as tmp:
        _files.write_npz(tmp / "trajectory.npz", t=t.numpy(), z=z.numpy(), energy=energy.numpy())
        _files.write_json(tmp / "summary.json", summary)
        _files.write_json(tmp / "config.json", config)
        label = f"{system.name}, {integrator.name}, dt={args.dt:g}"
        _files.save_figure(
            plotting.energy_error_figure(
                t.numpy(), {integrator.name: rel.numpy()}, title=f"Relative energy error: {label}"
            ),
            tmp / "energy_error.png",
        )
        H = system.hamiltonian if n == 1 else None
        _files.save_figure(
            plotting.phase_portrait_figure(
                {integrator.name: z[..., [0, n]].numpy()},
                hamiltonian=H,
                title=f"Phase portrait (q{'' if n == 1 else '1'}, p{'' if n == 1 else '1'}): {label}",
            ),
            tmp / "phase_portrait.png",
        )
    if not args.quiet:
        print(
            f"max relative energy error {summary['max_rel_energy_error']:.3e} over t = "
            f"{summary['t_final']:g} ({wall:.2f} s); results in {args.out}"
        )
    return 0


def cmd_generate(args) -> int:
    from .datasets import generate_dataset
    from .integrators import get_integrator
    from .systems import get_system

    system = get_system(args.system, **parse_params(args.param))
    integrator = get_integrator(args.integrator) if args.integrator else None
    rng = None if args.energy is None else tuple(args.energy)
    ds = generate_dataset(
        system,
        n_traj=args.n_traj,
        dt=args.dt,
        n_steps=args.steps,
        integrator=integrator,
        substeps=args.substeps,
        noise_std=args.noise,
        test_fraction=args.test_fraction,
        energy_range=rng,
        seed=args.seed,
        dtype=DTYPES[args.dtype],
    )
    path = Path(args.out)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    ds.save(path)
    if not args.quiet:
        print(f"wrote {path} and {path.with_suffix('.json')}: {tuple(ds.z.shape)} states (T, K, 2n)")
    return 0


def cmd_experiment(args) -> int:
    import dataclasses

    from .experiments import EXPERIMENTS, get_experiment

    if args.list or not args.name:
        for name in EXPERIMENTS:
            print(f"{name:12s} {get_experiment(name).DESCRIPTION}")
        if not args.list:
            print("\nrun one with: symplearn experiment NAME --out DIR [--quick]", file=sys.stderr)
        return 0 if args.list else 2
    module = get_experiment(args.name)
    if not args.out:
        raise SymplearnError("--out DIR is required (the run folder to write)")
    fields = {f.name: f for f in dataclasses.fields(module.Config)}
    overrides: dict = {"quick": args.quick, "quiet": args.quiet, "seed": args.seed}
    if args.preset is not None:
        if "preset" not in fields:
            raise SymplearnError(f"experiment {args.name!r} has no presets")
        overrides["preset"] = args.preset
    for item in args.set or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            valid = ", ".join(k for k in fields if k not in ("quick", "quiet"))
            raise SymplearnError(f"--set expects KEY=VALUE with KEY one of: {valid}; got {item!r}")
        default = fields[key].default
        try:
            if isinstance(default, bool):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                overrides[key] = value.lower() in ("true", "1")
            elif isinstance(default, tuple):  # comma-separated, elements typed like the default's
                kind = type(default[0]) if default else str
                overrides[key] = tuple(kind(v.strip()) for v in value.split(",") if v.strip())
                if len(default) and kind is not str and len(overrides[key]) != len(default):
                    raise ValueError(value)
            else:
                overrides[key] = type(default)(value)
        except ValueError:
            example = ",".join(map(str, default)) if isinstance(default, tuple) else repr(default)
            raise SymplearnError(
                f"--set {key}={value!r}: expected a value like the default {example} "
                f"({type(default).__name__})"
            ) from None
    config = module.Config(**overrides)
    config.resolved() if hasattr(config, "resolved") else None  # validate before any work
    report = module.run(config, args.out)
    if not args.quiet:
        print()
        print(report.table())
        print(f"\nreport, metrics and figures in {args.out}/ (report.md)")
    return 0


def _system_from_config(cfg: dict):
    from .datasets import system_from_metadata

    return system_from_metadata(cfg, where="this model folder's config.json")


def cmd_train(args) -> int:
    from . import _files
    from .datasets import Dataset, generate_dataset, system_metadata
    from .modelio import save_model
    from .models import build_model
    from .systems import get_system
    from .training import fit

    dtype = DTYPES[args.dtype]
    if args.data:
        ds = Dataset.load(args.data)
        system = ds.system()
        if args.system and args.system != system.name:
            raise SymplearnError(f"--system {args.system} does not match the data set's system {system.name}")
    else:
        if not args.system:
            raise SymplearnError("give --system NAME (see `symplearn systems`) or --data FILE")
        system = get_system(args.system, **parse_params(args.param))
        ds = generate_dataset(
            system,
            n_traj=args.n_traj,
            dt=args.data_dt,
            n_steps=args.traj_steps,
            noise_std=args.noise,
            seed=args.seed,
            dtype=dtype,
        )
    kind = args.model
    torch.manual_seed(args.seed)
    model = build_model(
        kind,
        ignore_unused=True,  # each kind takes the sizes it has (SympNets: layers and the data's dt)
        n_dof=system.n_dof,
        width=args.width,
        depth=args.depth,
        layers=args.layers,
        activation=args.activation,
        dt=ds.dt,
    ).to(dtype=dtype)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = fit(
        model,
        ds,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        dtype=dtype,
        integrator=args.integrator,
        rollout_k=args.rollout_k,
        grad_clip=args.grad_clip if args.grad_clip is not None else "auto",
        checkpoint_dir=out / "checkpoint",
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        progress=not args.quiet,
    )
    config = {
        "system": system_metadata(system),
        "data": {"file": str(args.data) if args.data else None, **ds.metadata},
        "cli": {"threads": torch.get_num_threads(), "seed": args.seed},
    }
    save_model(model.cpu(), out, result=result, config=_files._jsonable(config))
    if not args.quiet:
        tl = f", test loss {result.test_loss:.3e}" if result.test_loss is not None else ""
        print(
            f"{kind} on {system.name}: train loss {result.train_loss:.3e}{tl} after {result.steps} steps "
            f"({result.wall_time:.1f} s); model in {out}"
        )
    return 0


def cmd_rollout(args) -> int:
    from . import _files, plotting
    from .dynamics import FlowMap, HamiltonianDynamics, discretize
    from .experiments._common import to_canonical_states, to_model_states
    from .integrators import reference_trajectory
    from .modelio import load_model, load_run_config

    model = load_model(args.model_dir)
    cfg = load_run_config(args.model_dir)
    system = _system_from_config(cfg)
    dtype = next(model.parameters()).dtype
    erange = cfg.get("data", {}).get("energy_range")
    z0 = system.sample(
        args.n_traj, energy_range=tuple(erange) if erange else None, seed=args.seed, dtype=torch.float64
    )
    z0 = z0.to(dtype).double()  # the states the model actually starts from, for truth too
    if isinstance(model, FlowMap):
        if args.dt is not None and abs(args.dt - model.dt) > 1e-12 * model.dt:
            raise SymplearnError(
                f"this SympNet is a flow map of step {model.dt:g}; use --dt {model.dt:g} (or leave --dt out)"
            )
        flow = discretize(model)
        dt, integ_name = model.dt, "own step"
    else:
        if args.dt is None:
            raise SymplearnError("--dt is required for continuous models (SympNets use their own step)")
        flow = discretize(model, args.integrator, args.dt)
        dt, integ_name = args.dt, flow.integrator.name
    x0 = to_model_states(model, system, z0).to(dtype)
    t_start = time.perf_counter()
    with torch.no_grad():
        t, x = _integrate_with_progress(flow, x0, args.steps, args.save_every, args.quiet)
    wall = time.perf_counter() - t_start
    z = to_canonical_states(model, system, x.double())
    if not bool(torch.isfinite(z).all()):
        raise SymplearnError(
            "the model's trajectory became NaN or infinite (the rollout diverged); "
            "try a smaller --dt, fewer --steps, or another integrator"
        )
    with torch.no_grad():
        ref = reference_trajectory(system, z0, dt, args.steps, save_every=args.save_every)
    z_true = ref.z
    energy_true = system.hamiltonian(z)
    e0 = system.hamiltonian(z0)
    rel = (energy_true - e0).abs() / e0.abs()
    err = (z - z_true).norm(dim=-1)  # (T, K)
    summary = {
        "model": model.config.get("kind"),
        "system": system.name,
        "integrator": integ_name,
        "dt": dt,
        "steps": args.steps,
        "n_trajectories": args.n_traj,
        "t_final": float(t[-1]),
        "max_rel_energy_error": float(rel.max()),
        "final_rel_energy_error": float(rel[-1].max()),
        "state_error_final": float(err[-1].mean()),
        "state_error_max": float(err.max()),
        "wall_time_s": wall,
    }
    arrays = {"t": t.numpy(), "z": z.numpy(), "z_true": z_true.numpy(), "energy_true": energy_true.numpy()}
    if isinstance(model, HamiltonianDynamics):
        with torch.no_grad():
            arrays["energy_model"] = model.hamiltonian(x).double().numpy()
    config = {
        "command": "rollout",
        "model_dir": str(args.model_dir),
        "steps": args.steps,
        "dt": dt,
        "integrator": integ_name,
        "n_trajectories": args.n_traj,
        "seed": args.seed,
        "save_every": args.save_every,
        **_files.provenance(),
    }
    n = system.n_dof
    with _files.staged_folder(args.out) as tmp:
        _files.write_npz(tmp / "trajectory.npz", **arrays)
        _files.write_json(tmp / "summary.json", summary)
        _files.write_json(tmp / "config.json", config)
        label = f"{summary['model']} on {system.name}, {integ_name}, dt={dt:g}"
        _files.save_figure(
            plotting.energy_error_figure(
                t.numpy(), {summary["model"]: rel.numpy()}, title=f"True energy error: {label}"
            ),
            tmp / "energy_error.png",
        )
        _files.save_figure(
            plotting.phase_portrait_figure(
                {"true": z_true[..., [0, n]].numpy(), summary["model"]: z[..., [0, n]].numpy()},
                hamiltonian=system.hamiltonian if n == 1 else None,
                title=f"Phase portrait: {label}",
            ),
            tmp / "phase_portrait.png",
        )
    if not args.quiet:
        print(
            f"max relative energy error {summary['max_rel_energy_error']:.3e}, final state error "
            f"{summary['state_error_final']:.3e} over t = {summary['t_final']:g}; results in {args.out}"
        )
    return 0


_OBS_FUNCS = {
    "sin": torch.sin,
    "cos": torch.cos,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "tanh": torch.tanh,
    "abs": torch.abs,
}


def parse_observable(expr: str, n_dof: int):
    """A safe observable ``f(z)`` from an arithmetic expression in ``q0.., p0..`` (or ``q``, ``p``
    for one degree of freedom), e.g. ``"q0*p1 - q1*p0"``. Only numbers, these names, + - * / **
    and sin, cos, exp, log, sqrt, tanh, abs are allowed; nothing is evaluated by Python."""
    import ast

    names = {f"q{i}": i for i in range(n_dof)} | {f"p{i}": n_dof + i for i in range(n_dof)}
    if n_dof == 1:
        names |= {"q": 0, "p": 1}
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise SymplearnError(f"--observable {expr!r} is not an arithmetic expression") from None
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
    f(torch.zeros(1, 2 * n_dof, dtype=torch.float64))  # validate names now
    return f


def parse_loop(text: str, dtype=torch.float64) -> torch.Tensor:
    """``"q,p;q,p;...;q,p"`` -> ``(M, 2)``; the loop must be closed (last point = first)."""
    try:
        pts = [[float(x) for x in item.split(",")] for item in text.split(";") if item.strip()]
    except ValueError:
        raise SymplearnError(f"--loop expects 'q,p;q,p;...' with numbers, got {text!r}") from None
    if any(len(p) != 2 for p in pts) or len(pts) < 4:
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


def cmd_diagnose(args) -> int:
    from . import _files, plotting
    from . import diagnostics as dg
    from .dynamics import FlowMap, HamiltonianDynamics, SeparableHamiltonian, discretize
    from .geometry import divergence
    from .modelio import load_model, load_run_config
    from .systems import SYSTEMS, get_system

    target = args.target
    if Path(target).is_dir():
        dyn = load_model(target).double()
        system = _system_from_config(load_run_config(target))
        label = f"model {dyn.config.get('kind')} ({Path(target).name})"
    elif target in SYSTEMS or not Path(target).exists():
        system = get_system(target, **parse_params(args.param))
        dyn, label = system, system.name
    else:
        raise SymplearnError(f"{target} is neither a system name nor a model folder")
    if dyn.state_kind == "lagrangian":
        raise SymplearnError(
            "diagnose works in canonical coordinates (q, p); an LNN lives in (q, q_dot): "
            "roll it out with `symplearn rollout` instead"
        )
    n = system.n_dof
    flow = isinstance(dyn, FlowMap)
    if flow:
        fmap = dyn
        dt, integ_name = dyn.dt, "own step"
    else:
        dt = args.dt
        # diagnostics of the exact flow: Verlet where H separates, Gauss-Legendre 4 otherwise
        default = "verlet" if isinstance(dyn, SeparableHamiltonian) else "gauss-legendre-4"
        fmap = discretize(dyn, args.integrator or default, dt)
        integ_name = fmap.integrator.name
    sample = system.sample(args.n_points, seed=args.seed)
    center = sample[0]
    out: dict = {
        "target": label,
        "system": system.name,
        "integrator": integ_name,
        "dt": dt,
        "steps": args.steps,
    }
    if args.loop:
        loop2 = parse_loop(args.loop)
        loop = center.repeat(len(loop2), 1)
        loop[:, 0], loop[:, n] = loop2[:, 0], loop2[:, 1]
    else:
        r = 0.1 * float(sample[:, [0, n]].std(0).mean())
        loop = dg.circle_loop(center, r, 128)
    figures = {}
    if not flow:
        div = dg.divergence_stats(dyn, sample)
        li = dg.loop_integral(dyn, loop)
        out["divergence_rms"] = float(div.rms)
        out["loop_gap"] = float(li.gap)
        out["loop_gap_relative"] = float(li.relative)
    sym = dg.map_symplecticity(fmap, sample[: min(64, len(sample))])
    out["symplecticity_defect_max"] = float(sym.max_defect)
    out["step_det_max_deviation"] = float((sym.det - 1).abs().max())
    tr = dg.transport_loop(fmap, loop, args.steps, save_every=max(1, args.steps // 100))
    # one degree of freedom: the loop's area; more: the symplectic area sum_i A_i over the
    # (q_i, p_i) planes (a single plane's area is not invariant when n > 1)
    out["area_ratio"] = float(tr.area_ratio) if n == 1 else float(tr.action[-1] / tr.action[0])
    if n > 1:
        out["area_ratio_plane0"] = float(tr.area_ratio)
    k = min(8, len(sample))
    with torch.no_grad():
        t, z = _integrate_with_progress(fmap, sample[:k], args.steps, 1, args.quiet)
    err = dg.invariant_error(system.hamiltonian(z), t)
    out["energy_error"] = err.as_dict() if hasattr(err, "as_dict") else {"max": err.max}
    if args.observable:
        f = parse_observable(args.observable, n)
        H = dyn.hamiltonian if isinstance(dyn, HamiltonianDynamics) else system.hamiltonian
        br = dg.bracket_with_energy(f, H, sample)
        out["bracket"] = {
            "observable": args.observable,
            "max_abs_normalised": float(br.abs().max()),
            "rms_normalised": float(br.pow(2).mean().sqrt()),
        }
    if n >= 2:  # Poincare section q0 = 0 (crossing upwards), drawn in the (q1, p1) plane
        ps = dg.poincare_section(fmap, sample[:k], args.steps, index=0, value=0.0, direction=1)
        out["poincare_crossings"] = int(ps.z.shape[0])
        if ps.z.shape[0] > 0:
            figures["poincare.png"] = plotting.poincare_figure(
                ps.z[:, [1, n + 1]].detach().numpy(),
                labels=("q1", "p1"),
                size=6.0 if ps.z.shape[0] < 2000 else 1.5,
                title=f"Poincaré section q0 = 0, p0 > 0: {label} ({ps.z.shape[0]} crossings)",
            )
    if args.lyapunov:
        ly = dg.lyapunov_exponent(fmap, sample[:2], args.steps)
        out["lyapunov_exponent"] = [float(x) for x in ly.exponent]
        figures["lyapunov.png"] = plotting.lyapunov_figure(
            ly.t.numpy(), ly.running.numpy(), title=f"Largest Lyapunov exponent: {label}"
        )
    rel = err.errors if hasattr(err, "errors") else None
    if rel is not None:
        figures["energy_error.png"] = plotting.energy_error_figure(
            t.numpy(), {integ_name: rel.numpy()}, title=f"Relative energy error: {label}, dt={dt:g}"
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
    config = {
        "command": "diagnose",
        "target": target,
        "dt": dt,
        "steps": args.steps,
        "seed": args.seed,
        "integrator": integ_name,
        "n_points": args.n_points,
        "observable": args.observable,
        "loop": args.loop,
        "lyapunov": args.lyapunov,
        **_files.provenance(),
    }
    with _files.staged_folder(args.out) as tmp:
        _files.write_json(tmp / "diagnostics.json", out)
        _files.write_json(tmp / "config.json", config)
        for name, fig in figures.items():
            _files.save_figure(fig, tmp / name)
    if not args.quiet:
        for key in ("divergence_rms", "loop_gap", "symplecticity_defect_max", "area_ratio"):
            if key in out:
                print(f"{key:26s} {out[key]:.3e}")
        print(f"{'max_rel_energy_error':26s} {err.max:.3e} ({getattr(err, 'verdict', '')})")
        print(f"diagnostics.json and figures in {args.out}")
    return 0


# -- parser -------------------------------------------------------------------------------
def _add_system_args(p, *, states=True):
    p.add_argument("system", help="system name (see `symplearn systems`)")
    p.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="system parameter, repeatable (e.g. --param g=9.81)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled initial states (default 0)")
    p.add_argument(
        "--energy",
        type=float,
        nargs=2,
        metavar=("EMIN", "EMAX"),
        help="energy range of sampled initial states (default: the system's)",
    )
    p.add_argument("--dtype", choices=list(DTYPES), default="float64")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symplearn", description="Learn physical dynamics with structure-preserving neural networks."
    )
    parser.add_argument("--version", action="version", version=f"symplearn {__version__}")
    parser.add_argument(
        "--threads",
        type=pos_int,
        default=None,
        help="torch CPU threads (default 1: fastest for small networks here)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("systems", help="list ground-truth systems and their parameters")
    p.set_defaults(func=cmd_systems)
    p = sub.add_parser("integrators", help="list integrators with order and symplecticity")
    p.set_defaults(func=cmd_integrators)

    p = sub.add_parser("simulate", help="integrate a ground-truth system, write trajectory and figures")
    _add_system_args(p)
    p.add_argument("--integrator", default="verlet", help="integrator name (default verlet)")
    p.add_argument("--dt", type=pos_float, required=True, help="step size")
    p.add_argument("--steps", type=pos_int, required=True, help="number of steps")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n-traj", type=pos_int, default=4, help="number of sampled trajectories (default 4)")
    p.add_argument(
        "--z0",
        action="append",
        metavar="Q..,P..",
        help="explicit initial state, q's then p's (e.g. --z0 1.0,0.0); repeatable",
    )
    p.add_argument("--save-every", type=pos_int, default=1, help="keep every k-th state (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary lines")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("generate", help="generate a trajectory data set (.npz + .json sidecar)")
    _add_system_args(p)
    p.add_argument("--out", required=True, help="output file (.npz)")
    p.add_argument("--n-traj", type=pos_int, default=64, help="number of trajectories (default 64)")
    p.add_argument("--dt", type=pos_float, default=0.1, help="time between saved states (default 0.1)")
    p.add_argument("--steps", type=pos_int, default=100, help="saved steps per trajectory (default 100)")
    p.add_argument(
        "--substeps",
        type=pos_int,
        default=10,
        help="reference integrator sub-steps per saved step (default 10)",
    )
    p.add_argument("--integrator", default=None, help="reference integrator (default: an accurate one)")
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise std on states and derivatives")
    p.add_argument("--test-fraction", type=float, default=0.2, help="fraction of trajectories held out")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train", help="train a model on a system's data, write a model folder")
    p.add_argument("--system", help="system name (see `symplearn systems`); or give --data")
    p.add_argument(
        "--model", required=True, help="mlp, hnn, hnn-separable, lnn, sympnet-la, sympnet-g or sympnet-grad"
    )
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--data", help="a data set from `symplearn generate` (default: generate one)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="system parameter, repeatable")
    p.add_argument("--n-traj", type=pos_int, default=64, help="generated trajectories (default 64)")
    p.add_argument("--data-dt", type=pos_float, default=0.1, help="generated data spacing (default 0.1)")
    p.add_argument("--traj-steps", type=pos_int, default=50, help="generated steps each (default 50)")
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise std of generated data")
    p.add_argument("--steps", type=pos_int, default=2000, help="optimizer steps (default 2000)")
    p.add_argument("--batch-size", type=pos_int, default=256)
    p.add_argument("--lr", type=pos_float, default=1e-3)
    p.add_argument("--width", type=pos_int, default=64)
    p.add_argument("--depth", type=pos_int, default=2)
    p.add_argument("--layers", type=pos_int, default=4, help="SympNet layers (default 4)")
    p.add_argument("--activation", default=None, help="nonlinearity (default: the model's)")
    p.add_argument("--integrator", default=None, help="integrator inside a rollout loss")
    p.add_argument("--rollout-k", type=pos_int, default=1, help="steps per rollout loss (default 1)")
    p.add_argument("--grad-clip", type=pos_float, default=None, help="clip the gradient norm (LNN default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--dtype", choices=list(DTYPES), default="float32")
    p.add_argument("--checkpoint-every", type=pos_int, default=500)
    p.add_argument("--resume", action="store_true", help="continue from the folder's checkpoint")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("rollout", help="roll a trained model out from test initial states")
    p.add_argument("model_dir", help="a model folder written by `symplearn train`")
    p.add_argument("--steps", type=pos_int, required=True)
    p.add_argument("--dt", type=pos_float, default=None, help="step (SympNets: their own)")
    p.add_argument(
        "--integrator",
        default=None,
        help="default: verlet (separable HNN), implicit midpoint (HNN), rk4 (MLP, LNN)",
    )
    p.add_argument("--n-traj", type=pos_int, default=8)
    p.add_argument("--seed", type=int, default=1234, help="seed of the test initial states")
    p.add_argument("--save-every", type=pos_int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_rollout)

    p = sub.add_parser("diagnose", help="geometric diagnostics of a system or a trained model")
    p.add_argument("target", help="a system name or a model folder")
    p.add_argument("--out", required=True)
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="system parameter, repeatable")
    p.add_argument("--dt", type=pos_float, default=0.05, help="step (SympNets: their own)")
    p.add_argument("--steps", type=pos_int, default=400)
    p.add_argument("--integrator", default=None, help="default: verlet if separable, else gauss-legendre-4")
    p.add_argument("--n-points", type=pos_int, default=256, help="sampled states for field statistics")
    p.add_argument("--seed", type=int, default=0)
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
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("experiment", help="run an experiment (see --list) into a run folder")
    p.add_argument("name", nargs="?", help="experiment name")
    p.add_argument("--list", action="store_true", help="list the experiments")
    p.add_argument("--out", help="run folder")
    p.add_argument("--quick", action="store_true", help="a reduced run (seconds)")
    p.add_argument("--preset", default=None, help="a preset of the experiment (e.g. hnn-paper)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting, repeatable")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_experiment)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _set_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except SymplearnError as exc:
        print(f"symplearn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `symplearn systems | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("symplearn: interrupted; no partial results were written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
