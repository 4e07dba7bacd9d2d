"""Integrator throughput: symplearn's batched integrators beside scipy ``solve_ivp`` at equal accuracy.

Per case (system, symplearn integrator, step ``dt``, horizon ``T``; float64, CPU):

1. **symplearn** integrates ``n_traj`` (4096) trajectories at once with ``integrate`` under
   ``torch.no_grad``, keeping only the initial and final states, with 1 and with 2 torch threads.
2. **accuracy**: its final-state error on the first ``n_scipy`` (32) trajectories, the RMS over
   them of ``||z(T) - z_ref(T)||_2``, against a tight reference (scipy DOP853, ``rtol = atol =
   1e-13``, those trajectories stacked into one ODE); the reference's own uncertainty is
   estimated from a second solve at ``1e-12`` and must be 100 times below the error it judges.
3. **scipy at equal accuracy**: ``solve_ivp`` looped over the same ``n_scipy`` trajectories, one
   call each, with a hand-written numpy/math right-hand side (checked against the library's
   vector field; scipy is not charged for torch's per-call overhead), for RK45 and DOP853.
   ``rtol = atol`` is the loosest tolerance on a quarter-decade ladder (``1e-2`` ... ``1e-12``)
   whose RMS error does not exceed symplearn's; the faster method is the baseline. scipy is
   timed on ``n_scipy`` trajectories and **scaled per trajectory** to ``n_traj`` (the loop is
   linear in the number of trajectories).
4. **timing**: ``repeats`` interleaved rounds (symplearn with each thread count, then both scipy
   methods) after a warm-up; each round gives a ratio, the report gives medians, so slow
   phases of a shared machine hit both sides of a ratio alike.

Throughput is in **state-steps per second**: ``n_traj * n_steps / wall`` with ``n_steps = T / dt``
the symplearn step count; for scipy the same numerator (the same states of the same trajectories
delivered at the same accuracy) over scipy's wall time, so the ratio is ``wall_scipy /
wall_symplearn`` for the same work. scipy's own accepted steps are reported beside it.

Torch threads: every count in ``threads`` is first run for a few steps (same numbers as 1
thread?) and is timed only if it is at most 3 times slower than the first count; one that falls
behind by more in a round is not timed in later rounds. On a 2-core machine shared with other
jobs, a second torch thread makes each parallel op (``sin``, ``cos``, the stage ``einsum``) wait
for a descheduled thread, and a run can take 10-100 times longer.

Verlet needs a separable Hamiltonian; the double pendulum's kinetic energy depends on the angles,
so it runs gauss-legendre-4 and implicit-midpoint only.

Run ``python benchmarks/bench_integrators.py`` (under a minute on 2 idle cores, longer on a busy
machine) or ``--quick`` (a smoke run of a few seconds, written to ``integrators-quick.*``).
Writes ``benchmarks/results/integrators.json`` and ``benchmarks/results/integrators.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import scipy
import torch
from scipy.integrate import solve_ivp
from torch import Tensor

import symplearn
from symplearn import discretize
from symplearn._files import machine_info, write_json, write_text
from symplearn.integrators import get_integrator, integrate

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GOALS = {"verlet": 50.0, "gauss-legendre-4": 10.0}
SCIPY_METHODS = ("RK45", "DOP853")
REF_TOL = 1e-13
PROBE_STEPS = 10  # steps of the probe that checks each torch thread count before timing it
PROBE_SLOWDOWN_LIMIT = 3.0  # a thread count this much slower than the first is not timed further
LADDER = (-8, -48)  # scipy rtol = atol = 10**(k/4) for k from -8 (1e-2) down to -48 (1e-12)


@dataclass(frozen=True)
class Case:
    """``system`` integrated with ``integrator`` at step ``dt`` up to time ``horizon``.

    ``fixed_point_tol`` is passed to implicit integrators as ``tol`` (``None``: library default),
    ``solver`` as ``solver`` (``None``: the library default, ``"auto"``).
    """

    system: str
    integrator: str
    dt: float
    horizon: float
    fixed_point_tol: float | None = None
    solver: str | None = None


CASES = (
    Case("pendulum", "verlet", 0.01, 10.0),
    Case("pendulum", "gauss-legendre-4", 0.05, 10.0),
    # tol 1e-12 (relative to the stage states' scale) is 1e5 times below the step's local error;
    # the library default (50 eps) costs 1-2 more iterations a step
    Case("double-pendulum", "gauss-legendre-4", 0.01, 2.0, fixed_point_tol=1e-12),
    # the same with the simplified Newton solver forced ("auto" keeps the fixed point here)
    Case("double-pendulum", "gauss-legendre-4", 0.01, 2.0, fixed_point_tol=1e-12, solver="newton"),
    Case("double-pendulum", "implicit-midpoint", 0.01, 2.0, fixed_point_tol=1e-12),
)


@dataclass(frozen=True)
class Config:
    """Benchmark settings; the defaults are the published run."""

    n_traj: int = 4096
    n_scipy: int = 32
    threads: tuple[int, ...] = (1,)
    repeats: int = 5
    seed: int = 0
    cases: tuple[Case, ...] = CASES
    out_dir: Path = RESULTS_DIR
    stem: str = "integrators"


QUICK = {"n_traj": 512, "n_scipy": 8, "repeats": 2, "stem": "integrators-quick"}


# ---------------------------------------------------------------------------------------------
# numpy right-hand sides for scipy: f(q..., p..., sin, cos) -> (dq..., dp...), used with math.*
# on one state (the fast path for solve_ivp) and with np.* on stacked trajectories (reference)
# ---------------------------------------------------------------------------------------------
def _pendulum_field(system):
    w2 = system.g / system.L

    def field(q, p, sin, cos):
        return p, -w2 * sin(q)

    return field


def _double_pendulum_field(system):
    m1, m2, l1, l2, g = (system.params[k] for k in ("m1", "m2", "l1", "l2", "g"))

    def field(q1, q2, p1, p2, sin, cos):
        s, c = sin(q1 - q2), cos(q1 - q2)
        den = m1 + m2 * s * s
        h1 = p1 * p2 * s / (l1 * l2 * den)
        h2 = (m2 * l2**2 * p1**2 + (m1 + m2) * l1**2 * p2**2 - 2 * m2 * l1 * l2 * p1 * p2 * c) * (
            s * c / (l1**2 * l2**2 * den * den)
        )
        dq1 = (l2 * p1 - l1 * p2 * c) / (l1**2 * l2 * den)
        dq2 = (-m2 * l2 * p1 * c + (m1 + m2) * l1 * p2) / (m2 * l1 * l2**2 * den)
        dp1 = -(m1 + m2) * g * l1 * sin(q1) - h1 + h2
        dp2 = -m2 * g * l2 * sin(q2) + h1 - h2
        return dq1, dq2, dp1, dp2

    return field


FIELDS = {"pendulum": _pendulum_field, "double-pendulum": _double_pendulum_field}


def numpy_rhs(system, z_check: np.ndarray):
    """``(rhs, rhs_stacked)`` for ``solve_ivp``: one state ``(2n,)``, or ``m`` states stacked
    coordinate-major (``(2n * m,)``: all q1, all q2, ..., all p_n). Both are checked against
    ``system.vector_field`` at ``z_check: (m, 2n)``."""
    field = FIELDS[system.name](system)

    def rhs(t, y):  # python floats: faster than numpy scalars
        return field(*y.tolist(), math.sin, math.cos)

    def rhs_stacked(t, y):
        return np.concatenate(field(*y.reshape(system.dim, -1), np.sin, np.cos))

    truth = system.vector_field(0.0, torch.from_numpy(z_check)).numpy()
    one = np.array([rhs(0.0, z) for z in z_check])
    many = rhs_stacked(0.0, z_check.T.ravel()).reshape(system.dim, -1).T
    dev = max(np.abs(one - truth).max(), np.abs(many - truth).max()) / (1.0 + np.abs(truth).max())
    if dev > 1e-12:
        raise RuntimeError(f"numpy right-hand side of {system.name} disagrees with symplearn by {dev:.2g}")
    return rhs, rhs_stacked


# ---------------------------------------------------------------------------------------------
# reference, errors, the two contenders
# ---------------------------------------------------------------------------------------------
def rms_error(zT: np.ndarray, ref: np.ndarray) -> float:
    """RMS over trajectories of ``||zT - ref||_2``; both ``(m, 2n)``."""
    return float(np.sqrt(np.mean(np.sum((zT - ref) ** 2, axis=-1))))


def reference(rhs_stacked, z0: np.ndarray, horizon: float) -> tuple[np.ndarray, float]:
    """Tight DOP853 final states ``(m, 2n)`` of ``z0: (m, 2n)`` and their estimated RMS error
    (distance to a solve at ten times the tolerance)."""
    finals = []
    for tol in (REF_TOL, 10 * REF_TOL):
        sol = solve_ivp(rhs_stacked, (0.0, horizon), z0.T.ravel(), method="DOP853", rtol=tol, atol=tol)
        if not sol.success:
            raise RuntimeError(f"reference solve failed: {sol.message}")
        finals.append(sol.y[:, -1].reshape(z0.shape[1], -1).T)
    return finals[0], rms_error(finals[1], finals[0])


def run_symplearn(system, integrator, z0: Tensor, dt: float, n_steps: int) -> tuple[float, Tensor]:
    """Wall time of one batched run from ``z0: (N, 2n)`` and its final states ``(N, 2n)``."""
    with torch.no_grad():
        t0 = time.perf_counter()
        zT = integrate(discretize(system, integrator, dt), z0, n_steps, save_every=n_steps).z[-1]
        return time.perf_counter() - t0, zT


def run_scipy(
    rhs, z0: np.ndarray, horizon: float, method: str, tol: float
) -> tuple[float, np.ndarray, float]:
    """``solve_ivp`` looped over ``z0: (m, 2n)``: wall time, final states ``(m, 2n)``, mean
    accepted steps per trajectory."""
    out = np.empty_like(z0)
    steps = 0
    t0 = time.perf_counter()
    for i, z in enumerate(z0):
        sol = solve_ivp(rhs, (0.0, horizon), z, method=method, rtol=tol, atol=tol)
        if not sol.success:
            raise RuntimeError(f"solve_ivp {method} tol={tol:g} failed: {sol.message}")
        out[i] = sol.y[:, -1]
        steps += len(sol.t) - 1
    return time.perf_counter() - t0, out, steps / len(z0)


def match_tolerance(rhs, z0: np.ndarray, ref: np.ndarray, horizon: float, method: str, target: float) -> dict:
    """Loosest ``rtol = atol`` on the quarter-decade ``LADDER`` whose RMS error is at most ``target``.

    Walks down by decades until the error is small enough, then tries the three quarter-decade
    points above that decade, loosest first. ``ladder_bound`` says where the ladder ended the search.
    """
    tried: dict[int, float] = {}

    def err(k: int) -> float:
        if k not in tried:
            tried[k] = rms_error(run_scipy(rhs, z0, horizon, method, 10.0 ** (k / 4))[1], ref)
        return tried[k]

    loosest, tightest = LADDER
    k = loosest
    while err(k) > target and k > tightest:
        k -= 4
    bound = "loosest" if k == loosest else ("tightest" if err(k) > target else None)
    if k < loosest and err(k) <= target:
        k = next((j for j in (k + 3, k + 2, k + 1) if err(j) <= target), k)
    return {
        "tol": 10.0 ** (k / 4),
        "error": err(k),
        "ladder_bound": bound,
        "ladder": [{"tol": 10.0 ** (j / 4), "error": e} for j, e in sorted(tried.items(), reverse=True)],
    }


def _count_calls(system, names=("vector_field", "grad_V")) -> dict:
    """Count calls of ``system``'s field methods (instance attributes shadow the class's)."""
    counter = {"calls": 0}
    for name in names:
        fn = getattr(system, name, None)
        if fn is None:  # a non-separable system has no grad_V
            continue

        def counted(*args, _fn=fn):
            counter["calls"] += 1
            return _fn(*args)

        setattr(system, name, counted)
    return counter


# ---------------------------------------------------------------------------------------------
# one case
# ---------------------------------------------------------------------------------------------
def run_case(case: Case, config: Config) -> dict:
    """Benchmark one case; returns its JSON record."""
    system = symplearn.get_system(case.system)
    kwargs = {} if case.fixed_point_tol is None else {"tol": case.fixed_point_tol}
    if case.solver is not None:
        kwargs["solver"] = case.solver
    integrator = get_integrator(case.integrator, **kwargs)
    n_steps = round(case.horizon / case.dt)
    if not math.isclose(n_steps * case.dt, case.horizon, rel_tol=1e-12):
        raise ValueError(f"horizon {case.horizon} is not a multiple of dt {case.dt}")
    z0 = system.sample(config.n_traj, seed=config.seed, dtype=torch.float64)
    sub = z0[: config.n_scipy].numpy().copy()
    rhs, rhs_stacked = numpy_rhs(system, sub)
    ref, ref_err = reference(rhs_stacked, sub, case.horizon)
    counter = _count_calls(system)

    # symplearn, 1 thread, full run: warm-up, accuracy, field evaluations per step
    base_nt = config.threads[0]
    torch.set_num_threads(base_nt)
    run_symplearn(system, integrator, z0, case.dt, 1)
    counter["calls"] = 0
    zT = run_symplearn(system, integrator, z0, case.dt, n_steps)[1]
    evals_per_step = counter["calls"] / n_steps
    solver_used = dict(getattr(integrator, "last_solve", {}) or {}) or None  # implicit methods
    err = rms_error(zT[: config.n_scipy].numpy(), ref)
    if not ref_err < 1e-2 * err:
        raise RuntimeError(f"{case}: reference uncertainty {ref_err:.2g} is not << error {err:.2g}")

    # short probe of every thread count: same numbers, and drop a count that is much slower than
    # the first (on an oversubscribed machine each parallel op waits for a descheduled thread)
    probe_steps = min(n_steps, PROBE_STEPS)
    probe, probe_z, timed_threads = {}, {}, []
    for nt in config.threads:
        torch.set_num_threads(nt)
        run_symplearn(system, integrator, z0, case.dt, 1)
        wall, probe_z[nt] = run_symplearn(system, integrator, z0, case.dt, probe_steps)
        probe[nt] = config.n_traj * probe_steps / wall
        if probe[nt] * PROBE_SLOWDOWN_LIMIT >= probe[base_nt]:
            timed_threads.append(nt)
    thread_diff = max(float((z - probe_z[base_nt]).abs().max()) for z in probe_z.values())

    # scipy: tolerance matching on the subset (this also warms it up)
    torch.set_num_threads(1)
    scipy_match = {m: match_tolerance(rhs, sub, ref, case.horizon, m, err) for m in SCIPY_METHODS}

    # interleaved rounds
    walls = {f"symplearn/{nt}": [] for nt in timed_threads} | {f"scipy/{m}": [] for m in SCIPY_METHODS}
    scipy_steps = {}
    dropped = {}
    for rnd in range(config.repeats):
        for nt in timed_threads:
            if nt in dropped:
                continue
            torch.set_num_threads(nt)
            walls[f"symplearn/{nt}"].append(run_symplearn(system, integrator, z0, case.dt, n_steps)[0])
            slowdown = walls[f"symplearn/{nt}"][-1] / walls[f"symplearn/{base_nt}"][-1]
            if slowdown > PROBE_SLOWDOWN_LIMIT:  # the probe passed, but the machine got busier
                dropped[nt] = f"{slowdown:.1f}x slower than {base_nt} thread(s) in round {rnd + 1}"
        torch.set_num_threads(1)
        for m in SCIPY_METHODS:
            wall, _, scipy_steps[m] = run_scipy(rhs, sub, case.horizon, m, scipy_match[m]["tol"])
            walls[f"scipy/{m}"].append(wall * config.n_traj / config.n_scipy)  # per-trajectory scaling

    work = config.n_traj * n_steps  # state-steps delivered by either side

    def tput(key: str) -> float:
        return work / statistics.median(walls[key])

    best = max(SCIPY_METHODS, key=lambda m: tput(f"scipy/{m}"))
    symplearn_res = {}
    for nt in config.threads:
        res = {"torch_threads": nt, "probe_state_steps_per_s": probe[nt]}
        if nt in timed_threads:
            ratios = [s / o for s, o in zip(walls[f"scipy/{best}"], walls[f"symplearn/{nt}"], strict=False)]
            res |= {
                "wall_s": walls[f"symplearn/{nt}"],
                "state_steps_per_s": tput(f"symplearn/{nt}"),
                "ratio_vs_scipy_per_round": ratios,
                "ratio_vs_scipy": statistics.median(ratios),
            }
            if nt in dropped:
                res["stopped"] = dropped[nt] + " (cores oversubscribed); later rounds not timed"
        else:
            res["skipped"] = (
                f"{probe[base_nt] / probe[nt]:.1f}x slower than {base_nt} thread(s) in a "
                f"{probe_steps}-step probe (cores oversubscribed); not timed further"
            )
        symplearn_res[str(nt)] = res
    goal = GOALS.get(case.integrator)
    return {
        "case": asdict(case),
        "n_traj": config.n_traj,
        "n_steps": n_steps,
        "final_error_rms": err,
        "reference_error_rms": ref_err,
        "field_evals_per_step": evals_per_step,
        "implicit_solver_last_step": solver_used,
        "max_diff_between_thread_counts": thread_diff,
        "symplearn": symplearn_res,
        "scipy": {
            m: {
                "rtol_atol": scipy_match[m]["tol"],
                "final_error_rms": scipy_match[m]["error"],
                "ladder_bound": scipy_match[m]["ladder_bound"],
                "ladder": scipy_match[m]["ladder"],
                "n_traj_timed": config.n_scipy,
                "wall_s_scaled_to_n_traj": walls[f"scipy/{m}"],
                "state_steps_per_s": tput(f"scipy/{m}"),
                "own_steps_per_traj": scipy_steps[m],
            }
            for m in SCIPY_METHODS
        },
        "scipy_baseline": best,
        "goal_ratio": goal,
        "goal_met": {
            nt: goal is None or r["ratio_vs_scipy"] >= goal
            for nt, r in symplearn_res.items()
            if "ratio_vs_scipy" in r
        },
    }


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def _ratio(x: float) -> str:
    """A ratio to two significant figures (9.6, not a 10 that reads as a goal of 10 met)."""
    return f"{x:.2g}" if x < 100 else f"{x:.0f}"


def _si(x: float) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _method(r: dict) -> str:
    """The integrator's name, with the implicit solver that its last step used."""
    used = r.get("implicit_solver_last_step")
    if not used:
        return r["case"]["integrator"]
    how = used["solver"] if r["case"].get("solver") else f"auto: {used['solver']}"
    return f"{r['case']['integrator']} ({how})"


