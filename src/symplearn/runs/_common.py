"""Pieces the runs share: a timed rollout without gradients, the system a model folder was
trained on, and the checks of their configurations."""

from __future__ import annotations

from typing import Any

import torch

from .._errors import SymplearnError, lookup
from .._validate import check_float, check_int, check_memory
from .args import DTYPES

__all__ = [
    "DTYPES",
    "check_data_memory",
    "check_dtype",
    "check_float",
    "check_int",
    "check_memory",
    "log",
    "system_from_config",
]


def log(quiet: bool, message: str) -> None:
    """Print one line unless ``quiet``."""
    if not quiet:
        print(message, flush=True)


def check_dtype(name: str) -> torch.dtype:
    """``"float64"`` / ``"float32"`` -> the torch dtype; other names list the valid ones."""
    return lookup(name, DTYPES, "dtype")


def system_from_config(cfg: dict[str, Any], folder: Any = "the model folder"):
    """The true system a model folder's ``config.json`` records (``{"system": {"name", "params"}}``,
    read by :func:`symplearn.datasets.system_from_metadata`).

    Raises:
        SymplearnError: no system recorded (a model trained on a user's trajectory file: the
            message says so and points to ``symplearn rollout``), or one that is not known.
    """
    from ..datasets import system_from_metadata

    data = cfg.get("data") if isinstance(cfg, dict) else None
    if isinstance(cfg, dict) and "system" not in cfg and isinstance(data, dict):
        if data.get("source") == "trajectory file":
            raise SymplearnError(
                f"{folder} was trained on the trajectory file {data.get('file')!r}, which names no "
                f"system; this command needs one (to sample states and know the true energy): "
                f"`symplearn rollout {folder} --dt {data.get('dt', 0.0):g} --steps N --out DIR` "
                f"compares the model with the file's held-out trajectories instead"
            )
    return system_from_metadata(cfg, where=f"{folder}/config.json")


def check_data_memory(n_traj: int, n_steps: int, n_dof: int, hint: str) -> None:
    """Refuse, before the work, a data set whose arrays (states, derivatives and the reference
    path's working copies: about four float64 copies) would not fit in memory."""
    n_bytes = 4 * 8 * float(n_traj) * (float(n_steps) + 1) * 2 * n_dof
    check_memory(n_bytes, f"a data set of {n_traj} trajectories of {n_steps} steps", f"use a smaller {hint}")
