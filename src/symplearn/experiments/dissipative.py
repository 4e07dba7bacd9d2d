"""Where the geometry runs out: damping and forcing. MLP, HNN, D-HNN and PHNN on a damped spring
(two protocols), a forced spring and a damped, driven Duffing oscillator.

The specification's limit (``001_*.txt``, "Where the geometry runs out"; ``000_*.txt`` 5.4 and 9):
with friction or driving, energy is not conserved and a pure HNN is confidently wrong; the fixes
learn an energy and a separate dissipation (D-HNN, Sosanya and Greydanus 2022) or an energy, a
positive semi-definite dissipation and a forcing of time (PHNN, Desai et al. 2021).

Systems and protocols (see :data:`PROTOCOLS`; the papers' settings, differences named in the
report):

* ``damped-spring``: ``q'' = -q - 0.3 q'`` (Desai et al., "damped"): 25 training and 25 test
  trajectories from ``U[-1, 1]^2``, ``t in [0, 30)`` sampled every 0.1.
* ``damped-spring-dhnn``: the D-HNN paper's damped spring (``H = q^2 + p^2``, field
  ``(2p - 2q, -2q)``): the field on a 25 x 25 grid over ``[-1.2, 1.2]^2``, 85 % for training;
  trajectory MSE of one rollout from ``(0.85, 0.25)`` over ``t in [0, 4]`` at 1000 points.
* ``forced-spring``: ``H = q^2/2 + p^2/2 - q sin(3t)`` (Desai et al., forced mass-spring type
  1): 20 training and 25 test trajectories from radius ``sqrt(U(1, 4.5))``, ``t in [0, 10)``
  every 0.01.
* ``duffing``: ``q'' = q - q^3 - 0.3 q' + 0.2 sin(1.2 t)`` (Desai et al., Duffing type 1): 10
  training and 25 test trajectories from ``U[-2.5, 2.5]^2``, ``t in [0, 10)`` every 0.01.

All models train on exact time derivatives ``dz/dt`` at the sampled states (the derivative loss of
:func:`~symplearn.training.fit`, which evaluates the field at each sample's time: see
:func:`train_derivative`), and are rolled out with RK4 from the held-out initial states.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from ..datasets import TrainingData
from ..diagnostics.helmholtz import energy_balance_residual, helmholtz_decomposition
from ..geometry import batch_jacobian
from ..integrators import integrate
from ..integrators.discretize import discretize
from ..models import DHNN, HNN, PHNN, MLPField, TimeMLPField
from ..plotting import style_for
from ..report import Column, Report, write_run
from ..systems.dissipative import get_port_system
from ..training import fit, seed_everything
from ._common import log

DESCRIPTION = "Damping and forcing: MLP, HNN, D-HNN and PHNN on damped/forced springs and Duffing"
SYSTEM_NAMES = ("damped-spring", "damped-spring-dhnn", "forced-spring", "duffing")
ROWS = ("mlp", "hnn", "dhnn", "phnn")


# -- configuration ------------------------------------------------------------------------------
@dataclass
class Config:
    """Settings of the dissipative experiment.

    Attributes:
        systems: which systems to run (comma-separated on the command line), a subset of
            ``damped-spring``, ``damped-spring-dhnn``, ``forced-spring``, ``duffing``.
        quick: a reduced run (< 60 s) for the test suite: structure, not accuracy.
        seed: one seed for data, initial weights and minibatches.
        width, depth: every network's hidden width and hidden layers (the forcing network of the
            PHNN: ``forcing_width`` x 2, sine activations).
        steps, batch_size, lr: Adam with a cosine schedule, per model (the D-HNN protocol keeps
            its own: 5000 steps, batch 100, width 256, lr 1e-3).
        grid: points per axis of the grids where energies, dissipation and Helmholtz parts are
            compared.
        quiet: no progress lines.
    """

    systems: tuple[str, ...] = SYSTEM_NAMES
    quick: bool = False
    seed: int = 0
    width: int = 128
    depth: int = 2
    forcing_width: int = 64
    steps: int = 4000
    batch_size: int = 200
    lr: float = 3e-3
    grid: int = 64
    quiet: bool = False

    def resolved(self) -> Config:
        """The configuration actually run (quick mode applied), validated."""
        systems = (self.systems,) if isinstance(self.systems, str) else tuple(self.systems)
        bad = [s for s in systems if s not in SYSTEM_NAMES]
        if bad or not systems:
            raise SymplearnError(
                f"unknown system(s) {', '.join(map(repr, bad)) or '(none given)'}; "
                f"valid: {', '.join(SYSTEM_NAMES)}"
            )
        for name in ("width", "depth", "forcing_width", "steps", "batch_size", "grid"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SymplearnError(f"{name} must be a positive integer, got {v!r}")
        if self.grid < 9:
            raise SymplearnError(f"grid must be >= 9 points per axis, got {self.grid}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise SymplearnError(f"lr must be a positive number, got {self.lr!r}")
        cfg = replace(self, systems=systems)
        if self.quick:
            cfg = replace(
                cfg,
                width=min(cfg.width, 32),
                forcing_width=min(cfg.forcing_width, 16),
                steps=min(cfg.steps, 80),
                grid=min(cfg.grid, 16),
            )
        return cfg


@dataclass(frozen=True)
class Protocol:
    """A system and the published protocol it is benchmarked with."""

    key: str
    system: str
    paper: str
    sampler: str  # "box" (uniform in [-a, a]^2), "ring" (radius sqrt(U(r0^2, r1^2))), "grid"
    extent: tuple[float, float]
    n_train: int
    n_test: int
    T: float
    dt: float
    forced: bool
    damped: bool


PROTOCOLS: dict[str, Protocol] = {
    "damped-spring": Protocol(
        "damped-spring",
        "damped-oscillator",
        "Desai et al. 2021 (damped)",
        "box",
        (1.0, 1.0),
        25,
        25,
        30.0,
        0.1,
        False,
        True,
    ),
    "damped-spring-dhnn": Protocol(
        "damped-spring-dhnn",
        "dhnn-spring",
        "Sosanya & Greydanus 2022",
        "grid",
        (1.2, 1.2),
        25,
        1,
        4.0,
        4.0 / 999,
        False,
        True,
    ),
    "forced-spring": Protocol(
        "forced-spring",
        "forced-oscillator",
        "Desai et al. 2021 (forced type 1)",
        "ring",
        (1.0, math.sqrt(4.5)),
        20,
        25,
        10.0,
        0.01,
        True,
        False,
    ),
    "duffing": Protocol(
        "duffing",
        "duffing",
        "Desai et al. 2021 (Duffing type 1)",
        "box",
        (2.5, 2.5),
        10,
        25,
        10.0,
        0.01,
        True,
        True,
    ),
}


# -- data ----------------------------------------------------------------------------------------
def _initial_states(proto: Protocol, n: int, gen: torch.Generator) -> Tensor:
    if proto.sampler == "box":
        a = proto.extent[0]
        return a * (2 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 1)
    if proto.sampler == "ring":  # Desai et al.: a random direction scaled to radius sqrt(U(r0^2, r1^2))
        d = 2 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 1
        d = d / d.norm(dim=-1, keepdim=True)
        r0, r1 = proto.extent
        r = torch.sqrt(r0**2 + (r1**2 - r0**2) * torch.rand(n, generator=gen, dtype=torch.float64))
        return d * r[:, None]
    raise SymplearnError(f"no initial-state sampler {proto.sampler!r}")


def _truth_trajectories(system, z0: Tensor, proto: Protocol, n_steps: int) -> tuple[Tensor, Tensor]:
    """Exact (linear systems) or RK4-at-small-step (Duffing) trajectories ``t (T,), z (T, K, 2)``."""
    t = torch.arange(n_steps + 1, dtype=torch.float64) * proto.dt
    if getattr(system, "has_exact_solution", False):
        return t, system.exact_solution(z0, t)
    sub = max(1, math.ceil(proto.dt / 0.002))  # RK4 at <= 0.002: error ~1e-12, far below any model's
    tt, z = integrate(discretize(system, "rk4", proto.dt / sub), z0, n_steps * sub, save_every=sub)[:2]
    return t, z


@dataclass
class _Data:
    t: Tensor  # (N,) time of each training sample
    z: Tensor  # (N, 2)
    dzdt: Tensor  # (N, 2)
    test_t: Tensor  # (T,)
    test_z: Tensor  # (T, K, 2) reference trajectories from the held-out initial states
    test_t_samples: Tensor | None = None  # grid protocol: held-out field samples
    test_z_samples: Tensor | None = None
    test_dzdt_samples: Tensor | None = None


def _make_data(system, proto: Protocol, cfg: Config) -> _Data:
    gen = torch.Generator().manual_seed(cfg.seed)
    if proto.sampler == "grid":
        a = proto.extent[0]
        g = torch.linspace(-a, a, 25, dtype=torch.float64)
        Q, P = torch.meshgrid(g, g, indexing="ij")
        z = torch.stack([Q.reshape(-1), P.reshape(-1)], -1)
        perm = torch.randperm(len(z), generator=gen)
        z = z[perm]
        dzdt = system.vector_field(0.0, z)
        split = int(0.85 * len(z))
        t0 = torch.zeros(len(z), dtype=torch.float64)
        n_steps = round(proto.T / proto.dt) if not cfg.quick else 200
        z0 = torch.tensor([[0.85, 0.25]], dtype=torch.float64)
        tt = torch.arange(n_steps + 1, dtype=torch.float64) * proto.dt
        return _Data(
            t0[:split],
            z[:split],
            dzdt[:split],
            tt,
            system.exact_solution(z0, tt),
            t0[split:],
            z[split:],
            dzdt[split:],
        )
    n_train, n_test = proto.n_train, proto.n_test
    if cfg.quick:
        n_train, n_test = min(n_train, 4), min(n_test, 3)
    n_steps = round(proto.T / proto.dt)
    z0 = _initial_states(proto, n_train, gen)
    zt = _initial_states(proto, n_test, torch.Generator().manual_seed(cfg.seed + 1000))
    if cfg.quick:
        n_steps = min(n_steps, 60)
    t, z = _truth_trajectories(system, z0, proto, n_steps - 1)  # T samples at 0, dt, ..., (T-1) dt
    tt, ztest = _truth_trajectories(system, zt, proto, n_steps - 1)
    tk = t[:, None].expand(z.shape[:2])
    dzdt = system.vector_field(tk, z)
    return _Data(tk.reshape(-1), z.reshape(-1, 2), dzdt.reshape(-1, 2), tt, ztest)


# -- models and training -------------------------------------------------------------------------
def _build(row: str, proto: Protocol, cfg: Config, width: int) -> torch.nn.Module:
    depth = cfg.depth
    if row == "mlp":
        return (TimeMLPField if proto.forced else MLPField)(1, width=width, depth=depth)
    if row == "hnn":
        return HNN(1, width=width, depth=depth)
    if row == "dhnn":
        return DHNN(1, width=width, depth=depth)
    # Desai et al.'s PHNN damps the momenta only: with R on both coordinates, (H, R) is not
    # identifiable from a linear field (a one-parameter family gives the same field). The D-HNN
    # spring damps the position, which a momentum-only R cannot fit: there R is diagonal.
    # The grid protocol has no time in its data: a forcing of t could not be learned there.
    grid = proto.sampler == "grid"
    return PHNN(
        1,
        width=width,
        depth=depth,
        dissipation="diagonal" if grid else "diagonal-p",
        forcing="none" if grid else "mlp",
        forcing_width=cfg.forcing_width,
    )


def train_derivative(
    model: torch.nn.Module,
    t: Tensor,
    z: Tensor,
    dzdt: Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> float:
    """Derivative matching with each sample's time, ``mean ||f(t_i, z_i) - dz_i/dt||^2``, through
    :func:`~symplearn.training.fit` (whose losses evaluate the field at the data's times): Adam,
    cosine learning-rate decay to zero, minibatches from a generator seeded with ``seed``.

    Args:
        model: continuous dynamics with ``vector_field(t, z)``; trained in place.
        t: ``(N,)`` sample times; z, dzdt: ``(N, 2n)``.
        steps, batch_size, lr, seed: the optimisation.

    Returns:
        The derivative loss over all the samples after training.
    """
    data = TrainingData(z=z, dzdt=dzdt, t=t)  # N unrelated points, each at its own time
    result = fit(
        model,
        data,
        loss="derivative",
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        schedule="cosine",
        grad_clip=None,
        progress=False,
    )
    return result.train_loss


# -- measurements --------------------------------------------------------------------------------
def _support_grid(data: _Data, proto: Protocol, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A grid over the training states' box, the mask of its points near training data (within
    6 % of the box diagonal), and the axes: ``Z (n, n, 2)``, ``mask (n, n)``, ``q (n,)``, ``p (n,)``."""
    lo, hi = data.z.min(0).values, data.z.max(0).values
    q = torch.linspace(float(lo[0]), float(hi[0]), n, dtype=torch.float64)
    p = torch.linspace(float(lo[1]), float(hi[1]), n, dtype=torch.float64)
    Z = torch.stack(torch.meshgrid(q, p, indexing="ij"), -1)
    sub = data.z[torch.linspace(0, len(data.z) - 1, min(len(data.z), 4000)).long()]
    d = torch.cdist(Z.reshape(-1, 2), sub).min(-1).values.reshape(n, n)
    mask = d <= 0.06 * float((hi - lo).norm())
    return Z, mask, q, p


def _window_times(proto: Protocol, system, n: int) -> Tensor:
    """Times to average a field over: one forcing period for damped forced systems (its forcing
    power averages to zero exactly), the training window otherwise."""
    if proto.forced and proto.damped:
        period = 2 * math.pi / system.omega
        return torch.arange(n, dtype=torch.float64) * period / n
    return torch.linspace(0, proto.T, n, dtype=torch.float64)


def _field_on(model, t: Tensor, Z: Tensor) -> Tensor:
    """``v(t_k, Z)`` for each time: ``(K, *Z.shape)`` in float64."""
    dtype = next(model.parameters()).dtype if isinstance(model, torch.nn.Module) else torch.float64
    Zc = Z.to(dtype)
    out = [model.vector_field(torch.full(Zc.shape[:-1], float(tk), dtype=dtype), Zc) for tk in t]
    return torch.stack(out).double()


def _rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def _measure(model, system, proto: Protocol, data: _Data, cfg: Config, row: str) -> tuple[dict, dict]:
    """Every column of one row, and arrays for the figures."""
    out: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        # trajectory MSE: RK4 rollouts from the held-out initial states, at the data's spacing
        z0 = data.test_z[0]
        n = len(data.test_t) - 1
        sub = 1 if cfg.quick else max(1, math.ceil(proto.dt / 0.01 - 1e-9))
        try:
            flow = discretize(model, "rk4", proto.dt / sub)
            zhat = integrate(flow, z0.to(dtype), n * sub, save_every=sub).z
            zhat = zhat.double()
            out["trajectory_mse"] = float((zhat - data.test_z).pow(2).mean())
            out["trajectory_mse_median"] = float((zhat - data.test_z).pow(2).mean((0, 2)).median())
        except NonFiniteError:
            zhat = None
            out["trajectory_mse"] = out["trajectory_mse_median"] = float("inf")
        arrays["rollout"] = zhat
        H0 = system.energy
        if zhat is not None:
            out["rollout_energy_mse"] = float((H0(zhat) - H0(data.test_z)).pow(2).mean())
            r = energy_balance_residual(data.test_t, zhat, H0, system.energy_rate)
            scale = (H0(data.test_z) - H0(data.test_z[0])).abs().amax(0).mean()
            out["energy_balance_residual"] = float(r.abs().amax(0).mean() / scale)
            if row == "phnn":  # its own ports along its own rollout: integrator error only
                zr = zhat.to(dtype)
                own = energy_balance_residual(data.test_t.to(dtype), zr, model.hamiltonian, model.energy_rate)
                own_scale = (model.hamiltonian(zr) - model.hamiltonian(zr[0])).abs().amax(0).mean()
                out["own_balance_residual"] = float(own.abs().amax(0).mean() / own_scale)
        # the grid over the data
        Z, mask, q, p = _support_grid(data, proto, cfg.grid)
        arrays["grid"] = (Z, mask, q, p)
        Zm = Z[mask]
        if isinstance(model, (HNN, DHNN, PHNN)):  # the rows with a learned energy
            Hm = model.hamiltonian(Zm.to(dtype)).double()
            Ht = H0(Zm)
            out["energy_error"] = _rel(Hm - Hm.mean(), Ht - Ht.mean())
            # up to the gauge: an affine a + b q + c p (a constant force trades with b q in a
            # PHNN; linear functions are harmonic, so a D-HNN can move them between H and D)
            basis = torch.cat([torch.ones_like(Zm[:, :1]), Zm], -1)
            coef = torch.linalg.lstsq(basis, (Hm - Ht)[:, None]).solution
            gauged = Hm - basis @ coef[:, 0]  # H_theta with the affine part of H_theta - H0 removed
            out["energy_error_gauge"] = _rel(gauged - gauged.mean(), Ht - Ht.mean())
            full_basis = torch.cat([torch.ones_like(Z[..., :1]), Z], -1)
            arrays["H"] = model.hamiltonian(Z.to(dtype)).double() - full_basis @ coef[:, 0]
        else:
            out["energy_error"] = None
        if proto.sampler == "grid":
            times = torch.zeros(1, dtype=torch.float64)
        else:
            times = _window_times(proto, system, 8 if cfg.quick else 64)
        V = _field_on(model, times, Zm)  # (K, M, 2)
        gH0 = system.grad_hamiltonian(Zm)
        if proto.damped:  # dissipated power of the true energy under the model's field, time-averaged
            P_model = -(gH0 * V).sum(-1).mean(0)
            P_true = system.dissipated_power(0.0, Zm)
            out["damping_error"] = _rel(P_model, P_true)
            Vfull = _field_on(model, times, Z)
            arrays["power"] = -(system.grad_hamiltonian(Z) * Vfull).sum(-1).mean(0)
        if proto.forced:  # the field's time-varying part, averaged over states, against F(t) - mean F
            tf = torch.linspace(0, proto.T, 50 if cfg.quick else 200, dtype=torch.float64)
            Vt = _field_on(model, tf, Zm)[..., 1].mean(1)  # (200,)
            Ft = system.forcing(tf)[..., 1]
            out["forcing_error"] = _rel(Vt - Vt.mean(), Ft - Ft.mean())
            arrays["forcing"] = (tf, Vt - Vt.mean(), Ft - Ft.mean())
            if row == "phnn":
                Fm = model.forcing(tf.to(dtype)).double()[..., 1]
                out["forcing_error_raw"] = _rel(Fm, Ft)
                arrays["forcing_raw"] = (tf, Fm, Ft)
        if row == "phnn":
            R = model.dissipation_constant().detach().double()
            out["learned_R"] = R.tolist()
            out["R_min_eigenvalue"] = float(torch.linalg.eigvalsh(R).min())
            Rt = system.dissipation_matrix(torch.zeros(2, dtype=torch.float64))
            out["R_error"] = _rel(R, Rt) if float(Rt.norm()) > 0 else float(R.norm())
        if row == "dhnn":
            Dm = model.rayleigh_potential(Z.to(dtype)).double()
            arrays["D"] = Dm
            # structure, in float64: div (J grad H) = 0 and curl (grad D) = 0 to round-off
            m64 = copy.deepcopy(model).double()
            sample = Zm[:: max(1, len(Zm) // 256)]
            with torch.enable_grad():
                Jr = batch_jacobian(m64.conservative_field, sample)
                Jd = batch_jacobian(m64.dissipative_field, sample)
            out["rotational_divergence_max"] = float(Jr.diagonal(dim1=-2, dim2=-1).sum(-1).abs().max())
            out["dissipative_curl_max"] = float((Jd - Jd.mT).abs().max())
        # spurious compression: the natural Helmholtz-Hodge gradient part of the field at t = 0
        dec = helmholtz_decomposition(_field_on(model, times[:1], Z)[0].numpy(), q.numpy(), p.numpy())
        out["helmholtz_gradient_share"] = dec.shares["gradient"]
        arrays["helmholtz"] = dec
    return out, arrays


# -- figures -------------------------------------------------------------------------------------
_TITLES = {"truth": "truth", "mlp": "MLP", "hnn": "HNN", "dhnn": "D-HNN", "phnn": "PHNN"}


def _phase_figure(key: str, proto: Protocol, data: _Data, arrays: dict[str, dict]) -> Figure:
    # explicit margins rather than a layout engine: 3-10x faster to save on a busy CPU
    fig = Figure(figsize=(15, 3.6))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.16, top=0.84, wspace=0.08)
    axes = fig.subplots(1, 5, sharex=True, sharey=True)
    k = min(3, data.test_z.shape[1])
    panels = [("truth", data.test_z)] + [(r, arrays[r]["rollout"]) for r in ROWS]
    for ax, (name, z) in zip(axes, panels):
        for j in range(k):
            ax.plot(
                data.test_z[:, j, 0],
                data.test_z[:, j, 1],
                color="0.8",
                lw=2.5,
                label="truth" if (j == 0 and name != "truth") else None,
            )
            if z is not None:
                style = {"color": "k", "ls": "-"} if name == "truth" else style_for(name)
                if name == "dhnn":
                    style = {"color": "tab:green", "ls": "-"}
                if name == "phnn":
                    style = {"color": "tab:purple", "ls": "-"}
                ax.plot(z[:, j, 0], z[:, j, 1], lw=1.0, label=_TITLES[name] if j == 0 else None, **style)
            ax.plot(data.test_z[0, j, 0], data.test_z[0, j, 1], "o", color="k", ms=3)
        ax.set_title(_TITLES[name] + ("" if z is not None else " (diverged)"))
        ax.set_xlabel("q (position, arb. units)")
        ax.legend(loc="upper right", fontsize=7)
    axes[0].set_ylabel("p (momentum, arb. units)")
    fig.suptitle(f"{key}: held-out trajectories, t in [0, {proto.T:g}] (RK4 rollouts; dots: start)")
    return fig


def _masked(a: Tensor, mask: Tensor) -> np.ndarray:
    out = a.detach().double().numpy().copy()
    out[~mask.numpy()] = np.nan
    return out


def _landscape_figure(key: str, system, data: _Data, arrays: dict[str, dict]) -> Figure:
    Z, mask, q, p = arrays["hnn"]["grid"]
    Q, P = Z[..., 0].numpy(), Z[..., 1].numpy()
    fig = Figure(figsize=(15, 7.2))
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.08, top=0.9, wspace=0.25, hspace=0.22)
    axes = fig.subplots(2, 4, sharex=True, sharey=True)

    def panel(ax, values, title, cmap="viridis"):
        v = _masked(values, mask)
        v = v - np.nanmin(v) if cmap == "viridis" else v
        cs = ax.pcolormesh(Q, P, v, cmap=cmap, shading="auto")
        fig.colorbar(cs, ax=ax, shrink=0.9, pad=0.02)
        ax.set_title(title, fontsize=10)

    panel(axes[0, 0], system.energy(Z), "true H0 (energy, shifted to min 0)")
    for ax, r in zip(axes[0, 1:], ("hnn", "dhnn", "phnn")):
        panel(ax, arrays[r]["H"], f"{_TITLES[r]}: learned H (affine gauge matched)")
    panel(axes[1, 0], system.rayleigh_potential(Z), "true D (grad D = -R grad H0)", cmap="magma")
    panel(
        axes[1, 1],
        arrays["dhnn"]["D"] - arrays["dhnn"]["D"][mask].max(),
        "D-HNN: learned D (max 0)",
        cmap="magma",
    )
    panel(
        axes[1, 2], system.dissipated_power(0.0, Z), "true dissipated power grad H0.R.grad H0", cmap="magma"
    )
    panel(axes[1, 3], arrays["phnn"]["power"], "PHNN: -grad H0 . v (time-averaged)", cmap="magma")
    for ax in axes[1]:
        ax.set_xlabel("q (position)")
    for ax in axes[:, 0]:
        ax.set_ylabel("p (momentum)")
    fig.suptitle(
        f"{key}: energies (top) and dissipation (bottom) over the training region "
        "(blank: no training data nearby)"
    )
    return fig


def _forcing_figure(keys: list[str], arrays: dict[str, dict[str, dict]]) -> Figure:
    fig = Figure(figsize=(6.5 * len(keys), 4.2))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.22)
    axes = np.atleast_1d(fig.subplots(1, len(keys)))
    for ax, key in zip(axes, keys):
        tf, Fm, Ft = arrays[key]["phnn"]["forcing_raw"]
        ax.plot(tf, Ft, color="0.6", lw=4, label="true F(t)")
        ax.plot(tf, Fm, color="tab:purple", lw=1.5, label="PHNN F_theta(t) (raw)")
        tv, vm, _ = arrays[key]["mlp"]["forcing"]
        ax.plot(tv, vm, color="tab:red", lw=1, ls="--", label="MLP(z, t): time-varying part, state-averaged")
        ax.set_xlabel("t (time)")
        ax.set_ylabel("force on p (momentum / time)")
        ax.set_title(f"{key}: learned forcing vs true")
        ax.legend(fontsize=7)
    return fig


