"""Phase-space geometry: the canonical matrix J, symplectic gradients, Poisson brackets,
Jacobians of maps and their symplecticity defect, divergence of vector fields.

Convention: ``z = (q, p)`` of shape ``(..., 2n)``, positions first, and

    J = [[0, I_n], [-I_n, 0]],   dz/dt = J grad H(z)   (dq/dt = dH/dp, dp/dt = -dH/dq).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._errors import SymplearnError
from .dynamics import Dynamics, FlowMap, scalar_gradient

__all__ = [
    "canonical_J",
    "apply_J",
    "gradient",
    "symplectic_gradient",
    "poisson_bracket",
    "batch_jacobian",
    "symplecticity_defect",
    "divergence",
]


def canonical_J(n: int, *, dtype: torch.dtype | None = None, device=None) -> Tensor:
    """The canonical symplectic matrix ``J = [[0, I_n], [-I_n, 0]]`` of shape ``(2n, 2n)``.

    It satisfies ``J^T = -J`` and ``J @ J = -I``.
    """
    if not isinstance(n, int) or n < 1:
        raise SymplearnError(f"canonical_J needs a positive integer n, got {n!r}")
    eye = torch.eye(n, dtype=dtype, device=device)
    zero = torch.zeros(n, n, dtype=dtype, device=device)
    return torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)


def apply_J(v: Tensor) -> Tensor:
    """``J v`` for ``v: (..., 2n)`` without building J: returns ``(v_p, -v_q)``."""
    n = v.shape[-1] // 2
    return torch.cat([v[..., n:], -v[..., :n]], dim=-1)


def gradient(f: Callable[[Tensor], Tensor], z: Tensor, *, create_graph: bool = False) -> Tensor:
    """Batched gradient of a scalar function by autograd.

    Args:
        f: maps ``(..., d)`` to ``(...)``; each output may depend only on its own row.
        z: ``(..., d)``.
        create_graph: keep the graph so the result can be differentiated again (training).

    Returns:
        ``grad f(z)`` of shape ``(..., d)``.
    """
    return scalar_gradient(f, z, create_graph=create_graph)


def symplectic_gradient(H: Callable[[Tensor], Tensor], z: Tensor, *, create_graph: bool = False) -> Tensor:
    """The Hamiltonian vector field ``X_H = J grad H`` of any scalar function, by autograd.

    Args:
        H: maps ``(..., 2n)`` to ``(...)``.
        z: ``(..., 2n)``.
        create_graph: keep the graph (needed when training through the field).

    Returns:
        ``(dH/dp, -dH/dq)`` of shape ``(..., 2n)``.
    """
    return apply_J(gradient(H, z, create_graph=create_graph))


def poisson_bracket(f: Callable[[Tensor], Tensor], g: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """The Poisson bracket ``{f, g} = grad f^T J grad g`` at a batch of points.

    ``{f, g} = sum_i (df/dq_i dg/dp_i - df/dp_i dg/dq_i)``.

    Args:
        f, g: scalar observables mapping ``(..., 2n)`` to ``(...)``.
        z: ``(..., 2n)``.

    Returns:
        ``(...)``.
    """
    gf = gradient(f, z)
    gg = gradient(g, z)
    return (gf * apply_J(gg)).sum(-1)


def as_state_map(fn, t: float = 0.0) -> Callable[[Tensor], Tensor]:
    """A callable ``z -> ...`` from a callable, a :class:`~symplearn.Dynamics` (its vector field
    at time ``t``) or a :class:`~symplearn.FlowMap` (its step from time ``t``)."""
    if isinstance(fn, Dynamics):
        return lambda z: fn.vector_field(t, z)
    if isinstance(fn, FlowMap):
        return lambda z: fn.step(t, z)
    if not callable(fn):
        raise SymplearnError(f"expected a callable, a Dynamics or a FlowMap, got {type(fn).__name__}")
    return fn


def batch_jacobian(fn: Callable[[Tensor], Tensor], z: Tensor, *, create_graph: bool = False) -> Tensor:
    """Jacobian of a batched, row-wise map by reverse-mode autograd.

    Works for any code (implicit solvers with data-dependent loops included): one backward pass
    per output coordinate.

    Args:
        fn: maps ``(..., d)`` to ``(..., m)``, each output row depending only on its own input row;
            or a Dynamics (its vector field) or a FlowMap (its step), at t = 0.
        z: ``(..., d)``.

    Returns:
        ``A`` of shape ``(..., m, d)`` with ``A[..., i, j] = d fn_i / d z_j``.
    """
    fn = as_state_map(fn)
    with torch.enable_grad():
        x = z.detach().requires_grad_(True)
        out = fn(x)
        rows = []
        for i in range(out.shape[-1]):
            (g,) = torch.autograd.grad(out[..., i].sum(), x, retain_graph=True, create_graph=create_graph)
            rows.append(g)
    return torch.stack(rows, dim=-2)


def symplecticity_defect(A: Tensor) -> Tensor:
    """``|| A^T J A - J ||_F`` for Jacobians ``A: (..., 2n, 2n)``; zero for a symplectic map.

    Returns:
        ``(...)``, the Frobenius norm of the defect per matrix.
    """
    if A.ndim < 2 or A.shape[-1] != A.shape[-2] or A.shape[-1] % 2:
        raise SymplearnError(
            f"symplecticity_defect needs square Jacobians of even size (..., 2n, 2n), "
            f"got shape {tuple(A.shape)}"
        )
    J = canonical_J(A.shape[-1] // 2, dtype=A.dtype, device=A.device)
    D = A.transpose(-1, -2) @ J @ A - J
    return torch.linalg.matrix_norm(D)


def divergence(field: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """Divergence ``sum_i d X_i / d z_i`` of a batched vector field (exact, by autograd).

    Args:
        field: maps ``(..., d)`` to ``(..., d)`` row-wise, or a Dynamics (its vector field at t = 0).
        z: ``(..., d)``.

    Returns:
        ``(...)``.
    """
    field = as_state_map(field)
    with torch.enable_grad():
        x = z.detach().requires_grad_(True)
        out = field(x)
        div = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for i in range(x.shape[-1]):
            (g,) = torch.autograd.grad(out[..., i].sum(), x, retain_graph=True)
            div = div + g[..., i]
    return div
