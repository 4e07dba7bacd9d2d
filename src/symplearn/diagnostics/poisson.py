"""Poisson brackets with an energy, and Noether's theorem: an observable ``f`` is conserved by the
flow of ``H`` exactly when ``{f, H} = 0``, i.e. when ``H`` is invariant under the flow that ``f``
generates (angular momentum <-> rotations, momentum <-> translations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from ..dynamics import Dynamics, FlowMap, HamiltonianDynamics
from ..geometry import apply_J
from ._common import check_states, dynamics_dim

__all__ = ["bracket_with_energy"]


def _scalar_gradient(f: Callable[[Tensor], Tensor], z: Tensor, name: str) -> Tensor:
    """``grad f`` at ``z: (B, 2n)`` with clear errors for functions that do not fit."""
    with torch.enable_grad():
        x = z.detach().requires_grad_(True)
        try:
            val = f(x)
        except Exception as exc:
            raise SymplearnError(
                f"{name} could not be evaluated on states of shape {tuple(z.shape)} "
                f"(2n = {z.shape[-1]} coordinates, q's then p's): {exc!r}; it must map (..., 2n) -> (...)"
            ) from exc
        if not isinstance(val, Tensor):
            raise SymplearnError(
                f"{name} must return a torch.Tensor of shape {tuple(z.shape[:-1])} for states of shape "
                f"{tuple(z.shape)}, got {type(val).__name__}"
            )
        if val.shape != z.shape[:-1]:
            hint = (
                "; for a (..., 1) output use lambda z: f(z)[..., 0]"
                if val.shape == (*z.shape[:-1], 1)
                else ""
            )
            raise SymplearnError(
                f"{name} must be a scalar observable: for states of shape {tuple(z.shape)} it must "
                f"return shape {tuple(z.shape[:-1])}, got {tuple(val.shape)}{hint}"
            )
        if not val.requires_grad:  # a constant observable
            return torch.zeros_like(z)
        (g,) = torch.autograd.grad(val.sum(), x, allow_unused=True)
    return torch.zeros_like(z) if g is None else g.detach()


def bracket_with_energy(
    f: Callable[[Tensor], Tensor], hamiltonian: Any, points: Any, *, normalised: bool = True
) -> Tensor:
    """Poisson bracket ``{f, H} = sum_i (df/dq_i dH/dp_i - df/dp_i dH/dq_i)`` at a sample of points.

    ``{f, H}`` is the rate of change of ``f`` along the flow of ``H``: zero means ``f`` is
    conserved (Noether). Normalised by ``|grad f| |grad H|`` it is the cosine-like ratio in
    ``[-1, 1]`` that compares observables of different units; where a gradient vanishes the
    normalised bracket is defined as 0.

    Args:
        f: the observable, ``(..., 2n) -> (...)``, differentiable with torch.
        hamiltonian: the energy, ``(..., 2n) -> (...)``, or a dynamics with an energy (a system
            or a learned HNN: its ``hamiltonian`` is used).
        points: ``(B, 2n)`` states (any batch shape ``(..., 2n)``).
        normalised: divide by ``|grad f| |grad H|``.

    Returns:
        ``(B,)`` (the batch shape of ``points``).

    Raises:
        SymplearnError: ``f`` or ``H`` fails on states of this dimension or does not return one
            value per state; ``hamiltonian`` is a dynamics without energy.
    """
    dim = None
    if isinstance(hamiltonian, HamiltonianDynamics):
        dim = dynamics_dim(hamiltonian)
        hamiltonian = hamiltonian.hamiltonian
    elif not callable(hamiltonian) or isinstance(hamiltonian, (Dynamics, FlowMap)):
        raise SymplearnError(
            f"hamiltonian must be a callable (..., 2n) -> (...) or a Hamiltonian dynamics (a system "
            f"or an HNN), got {type(hamiltonian).__name__}, which has no energy"
        )
    if not callable(f):
        raise SymplearnError(f"f must be a callable observable (..., 2n) -> (...), got {type(f).__name__}")
    z = check_states(points, "points", dim)
    batch = z.shape[:-1]
    zb = z.reshape(-1, z.shape[-1])
    gf = _scalar_gradient(f, zb, "the observable f")
    gH = _scalar_gradient(hamiltonian, zb, "the hamiltonian")
    br = (gf * apply_J(gH)).sum(-1)
    if normalised:
        den = gf.norm(dim=-1) * gH.norm(dim=-1)
        br = torch.where(den > 0, br / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(br))
    if not bool(torch.isfinite(br).all()):
        raise NonFiniteError("the bracket is NaN or infinite at some points")
    return br.reshape(batch)
