"""Integrator throughput: symplearn's batched integrators against scipy ``solve_ivp`` at equal accuracy.

What is measured, per case (system, symplearn method, step ``dt``, horizon ``T``):

1. **symplearn**: ``integrate`` on ``n_traj`` (4096) trajectories at once, under
   ``torch.no_grad`` (``integrate`` itself is differentiable), keeping only the initial and the
   final state (``save_every = n_steps``), float64, once per torch thread setting (1 and 2).
   The wall time is the best of ``repeats`` runs after a warm-up.
2. **accuracy**: the final-state error of that run against a tight reference (scipy DOP853,
   ``rtol = atol = 1e-13``) on the first ``n_scipy`` trajectories: the RMS over trajectories of
   ``||z(T) - z_ref(T)||_2``. The reference is itself checked against gauss-legendre-6 at a
   small step (``reference_check`` in the JSON).
3. **scipy at equal accuracy**: ``solve_ivp`` looping over the same ``n_scipy`` trajectories
   one by one (the way it is normally used), with a hand-written numpy right-hand side (no torch
   overhead), for RK45 and DOP853. ``rtol = atol = tol`` is tuned (decade sweep, then
   log-log regula falsi) until scipy's RMS error lies in ``[0.8, 1.0]`` x symplearn's error;
   the loosest tolerance whose error does not exceed symplearn's is kept, so scipy is never
   less accurate than the run it is compared with. The faster of the two methods is the
   baseline. Its wall time is measured on ``n_scipy`` trajectories and extrapolated
   per trajectory to ``n_traj`` (looping is linear in the number of trajectories).

Throughput is reported as **trajectory-time-units per second**, ``n_traj * T / wall``
(simulated time x trajectories per wall second), which means the same thing for a fixed-step
and an adaptive method; the ratio symplearn / scipy is the speed-up at equal accuracy. For
symplearn the **state-steps per second** ``n_traj * n_steps / wall`` are given as well.

Verlet needs a separable Hamiltonian ``H = T(p) + V(q)``; the double pendulum's kinetic energy
depends on the angles, so only gauss-legendre-4 is run there.

Also measured (``gl_experiment``): private copies of the Gauss-Legendre step with candidate
speed-ups (a fused stage update, a cheaper convergence test, a predictor extrapolated from the
previous step), to size the gain before changing ``symplearn/integrators/implicit.py``.

Run ``python benchmarks/bench_integrators.py`` (about 1-2 minutes on 2 cores); ``--quick`` for a
smoke run. Results: ``benchmarks/results/integrators.json`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy
import torch
from scipy.integrate import solve_ivp
from torch import Tensor

import symplearn
from symplearn._files import provenance, write_json
from symplearn.integrators import GaussLegendre, get_integrator, integrate

RESULTS = Path(__file__).resolve().parent / "results" / "integrators.json"

GOALS = {"verlet": 50.0, "gauss-legendre-4": 10.0}
SCIPY_METHODS = ("RK45", "DOP853")
REF_TOL = 1e-13


@dataclass(frozen=True)
class Case:
    """One benchmark case: ``system`` integrated with ``integrator`` at step ``dt`` up to ``horizon``."""

    system: str
    integrator: str
    dt: float
    horizon: float
    energy_range: tuple[float, float] | None = None
    integrator_kwargs: dict = field(default_factory=dict)
    note: str = ""


DEFAULT_CASES = (
    Case("pendulum", "verlet", 0.01, 10.0),
    Case("pendulum", "gauss-legendre-4", 0.05, 10.0),
    Case(
        "double-pendulum",
        "gauss-legendre-4",
        0.01,
        5.0,
        # the library default (50 eps, element-wise) sits below the round-off floor of this
        # vector field for some states and the step raises ConvergenceError (see the report)
        integrator_kwargs={"tol": 1e-12},
        note="Verlet does not apply: the double pendulum's H is not separable; fixed-point "
        "tol=1e-12 because the default 50*eps is not reachable in round-off for some states",
    ),
)


@dataclass
class Config:
    """Benchmark settings (defaults are the published run)."""

    n_traj: int = 4096
    n_scipy: int = 64
    threads: tuple[int, ...] = (1, 2)
    repeats: int = 3
    seed: int = 0
    cases: tuple[Case, ...] = DEFAULT_CASES
    gl_experiment: bool = True
    wait_for_systems_s: float = 0.0
    out: Path = field(default_factory=lambda: RESULTS)


# --------------------------------------------------------------------------------------------
# numpy right-hand sides for scipy (hand-written: scipy is not charged for torch's overhead)
# --------------------------------------------------------------------------------------------
def _rhs_pendulum(system):
    w2 = system.g / system.L

    def rhs(t, y):
        return np.array([y[1], -w2 * math.sin(y[0])])

    def rhs_stacked(t, y):  # y = (q_1..q_m, p_1..p_m)
        m = y.shape[0] // 2
        return np.concatenate([y[m:], -w2 * np.sin(y[:m])])

    return rhs, rhs_stacked


def _param(system, *names):
    for n in names:
        if n in system.params:
            return system.params[n]
    raise KeyError(f"{system.name} has none of the parameters {names}; it has {list(system.params)}")


def _rhs_double_pendulum(system):
    """Hamilton's equations of the planar double pendulum in angles and canonical momenta."""
    m1 = _param(system, "m1")
    m2 = _param(system, "m2")
    l1 = _param(system, "l1", "L1")
    l2 = _param(system, "l2", "L2")
    g = _param(system, "g")

    def field_(q1, q2, p1, p2, sin, cos):
        d = q1 - q2
        s, c = sin(d), cos(d)
        den = m1 + m2 * s * s
        h1 = p1 * p2 * s / (l1 * l2 * den)
        h2 = (m2 * l2**2 * p1**2 + (m1 + m2) * l1**2 * p2**2 - 2 * m2 * l1 * l2 * p1 * p2 * c) * (
            2 * s * c
        ) / (2 * l1**2 * l2**2 * den * den)
        dq1 = (l2 * p1 - l1 * p2 * c) / (l1**2 * l2 * den)
        dq2 = (-m2 * l2 * p1 * c + (m1 + m2) * l1 * p2) / (m2 * l1 * l2**2 * den)
        dp1 = -(m1 + m2) * g * l1 * sin(q1) - h1 + h2
        dp2 = -m2 * g * l2 * sin(q2) + h1 - h2
        return dq1, dq2, dp1, dp2

    def rhs(t, y):
        return np.array(field_(y[0], y[1], y[2], y[3], math.sin, math.cos))

    def rhs_stacked(t, y):  # y = (q1_*, q2_*, p1_*, p2_*), each of length m
        m = y.shape[0] // 4
        parts = field_(y[:m], y[m : 2 * m], y[2 * m : 3 * m], y[3 * m :], np.sin, np.cos)
        return np.concatenate(parts)

    return rhs, rhs_stacked


