"""Pieces shared by the experiments: log lines, held-out starts, energy errors, model training."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import diagnostics as dg
from ..runs._common import log  # noqa: F401 (experiments import it from here)
from ..runs._states import is_lagrangian, to_canonical_states, to_model_states  # noqa: F401


def held_out_states(ds: Any, system: Any, n: int, *, energy_range: Any, seed: int) -> Tensor:
    """``n`` initial states ``(n, 2d)`` for rollouts: the first states of the data set's held-out
    trajectories, topped up with fresh samples of ``system`` in ``energy_range`` (``seed + 1``)
    when there are fewer held-out trajectories than ``n``."""
    z0 = ds.z[0, ds.test_idx[:n]]
    if z0.shape[0] < n:
        extra = system.sample(n - z0.shape[0], energy_range=energy_range, seed=seed + 1)
        z0 = torch.cat([z0, extra])
    return z0


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
