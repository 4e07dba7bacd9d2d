"""The planar double pendulum (two point masses on massless rigid rods)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import split
from .base import System


class DoublePendulum(System):
    r"""Double pendulum in canonical coordinates: angles ``q = (q1, q2)`` of the two rods from the
    downward vertical, conjugate momenta ``p = (p1, p2)``.

    With ``D = q1 - q2`` and the mass matrix
    ``M(q) = [[(m1 + m2) l1^2, m2 l1 l2 cos D], [m2 l1 l2 cos D, m2 l2^2]]``,

        H = p^T M(q)^{-1} p / 2 + V(q)
          = [m2 l2^2 p1^2 + (m1 + m2) l1^2 p2^2 - 2 m2 l1 l2 cos(D) p1 p2]
            / [2 m2 l1^2 l2^2 (m1 + m2 sin^2 D)]  +  V(q),

        V(q) = (m1 + m2) g l1 (1 - cos q1) + m2 g l2 (1 - cos q2),

    (the potential is shifted so that the hanging rest state has zero energy; flipping both arms
    up costs ``V_max = 2 g ((m1 + m2) l1 + m2 l2)``). The kinetic energy depends on q, so H is
    **not separable**: use an implicit integrator (Gauss-Legendre). The Lagrangian is

        L(q, q_dot) = q_dot^T M(q) q_dot / 2 - V(q),

    with Legendre map ``p = M(q) q_dot`` (:meth:`momenta`, :meth:`velocities`) and analytic
    Euler-Lagrange accelerations (:meth:`acceleration`). Conserved: the energy only (the motion is
    chaotic at moderate energies).

    Default sampling: energies in ``(V_max / 6, V_max / 2)`` (``(9.81, 29.43)`` for the default
    parameters), positions uniform in ``[-pi, pi]^2`` where ``V < E``, a uniformly random
    momentum direction. The upper part of this range is strongly chaotic.
    """

    name = "double-pendulum"
    n_dof = 2
    has_lagrangian = True
    PARAMS = {"m1": 1.0, "m2": 1.0, "l1": 1.0, "l2": 1.0, "g": 9.81}

    def _validate(self) -> None:
        for k in ("m1", "m2", "l1", "l2", "g"):
            if self.params[k] <= 0:
                raise SymplearnError(
                    f"{k} of double-pendulum must be > 0 (masses, lengths and g are positive), "
                    f"got {k}={self.params[k]:g}"
                )

    @property
    def V_max(self) -> float:
        """Potential energy with both arms pointing up, ``2 g ((m1 + m2) l1 + m2 l2)``."""
        return 2.0 * self.g * ((self.m1 + self.m2) * self.l1 + self.m2 * self.l2)

    @property
    def ENERGY_RANGE(self) -> tuple[float, float]:  # a class constant in simpler systems
        """Default sampling range ``(V_max / 6, V_max / 2)``: ``(9.81, 29.43)`` by default."""
        return (self.V_max / 6.0, self.V_max / 2.0)

    # -- pieces -------------------------------------------------------------------------------
    def potential(self, q: Tensor) -> Tensor:
        """``V(q)``. Args: q: ``(..., 2)``. Returns ``(...)``."""
        q1, q2 = q[..., 0], q[..., 1]
        return (self.m1 + self.m2) * self.g * self.l1 * (1.0 - torch.cos(q1)) + (
            self.m2 * self.g * self.l2 * (1.0 - torch.cos(q2))
        )

    def mass_matrix(self, q: Tensor) -> Tensor:
        """``M(q)``. Args: q: ``(..., 2)``. Returns ``(..., 2, 2)``."""
        c = torch.cos(q[..., 0] - q[..., 1])
        a = torch.full_like(c, (self.m1 + self.m2) * self.l1**2)
        b = self.m2 * self.l1 * self.l2 * c
        d = torch.full_like(c, self.m2 * self.l2**2)
        return torch.stack([torch.stack([a, b], -1), torch.stack([b, d], -1)], -2)

    def _inverse_mass(
        self, D: Tensor, c: Tensor | None = None, s: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Entries ``(A, B, C)`` of ``M^{-1} = [[A, B], [B, C]]`` and ``det M`` as functions of D
        (``c, s``: ``cos D, sin D`` when the caller has them already)."""
        m1, m2, l1, l2 = self.m1, self.m2, self.l1, self.l2
        c = torch.cos(D) if c is None else c
        s = torch.sin(D) if s is None else s
        det = m2 * l1**2 * l2**2 * (m1 + m2 * s**2)
        return m2 * l2**2 / det, -m2 * l1 * l2 * c / det, (m1 + m2) * l1**2 / det, det

    # -- Hamiltonian side -----------------------------------------------------------------------
    def hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        A, B, C, _ = self._inverse_mass(q[..., 0] - q[..., 1])
        p1, p2 = p[..., 0], p[..., 1]
        T = 0.5 * (A * p1**2 + 2.0 * B * p1 * p2 + C * p2**2)
        return T + self.potential(q)

    def velocities(self, q: Tensor, p: Tensor) -> Tensor:
        """``q_dot = M(q)^{-1} p``. Args: q, p: ``(..., 2)``. Returns ``(..., 2)``."""
        A, B, C, _ = self._inverse_mass(q[..., 0] - q[..., 1])
        p1, p2 = p[..., 0], p[..., 1]
        return torch.stack([A * p1 + B * p2, B * p1 + C * p2], -1)

    def vector_field(self, t, z: Tensor) -> Tensor:
        # With k = m2 l1^2 l2^2, det M = k (m1 + m2 sin^2 D), q_dot = M^{-1} p, 2 T = p . q_dot and
        #   dT/dD = sin D / det (m2 l1 l2 p1 p2 - m2 k cos D 2T)
        # (from T = N / (2 det): dN/dD = 2 m2 l1 l2 sin D p1 p2, d det/dD = 2 m2 k sin D cos D).
        # Written in few ops on the (...)-shaped components: a GL4 step of 4096 states evaluates
        # it ~9 times, and its time is the step's (the four sin/cos take a third).
        q, p = split(z)
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        k = m2 * l1**2 * l2**2
        p1, p2 = p[..., 0], p[..., 1]
        D = q[..., 0] - q[..., 1]
        s, c = torch.sin(D), torch.cos(D)
        inv_det = 1.0 / ((s * s) * (k * m2) + k * m1)
        bc = (m2 * l1 * l2) * c
        q1dot = torch.addcmul((m2 * l2**2) * p1, bc, p2, value=-1.0) * inv_det
        q2dot = torch.addcmul(((m1 + m2) * l1**2) * p2, bc, p1, value=-1.0) * inv_det
        two_T = torch.addcmul(p1 * q1dot, p2, q2dot)
        dTdD = torch.addcmul((m2 * l1 * l2) * (p1 * p2), c, two_T, value=-m2 * k) * (s * inv_det)
        p1dot = (-(m1 + m2) * g * l1) * torch.sin(q[..., 0]) - dTdD
        p2dot = (-m2 * g * l2) * torch.sin(q[..., 1]) + dTdD
        return torch.stack([q1dot, q2dot, p1dot, p2dot], -1)

    # -- Lagrangian side ------------------------------------------------------------------------
    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        m1, m2, l1, l2 = self.m1, self.m2, self.l1, self.l2
        w1, w2 = qdot[..., 0], qdot[..., 1]
        c = torch.cos(q[..., 0] - q[..., 1])
        T = 0.5 * (m1 + m2) * l1**2 * w1**2 + 0.5 * m2 * l2**2 * w2**2 + m2 * l1 * l2 * c * w1 * w2
        return T - self.potential(q)

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        """``p = M(q) q_dot``. Args: q, qdot: ``(..., 2)``. Returns ``(..., 2)``."""
        m1, m2, l1, l2 = self.m1, self.m2, self.l1, self.l2
        w1, w2 = qdot[..., 0], qdot[..., 1]
        b = m2 * l1 * l2 * torch.cos(q[..., 0] - q[..., 1])
        return torch.stack([(m1 + m2) * l1**2 * w1 + b * w2, b * w1 + m2 * l2**2 * w2], -1)

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        """Euler-Lagrange accelerations: solve ``M(q) q_ddot = f(q, q_dot)`` with

        ``f1 = -m2 l1 l2 sin(D) w2^2 - (m1 + m2) g l1 sin q1``,
        ``f2 = +m2 l1 l2 sin(D) w1^2 - m2 g l2 sin q2``.

        Args:
            q, qdot: ``(..., 2)``.

        Returns:
            ``(..., 2)``.
        """
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        w1, w2 = qdot[..., 0], qdot[..., 1]
        D = q[..., 0] - q[..., 1]
        s = torch.sin(D)
        f1 = -m2 * l1 * l2 * s * w2**2 - (m1 + m2) * g * l1 * torch.sin(q[..., 0])
        f2 = m2 * l1 * l2 * s * w1**2 - m2 * g * l2 * torch.sin(q[..., 1])
        A, B, C, _ = self._inverse_mass(D)
        return torch.stack([A * f1 + B * f2, B * f1 + C * f2], -1)
