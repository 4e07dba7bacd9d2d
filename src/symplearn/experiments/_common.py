"""Pieces shared by the experiments: rollouts with progress, energy errors, model training."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from .. import diagnostics as dg
from ..dynamics import FlowMap
from ..integrators import integrate


def log(quiet: bool, message: str) -> None:
    """Print one progress line unless ``quiet``."""
    if not quiet:
        print(message, flush=True)


def rollout(
    flow: FlowMap,
    z0: Tensor,
    n_steps: int,
    *,
    save_every: int = 1,
    desc: str = "rollout",
    quiet: bool = True,
) -> tuple[Tensor, Tensor, float]:
    """:func:`~symplearn.integrate` without gradients (inference mode), timed.

    Returns:
        ``t (T,)``, ``z (T, K, 2n)`` (ordinary tensors) and the wall time in seconds.
    """
    start = time.perf_counter()
    # inference mode: ~10 % less per-op overhead than no_grad for these small networks
    with torch.inference_mode():
        traj = integrate(flow, z0, n_steps, save_every=save_every, progress=not quiet, desc=desc)
    wall = time.perf_counter() - start
    return traj.t.clone(), traj.z.clone(), wall  # clones: ordinary tensors again


def energy_summary(system: Any, z: Tensor, t: Tensor) -> dict[str, float]:
    """Maximum relative error of the true energy over time and trajectories
    (:func:`symplearn.diagnostics.energy_error`) and the mean final energy ratio ``E(T)/E(0)``,
    of states ``(T, K, 2n)`` under the true ``system``."""
    err = dg.energy_error(system, z, t=t)
    with torch.no_grad():
        energy = system.hamiltonian(z[[0, -1]])
    return {
        "max_rel_energy_error": err.max,
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
    return model.state_kind == "lagrangian"


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