# -- the run -------------------------------------------------------------------------------------
def _train_settings(proto: Protocol, cfg: Config) -> dict[str, Any]:
    if proto.sampler == "grid" and not cfg.quick:
        # Sosanya & Greydanus: 5000 Adam steps, batch 100, lr 1e-3, hidden 256
        return {"width": 256, "steps": 5000, "batch_size": 100, "lr": 1e-3}
    return {"width": cfg.width, "steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr}


def run(config: Config, out: str | Path) -> Report:
    """Train MLP, HNN, D-HNN and PHNN on each system, measure, and write the run folder.

    Args:
        config: the settings (:class:`Config`).
        out: the run folder to write (atomically).

    Returns:
        The :class:`~symplearn.report.Report`.

    Raises:
        SymplearnError: invalid settings.
    """
    cfg = config.resolved()
    start = time.perf_counter()
    systems: dict[str, Any] = {}
    flat_rows: dict[str, dict[str, Any]] = {}
    all_arrays: dict[str, dict[str, dict]] = {}
    figures: dict[str, Figure] = {}
    for key in cfg.systems:
        proto = PROTOCOLS[key]
        system = get_port_system(proto.system)
        data = _make_data(system, proto, cfg)
        settings = _train_settings(proto, cfg)
        rows: dict[str, dict[str, Any]] = {}
        arrays: dict[str, dict] = {}
        for row in ROWS:
            seed_everything(cfg.seed)
            model = _build(row, proto, cfg, settings["width"])
            t0 = time.perf_counter()
            final_loss = train_derivative(
                model,
                data.t,
                data.z,
                data.dzdt,
                steps=settings["steps"],
                batch_size=settings["batch_size"],
                lr=settings["lr"],
                seed=cfg.seed,
            )
            train_s = time.perf_counter() - t0
            metrics, arrays[row] = _measure(model, system, proto, data, cfg, row)
            with torch.no_grad():
                if data.test_z_samples is not None:
                    dtp = next(model.parameters()).dtype
                    pred = model.vector_field(
                        data.test_t_samples.to(dtp), data.test_z_samples.to(dtp)
                    ).double()
                    metrics["test_derivative_mse"] = float((pred - data.test_dzdt_samples).pow(2).mean())
            rows[row] = {**metrics, "final_train_loss": final_loss, "train_time_s": train_s}
            flat_rows[f"{key} / {row}"] = rows[row]
            log(
                cfg.quiet,
                f"[dissipative] {key:19s} {row:5s} trajectory MSE {metrics['trajectory_mse']:.3g} "
                f"({train_s:.1f} s training)",
            )
        # the truth: its own energy balance along its reference trajectories (a control)
        with torch.no_grad():
            r = energy_balance_residual(data.test_t, data.test_z, system.energy, system.energy_rate)
            scale = (system.energy(data.test_z) - system.energy(data.test_z[0])).abs().amax(0).mean()
            Z, mask, q, p = arrays["hnn"]["grid"]
            dec = helmholtz_decomposition(system.vector_field(0.0, Z).numpy(), q.numpy(), p.numpy())
        systems[key] = {
            "rows": rows,
            "system": proto.system,
            "params": system.params,
            "protocol": {
                "paper": proto.paper,
                "sampler": proto.sampler,
                "n_train": proto.n_train,
                "n_test": proto.n_test,
                "T": proto.T,
                "dt": proto.dt,
                **settings,
            },
            "truth_balance_residual": float(r.abs().amax(0).mean() / scale),
            "truth_helmholtz_gradient_share": dec.shares["gradient"],
            "true_R": system.dissipation_matrix(torch.zeros(2, dtype=torch.float64)).tolist(),
        }
        all_arrays[key] = arrays
        figures[f"phase_{key}.png"] = _phase_figure(key, proto, data, arrays)
        if proto.damped:
            figures[f"landscape_{key}.png"] = _landscape_figure(key, system, data, arrays)
    forced = [k for k in cfg.systems if PROTOCOLS[k].forced]
    if forced:
        figures["forcing.png"] = _forcing_figure(forced, all_arrays)
    wall = time.perf_counter() - start
    report = Report(
        title="Where the geometry runs out: damping and forcing",
        rows=flat_rows,
        columns=[
            Column("trajectory_mse", "trajectory MSE"),
            Column("trajectory_mse_median", "median traj. MSE"),
            Column("energy_error", "energy error"),
            Column("energy_error_gauge", "energy error (gauge)"),
            Column("damping_error", "damping error"),
            Column("forcing_error", "forcing error"),
            Column("energy_balance_residual", "balance residual"),
            Column("helmholtz_gradient_share", "gradient share"),
        ],
        figures=figures,
        sections=_sections(cfg, systems),
        metrics={"systems": systems},
    )
    write_run(out, cfg, report, wall_time_s=wall)
    return report


#: the D-HNN paper's damped-spring trajectory MSEs (Sosanya & Greydanus 2022; their notebook's
#: single rollout from (0.85, 0.25) over t in [0, 4])
DHNN_PAPER = {"mlp": 6.0e-6, "hnn": 2.9e-1, "dhnn": 3.6e-6}


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def _sections(cfg: Config, systems: dict[str, Any]) -> list[str]:
    out = [
        "Columns. *trajectory MSE*: mean over held-out initial states, times and coordinates of "
        "(rollout - truth)^2 (RK4 rollouts at the data spacing or 0.01); *median*: the median "
        "over held-out trajectories of each one's MSE (robust to the few that a small field "
        "error sends into the other Duffing well). *energy error*: relative RMS of the learned H "
        "against the true H0, both minus their mean, on a grid over the training region (blank "
        "for the MLP: it has no energy); *(gauge)*: the same after removing the best affine "
        "a + b q + c p, the part of H the field does not determine for these models (below). "
        "*damping error*: relative RMS of the dissipated power of the true energy under the "
        "model's field, -grad H0 . v(t, z) averaged over a forcing period (Duffing) or the data "
        "window, against grad H0^T R grad H0. *forcing error*: relative RMS of the field's "
        "time-varying part (averaged over states) against F(t) - mean F (exactly 1 for models "
        "without a forcing term). *balance residual*: along each model's own rollouts, "
        "max over time of |H0(z(t)) - H0(z(0)) - int (forcing - dissipated power of the true "
        "ports)|, relative to the truth's energy change: energy created or destroyed beyond "
        "what the ports account for. *gradient share*: the energy share of the natural "
        "Helmholtz-Hodge gradient part of the field at t = 0 (sourced by its divergence; "
        "`symplearn.diagnostics.helmholtz`): zero for a Hamiltonian field, the truth's value for "
        "a correctly damped one.",
        "Gauges (what the data cannot decide). A PHNN with a forcing term can trade a constant "
        "force c on p for a term -c q in H: the same field, so its raw F(t) and H are defined "
        "only up to that pair (on the unforced damped spring its forcing network learns a "
        "constant and H a matching tilt). A D-HNN can move any harmonic function h between H "
        "and D (J grad h is a gradient): its learned D differs from the true one by such terms "
        "(visible in the landscape figures) while the field is right. A PHNN whose R may damp "
        "both coordinates is not identifiable either (a one-parameter family of quadratic H and "
        "diagonal R gives the same linear field), which is why the PHNN damps the momenta only "
        "(as Desai et al.'s), except on the D-HNN spring, whose damping acts on the position.",
    ]
    for key, s in systems.items():
        rows = s["rows"]
        lines = [
            f"**{key}** ({s['protocol']['paper']}; {s['system']} {s['params']}). Truth's "
            f"balance residual along its own trajectories {s['truth_balance_residual']:.2g} "
            f"(quadrature error), its gradient share {s['truth_helmholtz_gradient_share']:.3g}."
        ]
        if "phnn" in rows and "learned_R" in rows["phnn"]:
            R = np.array(rows["phnn"]["learned_R"])
            lines.append(
                f"PHNN's learned R = diag({R[0, 0]:.4f}, {R[1, 1]:.4f}) against the true "
                f"diag({s['true_R'][0][0]:g}, {s['true_R'][1][1]:g})."
            )
            if "forcing_error_raw" in rows["phnn"]:
                lines.append(
                    f"PHNN's raw forcing F_theta(t) against F(t): relative error "
                    f"{rows['phnn']['forcing_error_raw']:.3g} (without removing a constant); "
                    f"its own energy balance along its rollouts "
                    f"{rows['phnn'].get('own_balance_residual', float('nan')):.2g} (RK4 error)."
                )
        if key == "damped-spring-dhnn":
            ours = ", ".join(
                f"{_TITLES[r]} {_fmt(rows[r]['trajectory_mse'])} (paper {DHNN_PAPER[r]:.2g})"
                for r in DHNN_PAPER
                if r in rows
            )
            lines.append(
                f"Against the D-HNN paper's trajectory MSE: {ours}; PHNN "
                f"{_fmt(rows.get('phnn', {}).get('trajectory_mse'))}."
            )
        out.append(" ".join(lines))
    out.append(
        "Protocol differences. All models here train on exact dz/dt with a derivative loss "
        "(Desai et al.'s code defaults to a one-step RK4 loss on state pairs), with Adam and a "
        "cosine schedule (theirs: step decay), width 128 and depth 2 with tanh for every energy "
        "and field network (theirs: 200 hidden units), no L1 penalty on F or R, one seed. The "
        "D-HNN protocol keeps its data (25 x 25 grid, 85 % training), optimiser (5000 steps, "
        "batch 100, lr 1e-3) and width 256, but without their MLP's residual connection, with "
        "a cosine schedule, and evaluates with our RK4 at the 1000 output times instead of "
        "scipy's RK45 at rtol 1e-12."
    )
    out.append(
        "Why the HNN fails on damped data: its field J grad H is divergence-free for every weight "
        "(gradient share 0 to round-off), so it conserves its own energy and its flow preserves "
        "area, while the damped flow contracts area at rate -gamma (-rho for the D-HNN spring). "
        "The best such field fits only the rotational part of the data; the trajectories it "
        "predicts circle forever instead of spiralling in, and its trajectory MSE is the "
        "energy the truth has lost. Its damping error is near 1: it predicts no dissipation at "
        "all. The D-HNN adds the missing gradient part grad D, the PHNN the missing "
        "-R grad H with R positive semi-definite, so both can only remove energy through a "
        "declared channel; the MLP fits the field too but has no energy to show for it and "
        "carries a nonzero gradient share of its own choosing."
    )
    return out