def markdown(report: dict) -> str:
    """The results table (one row per case and torch thread count) and its definitions."""
    cfg, mach = report["config"], report["machine"]
    lines = [
        f"# Integrator throughput{' (QUICK SMOKE RUN, not the published numbers)' if cfg['quick'] else ''}",
        "",
        f"{cfg['n_traj']} trajectories, float64, CPU ({mach['cpu']}, {mach['cpus_available']} cores "
        f"available, shared with other jobs: load average {mach['load_average_1_5_15'][0]:.2f} at "
        f"start, {(mach.get('load_average_at_end') or [math.nan])[0]:.2f} at end), torch "
        f"{mach['torch_version']}, scipy {mach['scipy_version']}. Medians of {cfg['repeats']} "
        f"interleaved rounds; total {report['total_wall_s']:.0f} s.",
        "",
        "| system | symplearn method | dt | steps | final error | torch threads "
        "| symplearn state-steps/s | scipy (rtol=atol) | scipy error | scipy state-steps/s "
        "| ratio (min-max) | goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        c, best = r["case"], r["scipy_baseline"]
        s = r["scipy"][best]
        for nt, o in r["symplearn"].items():
            head = f"| {c['system']} | {_method(r)} | {c['dt']:g} | {r['n_steps']} "
            head += f"| {r['final_error_rms']:.2g} | {nt} "
            if "skipped" in o:
                probe = _si(o["probe_state_steps_per_s"])
                lines.append(head + f"| {probe} (probe) | - | - | - | not timed: {o['skipped']} | - |")
                continue
            rr = o["ratio_vs_scipy_per_round"]
            goal = "-"
            if r["goal_ratio"]:
                goal = f">= {r['goal_ratio']:g}x {'met' if r['goal_met'][nt] else 'MISSED'}"
            stop = f", stopped after {len(rr)}" if "stopped" in o else ""
            lines.append(
                head + f"| {_si(o['state_steps_per_s'])} "
                f"| {best} ({s['rtol_atol']:.2g}) | {s['final_error_rms']:.2g} "
                f"| {_si(s['state_steps_per_s'])} | **{_ratio(o['ratio_vs_scipy'])}x** "
                f"({_ratio(min(rr))}-{_ratio(max(rr))}{stop}) "
                f"| {goal} |"
            )
    lines += [
        "",
        "| system | symplearn method | field evals/step | RK45 rtol, steps/traj, state-steps/s "
        "| DOP853 rtol, steps/traj, state-steps/s |",
        "|---|---|---|---|---|",
    ]
    for r in report["results"]:
        cells = [
            f"{r['scipy'][m]['rtol_atol']:.2g}, {r['scipy'][m]['own_steps_per_traj']:.0f}, "
            f"{_si(r['scipy'][m]['state_steps_per_s'])}"
            for m in SCIPY_METHODS
        ]
        lines.append(
            f"| {r['case']['system']} | {_method(r)} | {r['field_evals_per_step']:.1f} "
            f"| {cells[0]} | {cells[1]} |"
        )
    lines += [
        "",
        "- *final error*: RMS over the first "
        f"{cfg['n_scipy']} trajectories of ||z(T) - z_ref(T)||, z_ref from DOP853 at rtol = atol = 1e-13.",
        "- *state-steps/s*: trajectories x symplearn steps / wall time. For scipy the same work (the "
        "same trajectories to the same time, at an error no larger than symplearn's) over scipy's "
        f"time: solve_ivp looped over {cfg['n_scipy']} trajectories, **scaled per trajectory** to "
        f"{cfg['n_traj']}; rtol = atol is the loosest quarter-decade value whose error does not "
        "exceed symplearn's; the faster of RK45 and DOP853 is shown (both in the second table).",
        "- *ratio*: median over rounds of scipy wall / symplearn wall, each round timing both sides "
        "back to back; scipy runs on one core, symplearn with the stated torch threads.",
        "- Implicit methods on the double pendulum use a solver tolerance of 1e-12 relative to the "
        "stage states' scale (1e5 times below the step's local error; the library default, 50 eps, "
        'costs 1-2 more iterations). *(auto: fixed-point)*: the default `solver="auto"` kept the '
        "fixed point; *(newton)*: the simplified Newton solver forced. Field evals/step count calls "
        "(a batched call of all stages, or of all finite-difference perturbations, counts once). "
        "Verlet needs a separable H and is not run on it.",
    ]
    return "\n".join(lines) + "\n"


def run(config: Config) -> dict:
    """Run every case, write ``<stem>.json`` and ``<stem>.md`` to ``config.out_dir``; return the report."""
    t_start = time.perf_counter()
    machine = {**machine_info(), "scipy_version": scipy.__version__}
    results = []
    for case in config.cases:
        t0 = time.perf_counter()
        results.append(run_case(case, config))
        r = results[-1]
        ratios = ", ".join(
            f"{nt} thr " + (f"{_ratio(o['ratio_vs_scipy'])}x" if "ratio_vs_scipy" in o else "skipped")
            for nt, o in r["symplearn"].items()
        )
        dt = time.perf_counter() - t0
        print(f"{case.system} / {case.integrator}: {ratios} ({dt:.0f} s)", file=sys.stderr)
    torch.set_num_threads(1)
    machine["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report = {
        "benchmark": "integrators",
        "config": {
            **{k: v for k, v in asdict(config).items() if k not in ("cases", "out_dir", "stem")},
            "quick": config.stem != Config.stem,
            "dtype": "float64",
            "scipy_methods": list(SCIPY_METHODS),
            "reference": f"DOP853 rtol=atol={REF_TOL:g}, the n_scipy trajectories stacked",
        },
        "machine": machine,
        "results": results,
        "total_wall_s": time.perf_counter() - t_start,
    }
    write_json(config.out_dir / f"{config.stem}.json", report)
    write_text(config.out_dir / f"{config.stem}.md", markdown(report))
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer trajectories, T/5, 2 rounds")
    ap.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where the JSON and markdown go")
    args = ap.parse_args(argv)
    config = Config(out_dir=args.out_dir)
    if args.quick:
        cases = tuple(replace(c, horizon=c.horizon / 5) for c in config.cases)
        config = replace(config, cases=cases, **QUICK)
    report = run(config)  # sets the torch thread count before every timed run, 1 at the end
    print(markdown(report))
    out = config.out_dir / config.stem
    print(f"wrote {out}.json and {out}.md ({report['total_wall_s']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
