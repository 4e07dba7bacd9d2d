"""Symmetries of an energy and their Noether charges, as checks that tests and users share.

A continuous symmetry acts on states (:class:`Symmetry`: ``act`` on points, ``push`` on
tangent vectors, and the ``generator`` G whose Hamiltonian flow it is). For an energy H:

* invariance ``H(g z) = H(z)`` (:func:`assert_invariant`);
* Noether: ``{G, H} = 0`` everywhere, so G is conserved by the flow of H
  (:func:`noether_charge_bracket`, :func:`assert_noether_charge`);
* equivariance of the field ``X = J grad H``: ``X(g z) = g_* X(z)`` (:func:`assert_equivariant`;
  for a translation ``g_*`` is the identity, the field does not move; for a rotation it rotates).

Generators: :func:`total_momentum` (translations of all particles), :func:`angular_momentum`
(rotations of the plane about the origin). Group actions: :func:`translation`, :func:`rotation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._errors import SymplearnError
from .._validate import check_state
from ..dynamics import Dynamics
from ._common import check_int, check_states, default_tol
from .poisson import bracket_with_energy

__all__ = [
    "Symmetry",
    "angular_momentum",
    "assert_equivariant",
    "assert_invariant",
    "assert_noether_charge",
    "noether_charge_bracket",
    "rotation",
    "total_momentum",
    "translation",
]


class Symmetry(NamedTuple):
    """A one-parameter symmetry, at one group element.

    Attributes:
        name: what it is (for messages), e.g. ``"translation by 10"``.
        act: the group element on states, ``(..., 2n) -> (..., 2n)``.
        push: its linear part on tangent vectors (fields), ``(..., 2n) -> (..., 2n)``.
        generator: the Noether charge G, ``(..., 2n) -> (...)``, whose Hamiltonian flow is the
            one-parameter group.
    """

    name: str
    act: Callable[[Tensor], Tensor]
    push: Callable[[Tensor], Tensor]
    generator: Callable[[Tensor], Tensor]


def _n(z: Tensor) -> int:
    return check_state(z, name="states", floating=False, finite=False).shape[-1] // 2


def total_momentum(z: Tensor, *, spatial_dim: int = 1, axis: int = 0) -> Tensor:
    """Total momentum along one axis, ``sum_i p_i[axis]``: the generator of a common shift of
    all particles along that axis.

    Args:
        z: ``(..., 2n)`` with ``n = N d`` (N particles of d = ``spatial_dim`` coordinates,
            particle-major).
        spatial_dim: d.
        axis: which coordinate, ``0 <= axis < d``.

    Returns:
        ``(...)``.

    Raises:
        SymplearnError: n not a multiple of d, or an axis out of range.
    """
    d = check_int("spatial_dim", spatial_dim)
    n = _n(z)
    if n % d or not (0 <= axis < d):
        raise SymplearnError(
            f"total_momentum: n = {n} must be a multiple of spatial_dim = {d} and 0 <= axis < {d}; "
            f"got axis={axis}"
        )
    return z[..., n + axis :: d].sum(-1)


def angular_momentum(z: Tensor) -> Tensor:
    """Angular momentum about the origin of bodies in the plane, ``sum_i (x_i p_yi - y_i p_xi)``:
    the generator of rotations of the plane.

    Args:
        z: ``(..., 2n)``, ``q = (x_1, y_1, x_2, y_2, ...)``, n even.

    Returns:
        ``(...)``.

    Raises:
        SymplearnError: n odd (not planar bodies).
    """
    n = _n(z)
    if n % 2:
        raise SymplearnError(f"angular_momentum needs planar bodies (n even), got n = {n}")
    x, y = z[..., 0:n:2], z[..., 1:n:2]
    px, py = z[..., n::2], z[..., n + 1 :: 2]
    return (x * py - y * px).sum(-1)


def translation(shift: Any, *, spatial_dim: int = 1) -> Symmetry:
    """Shift all particles' positions by the same vector ``s`` (momenta unchanged).

    Args:
        shift: a number (d = 1) or a sequence of d numbers.
        spatial_dim: d, coordinates per particle.

    Returns:
        :class:`Symmetry` with ``push`` the identity and generator ``s . sum_i p_i``.

    Raises:
        SymplearnError: a shift of the wrong length or not finite.
    """
    d = check_int("spatial_dim", spatial_dim)
    s = torch.as_tensor(shift, dtype=torch.float64).reshape(-1)
    if s.numel() == 1 and d > 1:
        s = s.expand(d)
    if s.numel() != d or not bool(torch.isfinite(s).all()):
        raise SymplearnError(f"shift must be {d} finite number(s) (spatial_dim={d}), got {shift!r}")

    def act(z: Tensor) -> Tensor:
        n = _n(z)
        if n % d:
            raise SymplearnError(f"translation: n = {n} is not a multiple of spatial_dim = {d}")
        add = s.to(z).repeat(n // d)
        return torch.cat([z[..., :n] + add, z[..., n:]], -1)

    def generator(z: Tensor) -> Tensor:
        n = _n(z)
        p = z[..., n:].reshape(*z.shape[:-1], n // d, d).sum(-2)
        return (p * s.to(z)).sum(-1)

    label = f"{float(s[0]):g}" if d == 1 else str([float(v) for v in s])
    return Symmetry(f"translation by {label}", act, lambda v: v, generator)


def _rotate_pairs(v: Tensor, c: float, s: float) -> Tensor:
    x, y = v[..., 0::2], v[..., 1::2]
    return torch.stack([c * x - s * y, s * x + c * y], -1).reshape(v.shape)


def rotation(angle: float) -> Symmetry:
    """Rotate the plane by ``angle`` about the origin: every body's position and momentum.

    Args:
        angle: radians.

    Returns:
        :class:`Symmetry` (linear, so ``push = act``) with generator :func:`angular_momentum`.

    Raises:
        SymplearnError: a non-finite angle.
    """
    try:
        a = float(angle)
    except (TypeError, ValueError):
        raise SymplearnError(f"angle must be a number (radians), got {angle!r}") from None
    if not math.isfinite(a):
        raise SymplearnError(f"angle must be finite, got {angle!r}")
    c, s = math.cos(a), math.sin(a)

    def act(z: Tensor) -> Tensor:
        n = _n(z)
        if n % 2:
            raise SymplearnError(f"rotation acts on planar bodies (n even), got n = {n}")
        return torch.cat([_rotate_pairs(z[..., :n], c, s), _rotate_pairs(z[..., n:], c, s)], -1)

    return Symmetry(f"rotation by {a:g} rad", act, act, angular_momentum)


def noether_charge_bracket(
    generator: Callable[[Tensor], Tensor], hamiltonian: Any, z: Any, *, normalised: bool = True
) -> Tensor:
    """The Poisson bracket ``{G, H}`` of a symmetry's generator with an energy at states z:
    the rate of change of G along the flow of H. Zero everywhere iff H is invariant under the
    flow of G (Noether); for an energy invariant by construction, zero to round-off.

    Args:
        generator: G, ``(..., 2n) -> (...)`` (e.g. :func:`total_momentum`,
            :func:`angular_momentum`, or a :class:`Symmetry`'s ``generator``).
        hamiltonian: the energy ``(..., 2n) -> (...)`` or a dynamics with one (system, HNN).
        z: ``(..., 2n)`` states.
        normalised: divide by ``|grad G| |grad H|`` (a ratio in [-1, 1], comparable across
            units; 0 where a gradient vanishes).

    Returns:
        ``(...)``, the batch shape of z.

    Raises:
        SymplearnError: see :func:`~symplearn.diagnostics.bracket_with_energy`.
    """
    return bracket_with_energy(generator, hamiltonian, z, normalised=normalised)


def assert_noether_charge(
    generator: Callable[[Tensor], Tensor], hamiltonian: Any, z: Any, tol: float | None = None
) -> float:
    """Assert ``max |{G, H}| / (|grad G| |grad H|) <= tol`` on the states z.

    Args:
        generator, hamiltonian, z: as :func:`noether_charge_bracket`.
        tol: default ``1e-10`` for float64 states, ``1e-4`` for float32.

    Returns:
        The largest normalised bracket.

    Raises:
        AssertionError: the bracket exceeds ``tol`` somewhere (the message gives the value).
    """
    br = noether_charge_bracket(generator, hamiltonian, z)
    worst = float(br.abs().max())
    tol = default_tol(br.dtype) if tol is None else tol
    if not worst <= tol:
        raise AssertionError(f"{{G, H}} is not zero: max normalised bracket {worst:.3g} > tol {tol:.3g}")
    return worst


def _check_symmetry(symmetry: Any) -> Symmetry:
    if not isinstance(symmetry, Symmetry):
        raise SymplearnError(
            f"symmetry must be a symplearn.diagnostics.symmetry.Symmetry (from translation(...) or "
            f"rotation(...)), got {type(symmetry).__name__}"
        )
    return symmetry


def assert_invariant(
    function: Callable[[Tensor], Tensor], symmetry: Symmetry, z: Any, tol: float | None = None
) -> float:
    """Assert ``|f(g z) - f(z)| <= tol * max|f(z)|`` on states z (an energy's invariance).

    Args:
        function: f, ``(..., 2n) -> (...)`` (e.g. a model's ``hamiltonian``).
        symmetry: the group element g (:func:`translation`, :func:`rotation`).
        z: ``(..., 2n)`` states.
        tol: relative tolerance; default ``1e-10`` (float64) or ``1e-4`` (float32).

    Returns:
        The relative error ``max |f(g z) - f(z)| / max |f(z)|``.

    Raises:
        AssertionError: the error exceeds ``tol``.
        SymplearnError: a symmetry that is not a :class:`Symmetry`.
    """
    symmetry = _check_symmetry(symmetry)
    z = check_states(z, "z")
    with torch.no_grad():
        a, b = function(symmetry.act(z)), function(z)
    rel = float((a - b).abs().max() / b.abs().max().clamp_min(torch.finfo(b.dtype).tiny))
    tol = default_tol(b.dtype) if tol is None else tol
    if not rel <= tol:
        raise AssertionError(
            f"not invariant under {symmetry.name}: relative change {rel:.3g} > tol {tol:.3g}"
        )
    return rel


def assert_equivariant(field: Any, symmetry: Symmetry, z: Any, tol: float | None = None) -> float:
    """Assert that a vector field is equivariant: ``X(g z) = g_* X(z)`` on states z.

    Args:
        field: an autonomous :class:`~symplearn.Dynamics` (its ``vector_field(0, z)`` is used) or a
            callable ``(..., 2n) -> (..., 2n)``.
        symmetry: the group element g (:func:`translation`: the field must not change;
            :func:`rotation`: it must rotate with the state).
        z: ``(..., 2n)`` states.
        tol: relative tolerance; default ``1e-10`` (float64) or ``1e-4`` (float32).

    Returns:
        The relative error ``max_k |X(g z_k) - g_* X(z_k)| / max_k |X(z_k)|``.

    Raises:
        AssertionError: the error exceeds ``tol``.
        SymplearnError: a field that is neither, or a symmetry that is not a :class:`Symmetry`.
    """
    symmetry = _check_symmetry(symmetry)
    if isinstance(field, Dynamics):
        dyn = field

        def f(z: Tensor) -> Tensor:
            return dyn.vector_field(0.0, z)
    elif callable(field):
        f = field
    else:
        raise SymplearnError(f"field must be a dynamics or a callable field, got {type(field).__name__}")
    z = check_states(z, "z")
    with torch.no_grad():
        a, b = f(symmetry.act(z)), symmetry.push(f(z))
    scale = b.norm(dim=-1).max().clamp_min(torch.finfo(b.dtype).tiny)
    rel = float((a - b).norm(dim=-1).max() / scale)
    tol = default_tol(b.dtype) if tol is None else tol
    if not rel <= tol:
        raise AssertionError(
            f"field not equivariant under {symmetry.name}: relative error {rel:.3g} > tol {tol:.3g}"
        )
    return rel
