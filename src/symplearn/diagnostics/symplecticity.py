"""Symplecticity and volume of a map: ``|| A^T J A - J ||`` and ``det A`` of the Jacobian of one
step (an integrator step of a dynamics, or a learned flow map) at a batch of states."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import Dynamics, FlowMap
from ..geometry import batch_jacobian, symplecticity_defect
from ._common import check_output, check_states, default_tol, fd_jvp

__all__ = ["MapSymplecticity", "as_map", "assert_symplectic", "map_symplecticity"]


def as_map(step: Any, t: float = 0.0) -> tuple[Callable[[Tensor], Tensor], int | None, str]:
    """A one-step map ``z -> z'`` from a :class:`~symplearn.FlowMap` (stepped from time ``t``) or
    a callable.

    Returns:
        ``(fn, dim, description)``; ``dim`` is the phase-space dimension when known.
    """
    if isinstance(step, FlowMap):
        return (lambda z: step.step(t, z)), step.dim, repr(step)
    if callable(step) and not isinstance(step, Dynamics):
        return step, None, getattr(step, "__name__", "step")
    raise SymplearnError(
        f"step must be a FlowMap (symplearn.discretize(dynamics, integrator, dt), or a SympNet) or a "
        f"callable z -> z'; got {type(step).__name__}"
    )


def _fd_jacobian(fn: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    d = z.shape[-1]
    cols = []
    for j in range(d):
        e = torch.zeros_like(z)
        e[..., j] = 1.0
        cols.append(fd_jvp(fn, z, e))
    return torch.stack(cols, -1)


@dataclass(frozen=True)
class MapSymplecticity:
    """Symplecticity and volume change of one step of a map (see :func:`map_symplecticity`).

    Attributes:
        defect: ``(B,)`` ``||A^T J A - J||_F`` (0 for a symplectic step).
        det: ``(B,)`` ``det A`` (1 for a volume-preserving step).
        max_defect: largest defect.
        max_det_error: ``max |det A - 1|``.
        jacobian_norm: largest ``||A||_F``.
        method: ``"autograd"`` or ``"finite-difference"``.
    """

    defect: Tensor
    det: Tensor
    max_defect: float
    max_det_error: float
    jacobian_norm: float
    method: str

    def as_dict(self) -> dict[str, float | str]:
        """Plain values for ``metrics.json`` (the per-state tensors left out)."""
        return {
            "max_defect": self.max_defect,
            "max_det_error": self.max_det_error,
            "jacobian_norm": self.jacobian_norm,
            "method": self.method,
        }


def map_symplecticity(step: Any, z: Any) -> MapSymplecticity:
    """Symplecticity defect and volume change of one step of a map at a batch of states.

    The Jacobian ``A = d step / d z`` comes from :func:`symplearn.geometry.batch_jacobian`
    (reverse-mode autograd). It is checked once against a finite difference; a map whose
    derivative autograd does not see (e.g. a field computed with ``create_graph=False``) gets a
    central finite-difference Jacobian instead, and ``method`` says so.

    Args:
        step: a :class:`~symplearn.FlowMap` (``symplearn.discretize(dynamics, integrator, dt)``
            or a learned flow map) or a callable ``(B, 2n) -> (B, 2n)`` acting row-wise.
        z: ``(B, 2n)`` states (or ``(2n,)`` for one).

    Returns:
        :class:`MapSymplecticity`.

    Raises:
        SymplearnError: bad states or a map that changes the shape.
    """
    fn, dim, _ = as_map(step)
    z = check_states(z, "z", dim)
    single = z.ndim == 1
    zb = z.reshape(-1, z.shape[-1])
    check_output(fn(zb[:1]).detach(), zb[:1], "step")
    method = "autograd"
    u = torch.randn(zb.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(zb)
    fd = fd_jvp(fn, zb, u)
    try:
        A = batch_jacobian(fn, zb).detach()
        Au = (A @ u.unsqueeze(-1)).squeeze(-1)
        err = float(((Au - fd).norm(dim=-1) / torch.clamp(fd.norm(dim=-1), min=1e-300)).max())
    except RuntimeError:  # no autograd path through the map at all
        err = float("inf")
    if not err < 1e3 * torch.finfo(zb.dtype).eps ** (2.0 / 3.0) + 1e-6:
        A = _fd_jacobian(fn, zb)
        method = "finite-difference"
    defect = symplecticity_defect(A)
    det = torch.linalg.det(A)
    if single:
        defect, det = defect[0], det[0]
    return MapSymplecticity(
        defect=defect,
        det=det,
        max_defect=float(defect.max()),
        max_det_error=float((det - 1.0).abs().max()),
        jacobian_norm=float(torch.linalg.matrix_norm(A).max()),
        method=method,
    )


def assert_symplectic(step: Any, z: Any, tol: float | None = None) -> MapSymplecticity:
    """Assert that one step of a map is symplectic at the given states.

    Passes when ``max ||A^T J A - J||_F <= tol * max(1, ||A||_F^2)`` (the defect's round-off
    grows with the Jacobian's size).

    Args:
        step: as in :func:`map_symplecticity`.
        z: ``(B, 2n)`` states.
        tol: default 1e-10 for float64 states, 1e-4 for float32.

    Returns:
        The :class:`MapSymplecticity` (when the assertion holds).

    Raises:
        AssertionError: with the measured defect, ``det A`` range and the tolerance.
    """
    res = map_symplecticity(step, z)
    zt = check_states(z, "z")
    tol = default_tol(zt.dtype) if tol is None else float(tol)
    allowed = tol * max(1.0, res.jacobian_norm**2)
    if not res.max_defect <= allowed:
        det = res.det.reshape(-1)
        raise AssertionError(
            f"the map is not symplectic: max ||A^T J A - J||_F = {res.max_defect:.3e} > "
            f"{allowed:.1e} (tol {tol:.1e} x max(1, ||A||_F^2 = {res.jacobian_norm**2:.3g})); "
            f"det A in [{float(det.min()):.12g}, {float(det.max()):.12g}] (1 for a volume-preserving "
            f"map); Jacobian by {res.method}"
        )
    return res
