r"""Is a force field conservative? Three detectors that work on any force function.

A force field ``F(q)`` on configurations ``q`` of shape ``(3N,)`` is the gradient of an energy
(``F = -grad V``) if and only if

1. its work around every closed loop is zero (:func:`loop_work`: the many-body form of the loop
   integral of a vector field), and, where it is differentiable,
2. its Jacobian ``J = dF/dq`` is symmetric (:func:`jacobian_asymmetry`:
   ``lambda = ||J_anti||_F / ||J||_F`` with ``J_anti = (J - J^T) / 2``).

The third detector, :func:`nve_audit`, is the consequence users see: a velocity-Verlet (NVE) run
whose energy (the model's own, or a reference energy) drifts instead of oscillating.

Force functions are callables ``forces(q) -> F`` on torch tensors ``(..., 3N)`` (float64
recommended). :func:`system_force_fn` makes one from a symplearn particle system or learned
model (differentiable: Jacobians by autograd); :func:`ase_force_fn` from any ASE calculator and
an Atoms template (Jacobians by central finite differences through the calculator).
:class:`CurlCalculator` wraps an ASE calculator with a deliberate curl, to test the detectors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from .._errors import SymplearnError

ForceFn = Callable[[Tensor], Tensor]

__all__ = [
    "CurlCalculator",
    "ForceCheck",
    "JacobianAsymmetry",
    "LoopWork",
    "NVEAudit",
    "ase_force_fn",
    "check_forces",
    "jacobian_asymmetry",
    "loop_work",
    "nve_audit",
    "system_force_fn",
]


# ------------------------------------------------------------------------------------------
# force functions
# ------------------------------------------------------------------------------------------
def system_force_fn(system) -> ForceFn:
    """Forces of a symplearn :class:`~symplearn.systems.particles.ParticleSystem` (the true LJ
    fluid or a learned model from :mod:`symplearn.models.potentials`): ``(..., 3N) -> (..., 3N)``,
    differentiable in ``q``."""
    if not hasattr(system, "compute"):
        raise SymplearnError(f"expected a particle system or learned potential, got {type(system).__name__}")

    def fn(q: Tensor) -> Tensor:
        return system.compute(q, energy=False, virial=False)["forces"]

    fn.differentiable = True
    return fn


def ase_force_fn(calc, atoms) -> ForceFn:
    """Forces of an ASE calculator on copies of ``atoms`` (same cell, numbers, boundary
    conditions) at positions ``q (..., 3N)`` (a Python loop over the batch; no autograd).

    Args:
        calc: an ASE calculator instance.
        atoms: an ``ase.Atoms`` template with N atoms.

    Returns:
        ``forces(q)``: ``(..., 3N) -> (..., 3N)`` float64.
    """
    template = atoms.copy()
    template.calc = calc
    n = len(template)

    def fn(q: Tensor) -> Tensor:
        if q.shape[-1] != 3 * n:
            raise SymplearnError(
                f"positions must have shape (..., {3 * n}) for {n} atoms, got {tuple(q.shape)}"
            )
        flat = q.detach().reshape(-1, 3 * n).to(torch.float64).cpu().numpy()
        out = np.empty_like(flat)
        for k, x in enumerate(flat):
            template.set_positions(x.reshape(n, 3))
            out[k] = template.get_forces().reshape(-1)
        return torch.as_tensor(out).reshape(q.shape).to(q.dtype)

    fn.differentiable = False
    return fn


# ------------------------------------------------------------------------------------------
# loop work
# ------------------------------------------------------------------------------------------
@dataclass
class LoopWork:
    """Work of the forces around closed loops (see :func:`loop_work`).

    Attributes:
        work: ``(n_loops,)`` the work ``W = oint F . dq`` of each loop (energy units).
        quadrature_error: ``(n_loops,)`` ``|W_n - W_{n/2}|``, a bound on the error of the
            ``n/2``-point rule and so (the rule converges spectrally on a smooth periodic
            integrand) a generous bound on that of the ``n``-point rule reported.
        scale: ``(n_loops,)`` ``oint |F . dq|``, the work the forces do along the loop without
            cancellation (the natural size to compare W with).
        relative: ``max |W| / scale``.
        max_abs: ``max |W|``.
        verdict: ``"conservative"`` when ``max |W|`` is within ``10 x`` the largest quadrature
            error plus ``1e-9 x`` the largest scale (round-off), else ``"non-conservative"``.
    """

    work: list
    quadrature_error: list
    scale: list
    relative: float
    max_abs: float
    verdict: str

    def as_dict(self) -> dict:
        return asdict(self)


def _orthonormal_pair(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    u = torch.randn(n, generator=gen, dtype=torch.float64)
    u /= u.norm()
    v = torch.randn(n, generator=gen, dtype=torch.float64)
    v -= (v @ u) * u
    v /= v.norm()
    return u, v


def loop_work(
    force_fn: ForceFn,
    q0: Tensor,
    *,
    n_loops: int = 4,
    amplitude: float = 0.05,
    n_points: int = 64,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> LoopWork:
    r"""Work of the forces around random closed loops through a configuration.

    Loop ``k``: ``q(s) = q0 + a sqrt(3N) (cos(2 pi s) u + sin(2 pi s) v)`` (``u, v`` random
    orthonormal directions in ``R^{3N}``, so each particle moves ``a`` on average), ``s in [0, 1)``.
    ``W = int_0^1 F(q(s)) . q'(s) ds`` by the trapezoidal rule on ``n_points`` points (spectrally
    accurate for a smooth periodic integrand). ``W = 0`` for every loop if and only if ``F`` is a
    gradient.

    Args:
        force_fn: ``(..., 3N) -> (..., 3N)``.
        q0: configuration ``(3N,)``.
        n_loops: number of random loops; amplitude: ``a`` (length units, e.g. sigma);
        n_points: quadrature points (even, >= 8); seed: seed of the loop directions.
        dtype: dtype the positions are given to ``force_fn`` in.

    Returns:
        :class:`LoopWork`.

    Raises:
        SymplearnError: bad sizes.
    """
    if n_points < 8 or n_points % 2:
        raise SymplearnError(f"n_points must be an even number >= 8, got {n_points}")
    if not (amplitude > 0 and math.isfinite(amplitude)):
        raise SymplearnError(f"amplitude must be a positive number, got {amplitude}")
    q0 = q0.detach().to(torch.float64).reshape(-1)
    n = q0.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    s = torch.arange(n_points, dtype=torch.float64) / n_points
    c, si = torch.cos(2 * math.pi * s)[:, None], torch.sin(2 * math.pi * s)[:, None]
    works, errs, scales = [], [], []
    for _ in range(int(n_loops)):
        u, v = _orthonormal_pair(n, gen)
        a = amplitude * math.sqrt(n)
        q = q0 + a * (c * u + si * v)  # (n_points, 3N)
        dq = 2 * math.pi * a * (-si * u + c * v)
        with torch.no_grad():
            F = force_fn(q.to(dtype)).to(torch.float64)
        power = (F * dq).sum(-1)  # (n_points,)
        w = float(power.mean())
        w_half = float(power[::2].mean())
        works.append(w)
        errs.append(abs(w - w_half))
        scales.append(float(power.abs().mean()))
    rel = max(abs(w) / max(sc, 1e-300) for w, sc in zip(works, scales))
    # pooled over the loops: a single loop's |W_n - W_{n/2}| can be small by accident
    ok = max(abs(w) for w in works) <= 10 * max(errs) + 1e-9 * max(scales)
    return LoopWork(
        works, errs, scales, rel, max(abs(w) for w in works), "conservative" if ok else "non-conservative"
    )


# ------------------------------------------------------------------------------------------
# Jacobian asymmetry
# ------------------------------------------------------------------------------------------
@dataclass
class JacobianAsymmetry:
    """Antisymmetric part of the force Jacobian (see :func:`jacobian_asymmetry`).

    Attributes:
        values: ``(n_configs,)`` ``lambda = ||J_anti||_F / ||J||_F`` at each configuration.
        max: largest lambda.
        method: ``"autograd"`` or ``"finite-differences"``.
        floor: the largest lambda that counts as zero, the detection limit in lambda. Autograd:
            ``1e-12`` (round-off of a symmetric Hessian's two triangles). Finite differences:
            measured on the calculator under test, ``4 x`` the largest change of
            ``||J_anti|| / ||J||`` between the steps ``eps`` and ``eps / 2`` (a real curl is the
            same at both steps; round-off, ``~ eps_mach |F| / eps``, and truncation,
            ``~ eps^2 |d^3 F|``, are not), at least ``1e-12``.
        detection_limit: the smallest antisymmetric part ``||J_anti||_F`` (energy / length^2)
            the run could have detected: ``floor x ||J||_F`` (the smallest over the
            configurations).
        verdict: ``"symmetric"`` or ``"asymmetric"`` (some configuration's lambda above its
            floor).
        floors: ``(n_configs,)`` the floor of each configuration.
    """

    values: list
    max: float
    method: str
    floor: float
    verdict: str
    detection_limit: float = float("nan")
    floors: list | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _cluster(q: Tensor, n_atoms: int, box: float | None) -> Tensor:
    """Indices of particle 0 and its ``n_atoms - 1`` nearest neighbours (minimum image if box)."""
    x = q.reshape(-1, 3)
    d = x - x[0]
    if box:
        d = d - box * torch.round(d / box)
    return torch.argsort(d.norm(dim=-1))[:n_atoms]


def jacobian_asymmetry(
    force_fn: ForceFn,
    configs: Tensor,
    *,
    n_atoms: int = 8,
    box: float | None = None,
    method: str = "auto",
    eps: float = 1e-5,
) -> JacobianAsymmetry:
    r"""``lambda = ||J_anti|| / ||J||`` of the force Jacobian block of a cluster of particles.

    ``J`` is the ``3m x 3m`` block ``dF_S / dq_S`` for the particles S = particle 0 and its
    ``m - 1`` nearest neighbours (every principal block of a Hessian is symmetric, and a close
    cluster has strong couplings); ``J_anti = (J - J^T)/2``, Frobenius norms.

    Args:
        force_fn: ``(..., 3N) -> (..., 3N)``.
        configs: configurations ``(n_configs, 3N)`` (or ``(3N,)``).
        n_atoms: cluster size m.
        box: periodic box length for choosing neighbours (None: open space).
        method: ``"autograd"`` (needs a differentiable ``force_fn``), ``"finite-differences"``
            (central, step ``eps``, ``6 m`` force evaluations), ``"auto"`` (autograd when the
            function says ``differentiable``).
        eps: finite-difference step (length units).

    Returns:
        :class:`JacobianAsymmetry`.

    Raises:
        SymplearnError: an unknown method, autograd on a function without gradients.
    """
    if method == "auto":
        method = "autograd" if getattr(force_fn, "differentiable", False) else "finite-differences"
    if method not in ("autograd", "finite-differences"):
        raise SymplearnError(f"method must be 'autograd', 'finite-differences' or 'auto', got {method!r}")
    configs = configs.detach().to(torch.float64)
    if configs.ndim == 1:
        configs = configs[None]
    if not (eps > 0 and math.isfinite(eps)):
        raise SymplearnError(f"eps must be a positive number, got {eps!r}")
    values, floors, limits = [], [], []
    for q in configs:
        S = _cluster(q, n_atoms, box)
        cols = (3 * S[:, None] + torch.arange(3)).reshape(-1)
        if method == "autograd":
            qq = q.clone().requires_grad_(True)
            with torch.enable_grad():
                F = force_fn(qq)[cols]
                rows = []
                for k in range(len(cols)):
                    (g,) = torch.autograd.grad(F[k], qq, retain_graph=True, allow_unused=False)
                    rows.append(g[cols])
            J = torch.stack(rows)
            floor = 1e-12
        else:

            def fd(h: float, q=q, cols=cols) -> Tensor:
                E = torch.eye(q.shape[0], dtype=torch.float64)[cols] * h  # (3m, 3N)
                with torch.no_grad():
                    Fp = force_fn(q + E)[:, cols].to(torch.float64)
                    Fm = force_fn(q - E)[:, cols].to(torch.float64)
                return ((Fp - Fm) / (2 * h)).T  # J[a, b] = dF_a / dq_b

            J, J2 = fd(eps), fd(eps / 2)
            change = float((0.5 * (J - J.T) - 0.5 * (J2 - J2.T)).norm() / J.norm().clamp_min(1e-300))
            floor = max(4.0 * change, 1e-12)
        anti = 0.5 * (J - J.T)
        norm = float(J.norm().clamp_min(1e-300))
        values.append(float(anti.norm()) / norm)
        floors.append(floor)
        limits.append(floor * norm)
    mx = max(values)
    asym = any(v > f for v, f in zip(values, floors))
    return JacobianAsymmetry(
        values, mx, method, max(floors), "asymmetric" if asym else "symmetric", min(limits), floors
    )


# ------------------------------------------------------------------------------------------
# NVE audit
# ------------------------------------------------------------------------------------------
@dataclass
class NVEAudit:
    """A short velocity-Verlet run's energy record (see :func:`nve_audit`).

    Attributes:
        n_steps, dt: the run.
        slope_per_particle_per_tau: least-squares slope of E(t) / N.
        drift_over_ke_std: ``|slope| T_run / std(KE)`` (the energy change the drift makes over the
            run, in units of the kinetic-energy fluctuation).
        energy_std_over_ke_std: ``std(E) / std(KE)``.
        temperature_start, temperature_end: ``2 (KE - |P|^2 / 2M) / (3N - 3)`` (centre-of-mass
            frame, :func:`symplearn.diagnostics.md.temperature`) averaged over the first and last
            tenth of the run.
        energy_kind: ``"own"`` (the model's energy) or ``"reference"``.
        verdict: ``"bounded"`` when ``drift_over_ke_std < threshold``, else ``"drifting"``.
        wall_s: wall time of the run.
    """

    n_steps: int
    dt: float
    slope_per_particle_per_tau: float
    drift_over_ke_std: float
    energy_std_over_ke_std: float
    temperature_start: float
    temperature_end: float
    energy_kind: str
    threshold: float
    verdict: str
    wall_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def energy_statistics(t, energy, kinetic, n_particles: int, com_kinetic=None) -> dict:
    """Drift and fluctuation numbers of an NVE record.

    Args:
        t: ``(T,)`` times; energy, kinetic: ``(T,)`` total and kinetic energy; n_particles: N.
        com_kinetic: ``(T,)`` kinetic energy of the centre-of-mass motion ``|P|^2 / 2M``, taken
            out of the temperature (``None``: zero, a resting centre of mass).

    Returns:
        dict with ``slope_per_particle_per_tau``, ``drift_over_ke_std``,
        ``energy_std_over_ke_std``, ``temperature_start``, ``temperature_end``.
    """
    t = np.asarray(t, dtype=np.float64)
    E = np.asarray(energy, dtype=np.float64)
    K = np.asarray(kinetic, dtype=np.float64)
    slope = float(np.polyfit(t - t[0], E, 1)[0]) / n_particles
    ke_std = float(K.std()) or 1e-300
    span = float(t[-1] - t[0])
    k = max(1, len(t) // 10)
    Kcm = 0.0 if com_kinetic is None else np.asarray(com_kinetic, dtype=np.float64)
    temp = 2.0 * (K - Kcm) / (3 * n_particles - 3)
    return {
        "slope_per_particle_per_tau": slope,
        "drift_over_ke_std": abs(slope) * n_particles * span / ke_std,
        "energy_std_over_ke_std": float(E.std()) / ke_std,
        "temperature_start": float(temp[:k].mean()),
        "temperature_end": float(temp[-k:].mean()),
    }


def nve_audit(
    system,
    z0: Tensor,
    *,
    dt: float = 0.005,
    n_steps: int = 2000,
    save_every: int = 10,
    reference=None,
    threshold: float = 1.0,
) -> NVEAudit:
    """Velocity Verlet on a particle system or learned model, and its energy drift.

    Args:
        system: a :class:`~symplearn.systems.particles.ParticleSystem` (true or learned).
        z0: state ``(6N,)``.
        dt, n_steps, save_every: the run.
        reference: a system whose potential energy is used when ``system`` has none (a
            direct-force model); default: the system's own.
        threshold: largest ``drift_over_ke_std`` that counts as bounded.

    Returns:
        :class:`NVEAudit`.
    """
    from ..integrators import integrate
    from ..integrators.discretize import discretize

    t0 = time.perf_counter()
    with torch.no_grad():
        traj = integrate(discretize(system, "verlet", dt), z0, n_steps, save_every=save_every)
    wall = time.perf_counter() - t0
    z = traj.z
    n = system.n_dof
    kin = system.kinetic_energy(z[..., n:])
    own = getattr(system, "has_energy", True) and reference is None
    pot_sys = system if own else (reference if reference is not None else system)
    if not getattr(pot_sys, "has_energy", True):
        raise SymplearnError("the system has no energy: pass reference= (e.g. the true LJ fluid)")
    with torch.no_grad():
        pot = pot_sys.compute(z[..., :n], virial=False)["energy"]
    P = z[..., n:].reshape(*z.shape[:-1], -1, 3).sum(-2)
    kcm = 0.5 * (P * P).sum(-1) / system.masses.sum().to(P)
    st = energy_statistics(
        traj.t.numpy(), (kin + pot).numpy(), kin.numpy(), system.n_particles, com_kinetic=kcm.numpy()
    )
    verdict = "bounded" if st["drift_over_ke_std"] < threshold else "drifting"
    return NVEAudit(
        n_steps, float(dt), energy_kind="own" if own else "reference", threshold=threshold, verdict=verdict,
        wall_s=wall, **st,
    )  # fmt: skip


def ase_nve_audit(atoms, *, dt: float = 0.005, n_steps: int = 500, threshold: float = 1.0) -> NVEAudit:
    """:func:`nve_audit` through ASE's ``VelocityVerlet`` on ``atoms`` (with calculator and
    momenta set); timestep in ASE units (``dt`` tau = ``dt`` Angstrom sqrt(amu/eV) in symplearn's
    unit mapping, see :mod:`symplearn.ase`). Energy: ``atoms.get_total_energy()``."""
    from ase.md.verlet import VelocityVerlet

    ts, es, ks, kcm = [], [], [], []
    dyn = VelocityVerlet(atoms, timestep=dt)
    mass = float(atoms.get_masses().sum())

    def record():
        ts.append(dyn.get_time())
        ks.append(atoms.get_kinetic_energy())
        es.append(atoms.get_potential_energy() + ks[-1])
        kcm.append(0.5 * float((atoms.get_momenta().sum(0) ** 2).sum()) / mass)

    dyn.attach(record, interval=10)
    t0 = time.perf_counter()
    record()
    dyn.run(n_steps)
    wall = time.perf_counter() - t0
    st = energy_statistics(ts, es, ks, len(atoms), com_kinetic=kcm)
    verdict = "bounded" if st["drift_over_ke_std"] < threshold else "drifting"
    return NVEAudit(
        n_steps, float(dt), energy_kind="own", threshold=threshold, verdict=verdict, wall_s=wall, **st
    )


# ------------------------------------------------------------------------------------------
# all three
# ------------------------------------------------------------------------------------------
@dataclass
class ForceCheck:
    """The three detectors and a verdict (``"conservative"`` only when all three agree)."""

    loop: LoopWork
    jacobian: JacobianAsymmetry
    nve: NVEAudit | None
    verdict: str

    def as_dict(self) -> dict:
        return {
            "loop": self.loop.as_dict(),
            "jacobian": self.jacobian.as_dict(),
            "nve": self.nve.as_dict() if self.nve else None,
            "verdict": self.verdict,
        }

    def summary(self) -> str:
        lines = [
            f"loop work        max |W| = {self.loop.max_abs:.3e} (relative {self.loop.relative:.3e}, "
            f"quadrature error <= {max(self.loop.quadrature_error):.1e}): {self.loop.verdict}",
            f"Jacobian         lambda = {self.jacobian.max:.3e} ({self.jacobian.method}, floor "
            f"{self.jacobian.floor:.1e} measured, smallest detectable ||J_anti|| "
            f"{self.jacobian.detection_limit:.1e}): {self.jacobian.verdict}",
        ]
        if self.nve:
            a = self.nve
            lines.append(
                f"NVE audit        {a.n_steps} steps at dt={a.dt:g}: drift {a.slope_per_particle_per_tau:.3e}"
                f" /particle/tau, drift/std(KE) = {a.drift_over_ke_std:.3g}, T {a.temperature_start:.3f} -> "
                f"{a.temperature_end:.3f}: {a.verdict}"
            )
        lines.append(f"verdict: {self.verdict.upper()}")
        return "\n".join(lines)


def check_forces(
    force_fn: ForceFn,
    q0: Tensor,
    *,
    box: float | None = None,
    nve: NVEAudit | None = None,
    n_loops: int = 4,
    n_points: int = 64,
    amplitude: float = 0.05,
    seed: int = 0,
) -> ForceCheck:
    """Loop work and Jacobian asymmetry at ``q0 (3N,)`` (plus a given NVE audit) and a verdict:
    ``"conservative"`` if the loop work is within its quadrature error and the Jacobian symmetric
    (and the NVE audit bounded, when given), else ``"non-conservative"``."""
    lw = loop_work(force_fn, q0, n_loops=n_loops, n_points=n_points, amplitude=amplitude, seed=seed)
    ja = jacobian_asymmetry(force_fn, q0, box=box)
    ok = (
        lw.verdict == "conservative"
        and ja.verdict == "symmetric"
        and (nve is None or nve.verdict == "bounded")
    )
    return ForceCheck(lw, ja, nve, "conservative" if ok else "non-conservative")


# ------------------------------------------------------------------------------------------
# a deliberately non-conservative calculator
# ------------------------------------------------------------------------------------------
def _curl_field(x: np.ndarray, box: np.ndarray, strength: float) -> np.ndarray:
    k = 2 * math.pi / np.asarray(box)
    return strength * np.stack([np.sin(k[1] * x[:, 1]), np.sin(k[2] * x[:, 2]), np.sin(k[0] * x[:, 0])], -1)


try:  # ASE is a dependency, but keep the import local to this class's use
    from ase.calculators.calculator import Calculator, all_changes
except ImportError:  # pragma: no cover
    Calculator, all_changes = object, None


class CurlCalculator(Calculator):
    """An ASE calculator = a base calculator's forces plus a periodic field with a curl.

    Added force on atom i: ``strength (sin(k y_i), sin(k z_i), sin(k x_i))`` with
    ``k = 2 pi / L`` per axis (``curl != 0``, so no energy has it as gradient); the energy is the
    base calculator's. Default base: ASE's ``LennardJones(sigma=1, epsilon=1, rc=2.5)``.

    Args:
        strength: amplitude of the added field (energy / length).
        base: an ASE calculator, or None for the default.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, strength: float = 0.05, base=None, **kwargs):
        super().__init__(**kwargs)
        if base is None:
            from ase.calculators.lj import LennardJones

            base = LennardJones(sigma=1.0, epsilon=1.0, rc=2.5)
        self.strength = float(strength)
        self.base = base

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms.copy()
        a.calc = self.base
        e = a.get_potential_energy()
        f = a.get_forces() + _curl_field(a.get_positions(), a.cell.lengths(), self.strength)
        self.results.update(energy=e, free_energy=e, forces=f)
