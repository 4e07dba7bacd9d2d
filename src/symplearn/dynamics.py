"""The small set of questions every dynamics answers.

Ground-truth systems and learned models share these interfaces, so every integrator,
diagnostic and plot works on both without special cases.

State convention: ``z = (q, p)`` of shape ``(..., 2n)``, positions first
(``q = z[..., :n]``, ``p = z[..., n:]``).
"""

from __future__ import annotations

import torch
from torch import Tensor


class Dynamics:
    """Continuous-time dynamics ``dz/dt = vector_field(z)``.

    Subclasses set ``n_dof`` (the number n of degrees of freedom; the state has 2n entries) and
    implement :meth:`vector_field`. Those with an energy set ``has_energy = True`` and implement
    :meth:`hamiltonian`; separable ones (``H = T(p) + V(q)``) set ``separable = True`` and
    implement :meth:`grad_T` and :meth:`grad_V`, which explicit symplectic integrators need.
    """

    n_dof: int
    has_energy: bool = False
    separable: bool = False

    @property
    def dim(self) -> int:
        """Phase-space dimension 2n."""
        return 2 * self.n_dof

    def vector_field(self, z: Tensor) -> Tensor:
        """``dz/dt`` at ``z``. Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        raise NotImplementedError

    def hamiltonian(self, z: Tensor) -> Tensor:
        """The energy ``H(z)``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        raise NotImplementedError(f"{type(self).__name__} has no Hamiltonian")

    def grad_T(self, p: Tensor) -> Tensor:
        """``dT/dp`` for separable ``H = T(p) + V(q)``. Args: p: ``(..., n)``. Returns: ``(..., n)``."""
        raise NotImplementedError(f"{type(self).__name__} is not separable")

    def grad_V(self, q: Tensor) -> Tensor:
        """``dV/dq`` for separable ``H = T(p) + V(q)``. Args: q: ``(..., n)``. Returns: ``(..., n)``."""
        raise NotImplementedError(f"{type(self).__name__} is not separable")


class FlowMap:
    """Discrete-time dynamics: a map ``z_{k+1} = step(z_k)`` for a fixed, declared time step ``dt``.

    Subclasses (SympNets) set ``n_dof`` and ``dt`` and implement :meth:`step`.
    """

    n_dof: int
    dt: float
    has_energy: bool = False

    @property
    def dim(self) -> int:
        """Phase-space dimension 2n."""
        return 2 * self.n_dof

    def step(self, z: Tensor) -> Tensor:
        """One step of the map. Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        raise NotImplementedError


def split(z: Tensor) -> tuple[Tensor, Tensor]:
    """Split ``z: (..., 2n)`` into ``q, p: (..., n)``."""
    n = z.shape[-1] // 2
    return z[..., :n], z[..., n:]


def join(q: Tensor, p: Tensor) -> Tensor:
    """Join ``q, p: (..., n)`` into ``z: (..., 2n)``."""
    return torch.cat([q, p], dim=-1)
