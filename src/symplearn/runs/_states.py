"""Model states and canonical states: the one Legendre-map conversion between a true system's
``(q, p)`` and a Lagrangian model's ``(q, q_dot)``.

A Lagrangian model (an LNN, ``state_kind == "lagrangian"``) lives in ``(q, q_dot)``; to compare it
with the truth its states go through the true system's Legendre map (``system.velocities`` /
``system.momenta``). Canonical models use the states unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["is_lagrangian", "to_canonical_states", "to_model_states"]


def is_lagrangian(dynamics: Any) -> bool:
    """Whether ``dynamics`` works on Lagrangian states ``(q, q_dot)`` rather than ``(q, p)``."""
    return getattr(dynamics, "state_kind", "canonical") == "lagrangian"


def to_model_states(model: Any, system: Any, z: Tensor) -> Tensor:
    """Canonical states in the model's coordinates.

    Args:
        model: a dynamics or flow map (its ``state_kind`` decides).
        system: the true system (its ``velocities(q, p)`` is the Legendre map).
        z: ``(..., 2n)`` canonical states ``(q, p)``.

    Returns:
        ``(..., 2n)``: ``(q, velocities(q, p))`` for a Lagrangian model, ``z`` otherwise.
    """
    if not is_lagrangian(model):
        return z
    n = system.n_dof
    return torch.cat([z[..., :n], system.velocities(z[..., :n], z[..., n:])], -1)


def to_canonical_states(model: Any, system: Any, x: Tensor) -> Tensor:
    """The inverse of :func:`to_model_states`.

    Args:
        model: a dynamics or flow map (its ``state_kind`` decides).
        system: the true system (its ``momenta(q, q_dot)`` is the inverse Legendre map).
        x: ``(..., 2n)`` states in the model's coordinates.

    Returns:
        ``(..., 2n)``: ``(q, momenta(q, q_dot))`` for a Lagrangian model, ``x`` otherwise.
    """
    if not is_lagrangian(model):
        return x
    n = system.n_dof
    return torch.cat([x[..., :n], system.momenta(x[..., :n], x[..., n:])], -1)
