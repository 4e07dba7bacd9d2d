"""Models for systems whose positions are angles: inputs embedded as ``(cos q, sin q)`` so the
learned function is exactly 2 pi-periodic in those coordinates (phase space ``T^k x R^...``)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import ScalarMLP, check_int
from .activations import get_activation
from .hnn import HNN

__all__ = ["AngleHNN"]


class AngleHNN(HNN):
    """Hamiltonian neural network on a cylinder/torus: ``H_theta(cos q_A, sin q_A, q_rest, p)``
    for the angle coordinates ``A``, so ``H_theta`` is exactly 2 pi-periodic in each angle.

    A plain :class:`~symplearn.models.HNN` trained on wrapped angles ``[-pi, pi)`` learns two
    slightly different values on the two sides of the cut; each time an angle is wrapped the
    learned energy jumps by that defect, and over many rotations the energy random-walks. With
    the embedding there is no cut. The gradient is closed form (chain rule through the
    embedding): ``dH/dq_a = -sin(q_a) dH/dc_a + cos(q_a) dH/ds_a``.

    Args:
        n_dof: degrees of freedom n (state ``z = (q, p)``, ``(..., 2n)``).
        width, depth, activation: of the scalar network (smooth activation).
        angles: indices (into q) of the angle coordinates; default all of them.

    Raises:
        SymplearnError: non-positive sizes, an unknown or non-smooth activation, angle indices
            outside ``[0, n)``.
    """

    kind = "hnn-angles"

    def __init__(
        self,
        n_dof: int,
        width: int = 64,
        depth: int = 2,
        activation: str = "tanh",
        angles: tuple[int, ...] | None = None,
    ):
        super().__init__(n_dof, width, depth, activation)
        n = self.n_dof
        angles = tuple(range(n)) if angles is None else tuple(int(a) for a in angles)
        for a in angles:
            check_int("angle index + 1", a + 1)
            if a >= n:
                from .._errors import SymplearnError

                raise SymplearnError(f"angles must be indices in [0, {n}) of q, got {angles}")
        self.angles = angles
        self._rest = [i for i in range(2 * n) if i not in angles]
        act = get_activation(activation, smooth=True, model="AngleHNN")
        self._set_config(n_dof=n, width=width, depth=depth, activation=activation, angles=list(angles))
        self.energy_net = ScalarMLP(2 * n + len(angles), width, depth, act)

    def _embed(self, z: Tensor) -> Tensor:
        qa = z[..., list(self.angles)]
        return torch.cat([torch.cos(qa), torch.sin(qa), z[..., self._rest]], -1)

    def hamiltonian(self, z: Tensor) -> Tensor:
        """``H_theta(z)``, periodic in the angles. Args: z: ``(..., 2n)``. Returns ``(...)``."""
        self._check_state(z)
        return self.energy_net(self._embed(z))

    def grad_hamiltonian(self, z: Tensor) -> Tensor:
        """``grad H_theta(z)`` by the chain rule through the embedding. ``(..., 2n) -> (..., 2n)``."""
        self._check_state(z)
        k = len(self.angles)
        g = self.energy_net.gradient(self._embed(z))
        qa = z[..., list(self.angles)]
        ga = -torch.sin(qa) * g[..., :k] + torch.cos(qa) * g[..., k : 2 * k]
        out = torch.empty_like(z)
        out[..., list(self.angles)] = ga
        out[..., self._rest] = g[..., 2 * k :]
        return out
