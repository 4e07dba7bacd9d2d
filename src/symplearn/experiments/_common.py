"""Pieces shared by the experiments: rollouts with progress, energy errors, model training."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from .._progress import Progress
from ..integrators import Integrator, get_integrator, integrate


def log(quiet: bool, message: str) -> None:
    """Print one progress line unless ``quiet``."""
    if not quiet:
        print(message, flush=True)


def rollout(
    dynamics: Any,
    z0: Tensor,
    dt: float,
    n_steps: int,
    integrator: Integrator | str | None,
    *,
    save_every: int = 1,
    desc: str = "rollout",
    quiet: bool = True,
) -> tuple[Tensor, Tensor, float]:
    """Integrate ``dynamics`` from ``z0 (K, 2n)`` for ``n_steps`` steps without gradients, in
    chunks so long runs show progress.

    Returns:
        ``t (T,)``, ``z (T, K, 2n)`` and the wall time in seconds.
    """
    if isinstance(integrator, str):
        integrator = get_integrator(integrator)
    chunk = n_steps
    if n_steps > 5000:
        chunk = max(save_every, (n_steps // 20) // save_every * save_every)
    ts, zs = [], []
    z, t0, done = z0, 0.0, 0
    start = time.perf_counter()
    # inference mode: ~10 % less per-op overhead than no_grad for these small networks
    with torch.inference_mode(), Progress(n_steps, desc, enabled=not quiet) as bar:
        while done < n_steps:
            n = min(chunk, n_steps - done)
            traj = integrate(dynamics, z, dt, n, integrator, save_every=save_every, t0=t0)
            skip = 1 if zs else 0
            ts.append(traj.t[skip:])
            zs.append(traj.z[skip:])
            z, done, t0 = traj.z[-1], done + n, float(traj.t[-1])
            bar.update(n)
    wall = time.perf_counter() - start
    return torch.cat(ts).clone(), torch.cat(zs).clone(), wall  # clones: ordinary tensors again


def relative_energy_error(hamiltonian: Any, z: Tensor) -> Tensor:
    """``|H(z_t) - H(z_0)| / |H(z_0)|`` of states ``(T, K, 2n)``; returns ``(T, K)``."""
    with torch.no_grad():
        energy = hamiltonian(z)
    e0 = energy[0]
    return (energy - e0).abs() / e0.abs().clamp_min(torch.finfo(z.dtype).tiny)


def energy_summary(hamiltonian: Any, z: Tensor) -> dict[str, float]:
    """Maximum relative energy error over time and trajectories, and the mean final energy
    ratio ``E(T)/E(0)``, of states ``(T, K, 2n)`` under the true ``hamiltonian``."""
    with torch.no_grad():
        energy = hamiltonian(z)
    rel = (energy - energy[0]).abs() / energy[0].abs()
    return {
        "max_rel_energy_error": float(rel.max()),
        "final_energy_ratio": float((energy[-1] / energy[0]).mean()),
    }


def history_for_plot(history: dict[str, list]) -> dict[str, list]:
    """A :class:`~symplearn.training.FitResult` history in the keys of
    :func:`symplearn.plotting.loss_figure`."""
    test = [float("nan") if v is None else v for v in history.get("test_loss", [])]
    out = {"step": list(history.get("step", [])), "train": list(history.get("train_loss", []))}
    if test and any(v == v for v in test):
        out["test"] = test
    return out


def is_lagrangian(model: Any) -> bool:
    """Whether ``model`` works on Lagrangian states ``(q, q_dot)`` (an LNN) rather than ``(q, p)``."""
    return getattr(model, "state_kind", "canonical") == "lagrangian"


def to_model_states(model: Any, system: Any, z: Tensor) -> Tensor:
    """Canonical states ``(..., 2n)`` in the model's coordinates: ``(q, q_dot)`` through the
    true system's Legendre map ``q_dot = velocities(q, p)`` for an LNN, unchanged otherwise."""
    if not is_lagrangian(model):
        return z
    n = system.n_dof
    return torch.cat([z[..., :n], system.velocities(z[..., :n], z[..., n:])], -1)


def to_canonical_states(model: Any, system: Any, x: Tensor) -> Tensor:
    """The inverse of :func:`to_model_states`: ``p = momenta(q, q_dot)`` for an LNN."""
    if not is_lagrangian(model):
        return x
    n = system.n_dof
    return torch.cat([x[..., :n], system.momenta(x[..., :n], x[..., n:])], -1)