RHS = {"pendulum": _rhs_pendulum, "double-pendulum": _rhs_double_pendulum}


def _stack(z: np.ndarray) -> np.ndarray:
    """``(m, d)`` states -> one flat vector ordered coordinate-major (all q1, all q2, ..., all p_n)."""
    return np.ascontiguousarray(z.T).ravel()


def _unstack(y: np.ndarray, d: int) -> np.ndarray:
    return y.reshape(d, -1).T


def _check_rhs(system, rhs, rhs_stacked, z: np.ndarray) -> float:
    """Largest deviation of the numpy right-hand sides from ``system.vector_field`` at ``z: (m, d)``."""
    truth = system.vector_field(torch.from_numpy(z)).numpy()
    one = np.stack([rhs(0.0, zi) for zi in z])
    many = _unstack(rhs_stacked(0.0, _stack(z)), z.shape[1])
    return float(max(np.abs(one - truth).max(), np.abs(many - truth).max()) / (1 + np.abs(truth).max()))


# --------------------------------------------------------------------------------------------
# reference, errors, timing
# --------------------------------------------------------------------------------------------
def _reference(rhs_stacked, z0: np.ndarray, horizon: float) -> np.ndarray:
    """Tight DOP853 solution at ``horizon`` of all trajectories ``z0: (m, d)`` as one stacked ODE."""
    sol = solve_ivp(rhs_stacked, (0.0, horizon), _stack(z0), method="DOP853", rtol=REF_TOL, atol=REF_TOL)
    if not sol.success:
        raise RuntimeError(f"reference solve failed: {sol.message}")
    return _unstack(sol.y[:, -1], z0.shape[1])


