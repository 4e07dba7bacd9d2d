"""Two unit masses on a line joined by a spring, with no wall: translation symmetry and
conserved total momentum (the specification's "cut the wall", ``001_*.txt`` Movement III)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._errors import SymplearnError
from .._validate import check_int
from ..dynamics import SeparableHamiltonian, join, split
from .base import System, seeded_generator


class TwoBodySpring(System, SeparableHamiltonian):
    """Two unit masses on a line, ``q = (q1, q2)``, ``p = (p1, p2)``, joined by a spring of
    stiffness k (rest length 0), nothing else:

        H = (p1^2 + p2^2) / 2 + k (q1 - q2)^2 / 2.

    Separable (``grad_T = p``, ``grad_V = k (q1 - q2) (1, -1)``). H depends on positions only
    through ``q1 - q2``, so it is invariant under a common shift of both masses and (Noether)
    the total momentum ``P = p1 + p2`` is conserved. Exact solution: the centre of mass
    ``Q = (q1 + q2)/2`` moves uniformly, ``Q(t) = Q0 + P t / 2``; the separation ``x = q1 - q2``
    oscillates, ``x'' = -2 k x``, with angular frequency ``omega = sqrt(2 k)`` (period
    ``2 pi / sqrt(2 k)``).

    Sampling (:meth:`sample`): the energy H uniform in ``energy_range`` (default ``(0.1, 1.0)``),
    the centre of mass uniform in ``com_range`` (default ``(-1, 1)``), the total momentum P
    uniform in ``momentum_range`` (default ``(-0.5, 0.5)``) restricted to ``P^2/4 <= H``, and the
    rest, ``H - P^2/4 = k x^2/2 + (p1 - p2)^2/4``, in the separation at a uniformly random phase.
    """

    name = "two-body-spring"
    n_dof = 2
    has_lagrangian = True
    has_exact_solution = True
    PARAMS = {"k": 1.0}
    ENERGY_RANGE = (0.1, 1.0)
    Q_BOX = 2.0

    def _validate(self) -> None:
        if self.k <= 0:
            raise SymplearnError(f"k of {self.name} must be > 0, got k={self.k:g}")

    @property
    def omega(self) -> float:
        """Angular frequency ``sqrt(2 k)`` of the separation."""
        return math.sqrt(2.0 * self.k)

    @property
    def period(self) -> float:
        """Period ``2 pi / sqrt(2 k)`` of the separation."""
        return 2.0 * math.pi / self.omega

    def hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        x = q[..., 0] - q[..., 1]
        return 0.5 * (p**2).sum(-1) + 0.5 * self.k * x**2

    def vector_field(self, t, z: Tensor) -> Tensor:
        q, p = split(z)
        return join(p, -self.grad_V(q))

    def grad_T(self, p: Tensor) -> Tensor:
        return p

    def grad_V(self, q: Tensor) -> Tensor:
        f = self.k * (q[..., :1] - q[..., 1:])
        return torch.cat([f, -f], -1)

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        x = q[..., 0] - q[..., 1]
        return 0.5 * (qdot**2).sum(-1) - 0.5 * self.k * x**2

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        return -self.grad_V(q)

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        return qdot.clone()

    def velocities(self, q: Tensor, p: Tensor) -> Tensor:
        return p.clone()

    def conserved_quantities(self, z: Tensor) -> dict[str, Tensor]:
        """Energy ``(...)`` and total momentum ``p1 + p2`` ``(...)``."""
        return {"energy": self.hamiltonian(z), "total_momentum": z[..., 2] + z[..., 3]}

    def exact_solution(self, z0: Tensor, t: Tensor) -> Tensor:
        """Exact flow. Args: z0: ``(..., 4)``, t: ``(T,)``. Returns ``(T, ..., 4)``."""
        w = self.omega
        tt = torch.as_tensor(t).to(z0).reshape(-1, *([1] * (z0.ndim - 1)))
        q1, q2, p1, p2 = z0.unbind(-1)
        Q0, P = 0.5 * (q1 + q2), p1 + p2
        x0, v0 = q1 - q2, p1 - p2  # separation and its rate
        c, s = torch.cos(w * tt), torch.sin(w * tt)
        Q = Q0 + 0.5 * P * tt
        x = x0 * c + (v0 / w) * s
        v = v0 * c - w * x0 * s
        Pt = P.expand_as(x)
        return torch.stack([Q + 0.5 * x, Q - 0.5 * x, 0.5 * (Pt + v), 0.5 * (Pt - v)], -1)

    def sample(
        self,
        n: int,
        *,
        energy_range: tuple[float, float] | None = None,
        com_range: tuple[float, float] = (-1.0, 1.0),
        momentum_range: tuple[float, float] = (-0.5, 0.5),
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """Sample ``n`` states (see the class docstring for the distribution).

        Args:
            n: number of states.
            energy_range: ``(low, high)``, ``0 <= low <= high``, of H; ``None`` uses
                ``ENERGY_RANGE``.
            com_range: ``(low, high)`` of the centre of mass ``(q1 + q2)/2``.
            momentum_range: ``(low, high)`` of the total momentum ``p1 + p2``.
            seed: seed of the private random generator.
            dtype: dtype of the result.

        Returns:
            ``(n, 4)`` states ``(q1, q2, p1, p2)``.

        Raises:
            SymplearnError: ``n`` not a positive integer, a negative or reversed energy range,
                a reversed or non-finite range, a momentum range that no state of the energy
                range reaches (``P^2/4 <= H``), an invalid seed.
        """
        n = check_int("the number of states", n)
        lo, hi = self._energy_range(energy_range)
        if lo < 0:
            raise SymplearnError(f"{self.name}: energies are >= 0, got energy_range {(lo, hi)}")
        ranges = {}
        for name, rng in (("com_range", com_range), ("momentum_range", momentum_range)):
            try:
                a, b = (float(x) for x in rng)
            except (TypeError, ValueError):
                raise SymplearnError(f"{name} must be a pair (low, high) of numbers, got {rng!r}") from None
            if not (math.isfinite(a) and math.isfinite(b) and a <= b):
                raise SymplearnError(f"{name} must be (low, high) with low <= high, finite; got {(a, b)}")
            ranges[name] = (a, b)
        (c_lo, c_hi), (m_lo, m_hi) = ranges["com_range"], ranges["momentum_range"]
        gen = seeded_generator(seed)
        u = torch.rand(4, n, generator=gen, dtype=torch.float64)
        energy = lo + (hi - lo) * u[0]
        p_max = 2.0 * torch.sqrt(energy)  # P^2 / 4 <= H
        p_lo, p_hi = torch.clamp(p_max.neg(), min=m_lo), torch.clamp(p_max, max=m_hi)
        if bool((p_lo > p_hi).any()):
            raise SymplearnError(
                f"{self.name}: momentum_range {(m_lo, m_hi)} is out of reach of energies in {(lo, hi)} "
                f"(the total momentum P has P^2/4 <= H); widen one of them"
            )
        P = p_lo + (p_hi - p_lo) * u[3]
        e_rel = torch.clamp(energy - 0.25 * P**2, min=0.0)
        phase = 2.0 * math.pi * u[1]
        amp = torch.sqrt(2.0 * e_rel / self.k)  # k x^2 / 2 = e_rel at the turning point
        x = amp * torch.cos(phase)
        v = -self.omega * amp * torch.sin(phase)  # x' = p1 - p2
        Q = c_lo + (c_hi - c_lo) * u[2]
        z = torch.stack([Q + 0.5 * x, Q - 0.5 * x, 0.5 * (P + v), 0.5 * (P - v)], -1)
        return z.to(dtype)