def _errors(zT: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    e = np.linalg.norm(zT - ref, axis=-1)
    return {
        "rms": float(np.sqrt(np.mean(e**2))),
        "median": float(np.median(e)),
        "max": float(e.max()),
    }


def _run_ours(system, integrator, z0: Tensor, dt: float, n_steps: int, repeats: int):
    """Best-of-``repeats`` wall time of one batched run; returns ``(wall_s, final_state)``."""
    with torch.no_grad():
        integrate(system, z0, dt, min(n_steps, 5), integrator, save_every=min(n_steps, 5))  # warm-up
        best, zT = math.inf, None
        for _ in range(repeats):
            t0 = time.perf_counter()
            traj = integrate(system, z0, dt, n_steps, integrator, save_every=n_steps)
            wall = time.perf_counter() - t0
            best = min(best, wall)
            zT = traj.z[-1]
    return best, zT


def _run_scipy(rhs, z0: np.ndarray, horizon: float, method: str, tol: float) -> dict:
    """Loop ``solve_ivp`` over the trajectories ``z0: (m, d)``; final states, wall time, work."""
    out = np.empty_like(z0)
    nfev = nsteps = 0
    t0 = time.perf_counter()
    for i in range(z0.shape[0]):
        sol = solve_ivp(rhs, (0.0, horizon), z0[i], method=method, rtol=tol, atol=tol)
        if not sol.success:
            raise RuntimeError(f"solve_ivp {method} tol={tol:g} failed: {sol.message}")
        out[i] = sol.y[:, -1]
        nfev += sol.nfev
        nsteps += sol.t.shape[0] - 1
    wall = time.perf_counter() - t0
    m = z0.shape[0]
    return {"zT": out, "wall_s": wall, "nfev_per_traj": nfev / m, "steps_per_traj": nsteps / m}


def _match_scipy(rhs, z0: np.ndarray, ref: np.ndarray, horizon: float, method: str, target: float):
    """Tune ``rtol = atol`` of ``method`` until its RMS error matches ``target`` (see module doc).

    Returns the chosen evaluation (tolerance, errors, timing) and every evaluation made.
    """
    evals: dict[float, dict] = {}

    def ev(log_tol: float) -> dict:
        log_tol = round(log_tol, 4)
        if log_tol not in evals:
            r = _run_scipy(rhs, z0, horizon, method, 10.0**log_tol)
            evals[log_tol] = {
                "tol": 10.0**log_tol,
                "error": _errors(r["zT"], ref),
                "wall_s": r["wall_s"],
                "nfev_per_traj": r["nfev_per_traj"],
                "steps_per_traj": r["steps_per_traj"],
            }
        return evals[log_tol]

    def err(lt: float) -> float:
        return ev(lt)["error"]["rms"]

    lo_limit, hi_limit = math.log10(REF_TOL), -1.0
    # decade sweep from a moderate tolerance: find loose (err > target) and tight (err <= target)
    lt = -4.0
    if err(lt) <= target:
        while lt < hi_limit and err(lt) <= target:
            lt += 1.0
    else:
        while lt > lo_limit and err(lt) > target:
            lt -= 1.0
    ok = [k for k, v in evals.items() if v["error"]["rms"] <= target]
    bad = [k for k, v in evals.items() if v["error"]["rms"] > target]
    if ok and bad:
        tight, loose = max(ok), min(bad)
        for _ in range(6):
            e_t, e_l = err(tight), err(loose)
            if 0.8 * target <= e_t <= target:
                break
            # regula falsi on log(err) against log(tol), kept inside the bracket
            x = tight + (math.log(target * 0.9) - math.log(e_t)) * (loose - tight) / (
                math.log(e_l) - math.log(e_t)
            )
            x = min(max(x, tight + 0.05 * (loose - tight)), loose - 0.05 * (loose - tight))
            if err(x) <= target:
                tight = x
            else:
                loose = x
    ok = [k for k, v in evals.items() if v["error"]["rms"] <= target]
    chosen_key = max(ok) if ok else min(evals)  # loosest tolerance that is at least as accurate
    chosen = dict(evals[chosen_key])
    # time it again (the first pass may carry warm-up effects) and keep the better of the two
    again = _run_scipy(rhs, z0, horizon, method, chosen["tol"])
    chosen["wall_s"] = min(chosen["wall_s"], again["wall_s"])
    chosen["reached_target"] = bool(ok)
    sweep = [
        {"tol": v["tol"], "rms_error": v["error"]["rms"], "wall_s": v["wall_s"]}
        for _, v in sorted(evals.items())
    ]
    return chosen, sweep


# --------------------------------------------------------------------------------------------
# private copies of the Gauss-Legendre step with candidate speed-ups (measurement only)
# --------------------------------------------------------------------------------------------
def _extrapolation_matrix(c: np.ndarray) -> np.ndarray:
    """``P_ij = l_j(1 + c_i)``: the stage derivatives of the next step predicted by extrapolating
    the derivative of this step's collocation polynomial (Lagrange basis ``l_j`` on nodes ``c``)."""
    s = len(c)
    P = np.ones((s, s))
    for j in range(s):
        for m in range(s):
            if m != j:
                P[:, j] *= (1.0 + c - c[m]) / (c[j] - c[m])
    return P


class _FastGaussLegendre(GaussLegendre):
    """Gauss-Legendre with a fused stage update and a cheaper convergence test.

    Differences from the library step:
      * ``Z = z + dt A K`` is one ``addmm`` on the stage-flattened ``K: (s, N)`` (no einsum,
        no separate scale and add), with ``dt A`` cached per dtype/device;
      * convergence test ``max|K_new - K| <= tol (1 + max|K_new|)`` (two inf-norms instead of
        five element-wise ops; a norm-wise instead of an element-wise relative test);
      * ``predictor="extrapolate"``: start from the previous step's stage derivatives
        extrapolated along the collocation polynomial when the step continues the previous one
        (falls back to the explicit-Euler start otherwise);
      * ``stall_stop``: also accept an iterate whose increment stopped decreasing once it is
        within ``100 tol`` (the round-off floor; Hairer-Lubich-Wanner, GNI VIII.6), instead of
        raising ``ConvergenceError`` when ``tol`` lies below that floor.
    """

    def __init__(self, stages: int = 2, *, predictor: str = "euler", stall_stop: bool = False, **kw):
        super().__init__(stages, **kw)
        self.predictor = predictor
        self.stall_stop = stall_stop
        self._P = _extrapolation_matrix(self.c)
        self._cache: dict = {}
        self._last: tuple | None = None
        self.n_iter = 0
        self.n_steps = 0

    def _mats(self, z: Tensor, dt: float):
        key = (z.dtype, z.device, dt)
        if key not in self._cache:
            kw = {"dtype": z.dtype, "device": z.device}
            self._cache = {
                key: (
                    torch.as_tensor(dt * self.A, **kw),
                    torch.as_tensor(dt * self.b, **kw).unsqueeze(0),
                    torch.as_tensor(self._P, **kw),
                )
            }
        return self._cache[key]

    def step(self, dynamics, z: Tensor, dt: float, *, step_index: int = 0) -> Tensor:
        s = self.stages
        hA, hb, P = self._mats(z, dt)
        tol = self.tol if self.tol is not None else 50.0 * torch.finfo(z.dtype).eps
        f = dynamics.vector_field
        shape = z.shape
        zf = z.reshape(1, -1)
        last = self._last
        if self.predictor == "extrapolate" and last is not None and last[0] is z:
            K = P @ last[1]
        else:
            K = f(z).reshape(1, -1).expand(s, -1)
        residual = previous = math.inf
        for _ in range(self.max_iter):
            Z = torch.addmm(zf, hA, K)  # (s, N) = z + dt A K
            K_new = f(Z.view(s, *shape)).reshape(s, -1)
            self.n_iter += 1
            delta = float(torch.linalg.vector_norm((K_new - K).detach(), ord=math.inf))
            scale = 1.0 + float(torch.linalg.vector_norm(K_new.detach(), ord=math.inf))
            previous, residual = residual, delta / scale
            K = K_new
            if not math.isfinite(residual):
                break
            stalled = self.stall_stop and residual >= previous and residual <= 100.0 * tol
            if residual <= tol or stalled:
                self.n_steps += 1
                out = torch.addmm(zf, hb, K).view(shape)
                self._last = (out, K) if self.predictor == "extrapolate" else None
                return out
        raise symplearn.ConvergenceError(
            f"{self.name}: no convergence at step {step_index} (residual {residual:.3g})"
        )


class _CountingDynamics:
    """Wraps a dynamics and counts vector-field evaluations (for the iteration counts)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.n_dof, self.separable = inner.n_dof, inner.separable

    @property
    def dim(self) -> int:
        return self.inner.dim

    def vector_field(self, z: Tensor) -> Tensor:
        self.calls += 1
        return self.inner.vector_field(z)


def _gl_experiment(system, case: Case, z0: Tensor, baseline_zT: Tensor, repeats: int) -> dict:
    """Time the private Gauss-Legendre variants against the library one (1 torch thread)."""
    torch.set_num_threads(1)
    n_steps = round(case.horizon / case.dt)
    stages = int(case.integrator.rsplit("-", 1)[1]) // 2
    kw = case.integrator_kwargs
    variants = {
        "library": get_integrator(case.integrator, **kw),
        "fused": _FastGaussLegendre(stages, **kw),
        "fused+extrapolated-predictor": _FastGaussLegendre(stages, predictor="extrapolate", **kw),
        # default tol (50 eps), but a stalled iteration within 100 tol is accepted as converged
        "fused+extrapolated+stall-stop(default tol)": _FastGaussLegendre(
            stages, predictor="extrapolate", stall_stop=True
        ),
    }
    out = {}
    for name, integ in variants.items():
        wall, zT = _run_ours(system, integ, z0, case.dt, n_steps, repeats)
        counter = _CountingDynamics(system)
        with torch.no_grad():
            integrate(counter, z0[:8], case.dt, n_steps, integ, save_every=n_steps)
        out[name] = {
            "wall_s": wall,
            "state_steps_per_s": z0.shape[0] * n_steps / wall,
            "vector_field_evals_per_step": counter.calls / n_steps,
            "max_abs_diff_from_library": float((zT - baseline_zT).abs().max()),
        }
    base = out["library"]["wall_s"]
    for v in out.values():
        v["speedup_vs_library"] = base / v["wall_s"]
    return out


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------
def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "cores_available": affinity,
        "platform": platform.platform(),
        "torch_default_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "scipy_version": scipy.__version__,
        **provenance(),
    }


def _wait_for_system(name: str, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        if name in symplearn.SYSTEMS:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(5.0)


def run_case(case: Case, config: Config) -> dict:
    """Benchmark one case; returns its JSON record."""
    system = symplearn.get_system(case.system)
    integrator = get_integrator(case.integrator, **case.integrator_kwargs)
    n_steps = round(case.horizon / case.dt)
    if not math.isclose(n_steps * case.dt, case.horizon, rel_tol=1e-12):
        raise ValueError(f"horizon {case.horizon} is not a multiple of dt {case.dt}")
    z0 = system.sample(config.n_traj, energy_range=case.energy_range, seed=config.seed)
    z0_sub = z0[: config.n_scipy].numpy().copy()
    rhs, rhs_stacked = RHS[case.system](system)
    rhs_dev = _check_rhs(system, rhs, rhs_stacked, z0_sub)
    if rhs_dev > 1e-12:
        raise RuntimeError(f"numpy right-hand side of {case.system} disagrees with symplearn ({rhs_dev:.2g})")

    t0 = time.perf_counter()
    ref = _reference(rhs_stacked, z0_sub, case.horizon)
    ref_wall = time.perf_counter() - t0
    # independent check of the reference: gauss-legendre-6 at a small step
    dt_chk = case.dt / 4 if case.integrator == "verlet" else case.dt / 2
    with torch.no_grad():
        chk = integrate(
            system,
            torch.from_numpy(z0_sub),
            dt_chk,
            round(case.horizon / dt_chk),
            get_integrator("gauss-legendre-6", tol=1e-13, max_iter=200),
            save_every=round(case.horizon / dt_chk),
        ).z[-1]
    ref_check = _errors(chk.numpy(), ref)

    ours = {}
    zT_1thread = None
    for nt in config.threads:
        torch.set_num_threads(nt)
        wall, zT = _run_ours(system, integrator, z0, case.dt, n_steps, config.repeats)
        if zT_1thread is None:
            zT_1thread = zT
        ours[str(nt)] = {
            "torch_threads": torch.get_num_threads(),
            "wall_s": wall,
            "state_steps_per_s": config.n_traj * n_steps / wall,
            "traj_time_units_per_s": config.n_traj * case.horizon / wall,
        }
    torch.set_num_threads(1)
    err_ours = _errors(zT_1thread[: config.n_scipy].numpy(), ref)
    target = err_ours["rms"]

    scipy_res = {}
    for method in SCIPY_METHODS:
        chosen, sweep = _match_scipy(rhs, z0_sub, ref, case.horizon, method, target)
        per_traj = chosen["wall_s"] / config.n_scipy
        scipy_res[method] = {
            "rtol_atol": chosen["tol"],
            "error": chosen["error"],
            "error_ratio_to_ours": chosen["error"]["rms"] / target,
            "reached_target": chosen["reached_target"],
            "wall_s_measured": chosen["wall_s"],
            "n_traj_measured": config.n_scipy,
            "wall_s_per_traj": per_traj,
            "wall_s_extrapolated_to_n_traj": per_traj * config.n_traj,
            "traj_time_units_per_s": case.horizon / per_traj,
            "nfev_per_traj": chosen["nfev_per_traj"],
            "steps_per_traj": chosen["steps_per_traj"],
            "sweep": sweep,
        }
    eligible = [m for m in SCIPY_METHODS if scipy_res[m]["reached_target"]] or list(SCIPY_METHODS)
    best = max(eligible, key=lambda m: scipy_res[m]["traj_time_units_per_s"])
    base_tput = scipy_res[best]["traj_time_units_per_s"]
    ratios = {nt: o["traj_time_units_per_s"] / base_tput for nt, o in ours.items()}
    goal = GOALS.get(case.integrator)
    record = {
        "case": asdict(case),
        "n_traj": config.n_traj,
        "n_steps": n_steps,
        "ours": ours,
        "ours_error": err_ours,
        "reference": {
            "method": f"DOP853 rtol=atol={REF_TOL:g}, all {config.n_scipy} trajectories as one ODE",
            "wall_s": ref_wall,
            "check": f"gauss-legendre-6 dt={dt_chk:g} (fixed-point tol 1e-13)",
            "check_error": ref_check,
        },
        "numpy_rhs_max_rel_deviation": rhs_dev,
        "scipy": scipy_res,
        "scipy_baseline": best,
        "ratio_vs_scipy": ratios,
        "goal_ratio": goal,
        "goal_met": {nt: (goal is None or r >= goal) for nt, r in ratios.items()},
    }
    if config.gl_experiment and case.integrator.startswith("gauss-legendre"):
        record["gl_experiment"] = _gl_experiment(system, case, z0, zT_1thread, config.repeats)
    return record


def _fmt(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.1f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.3g}"


def markdown(records: list[dict], config: Config) -> str:
    """The README table: one row per case and torch thread setting."""
    lines = [
        f"Throughput on {config.n_traj} trajectories (float64, CPU); scipy looped over "
        f"{config.n_scipy} of them, extrapolated per trajectory, at equal final-state accuracy.",
        "",
        "| system | symplearn method | dt | T | torch threads | final error (RMS) "
        "| symplearn traj·time/s | symplearn state-steps/s | scipy (rtol=atol) "
        "| scipy traj·time/s | ratio | goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        c = r["case"]
        sb = r["scipy_baseline"]
        s = r["scipy"][sb]
        for nt, o in r["ours"].items():
            goal = r["goal_ratio"]
            lines.append(
                f"| {c['system']} | {c['integrator']} | {c['dt']:g} | {c['horizon']:g} | {nt} "
                f"| {r['ours_error']['rms']:.2g} | {_fmt(o['traj_time_units_per_s'])} "
                f"| {_fmt(o['state_steps_per_s'])} | {sb} ({s['rtol_atol']:.2g}) "
                f"| {_fmt(s['traj_time_units_per_s'])} | **{r['ratio_vs_scipy'][nt]:.0f}x** "
                f"| {'>= ' + format(goal, 'g') + 'x' if goal else '-'}"
                f"{' ok' if r['goal_met'][nt] else ' MISSED'} |"
            )
    exp = [r for r in records if "gl_experiment" in r]
    if exp:
        lines += [
            "",
            "Gauss-Legendre step variants (private copies, 1 thread):",
            "",
            "| system | variant | f evals/step | state-steps/s | speed-up | max diff vs library |",
            "|---|---|---|---|---|---|",
        ]
        for r in exp:
            for name, v in r["gl_experiment"].items():
                lines.append(
                    f"| {r['case']['system']} | {name} | {v['vector_field_evals_per_step']:.2f} "
                    f"| {_fmt(v['state_steps_per_s'])} | {v['speedup_vs_library']:.2f}x "
                    f"| {v['max_abs_diff_from_library']:.1e} |"
                )
    return "\n".join(lines)


def run(config: Config) -> dict:
    """Run every case, write the JSON (atomically) and return the report."""
    t_start = time.perf_counter()
    machine = _machine()
    records, skipped = [], []
    for case in config.cases:
        if not _wait_for_system(case.system, config.wait_for_systems_s):
            skipped.append({"case": asdict(case), "reason": f"system {case.system!r} not available"})
            print(f"skipping {case.system}: not in symplearn.SYSTEMS", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        records.append(run_case(case, config))
        print(f"{case.system} / {case.integrator}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    torch.set_num_threads(1)
    report = {
        "benchmark": "integrators",
        "definitions": {
            "traj_time_units_per_s": "n_traj * T / wall_s (simulated time x trajectories per second)",
            "state_steps_per_s": "n_traj * n_steps / wall_s (symplearn only)",
            "ratio_vs_scipy": "symplearn traj_time_units_per_s / scipy's (faster method at equal "
            "accuracy), per torch thread setting",
            "error": "RMS over the first n_scipy trajectories of ||z(T) - z_ref(T)||_2",
            "scipy_timing": "solve_ivp looped over n_scipy trajectories with a numpy RHS, "
            "rtol=atol tuned to symplearn's error, wall time extrapolated per trajectory",
            "symplearn_timing": "integrate(...) under torch.no_grad, save_every=n_steps, float64, "
            "best of `repeats` after a warm-up",
        },
        "config": {
            "n_traj": config.n_traj,
            "n_scipy": config.n_scipy,
            "threads": list(config.threads),
            "repeats": config.repeats,
            "seed": config.seed,
        },
        "machine": machine,
        "results": records,
        "skipped": skipped,
        "total_wall_s": time.perf_counter() - t_start,
    }
    report["markdown"] = markdown(records, config)
    write_json(config.out, report)
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (not the published numbers)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON output path")
    ap.add_argument("--n-traj", type=int, default=Config.n_traj)
    ap.add_argument("--n-scipy", type=int, default=Config.n_scipy)
    ap.add_argument("--no-gl-experiment", action="store_true")
    ap.add_argument(
        "--wait-for-systems", type=float, default=0.0, metavar="S",
        help="wait up to S seconds for a system that is not registered yet (else skip it)",
    )
    args = ap.parse_args(argv)
    config = Config(
        n_traj=args.n_traj,
        n_scipy=args.n_scipy,
        out=args.out,
        gl_experiment=not args.no_gl_experiment,
        wait_for_systems_s=args.wait_for_systems,
    )
    if args.quick:
        config = replace(
            config,
            n_traj=256,
            n_scipy=8,
            repeats=1,
            cases=tuple(replace(c, horizon=c.horizon / 5) for c in config.cases),
        )
    torch.set_num_threads(1)
    report = run(config)
    print(report["markdown"])
    print(f"\nwrote {config.out} ({report['total_wall_s']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
