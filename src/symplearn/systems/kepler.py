"""The planar Kepler problem, in Cartesian and in polar canonical coordinates.

Both classes describe the same motion (a unit-mass body around a fixed centre, potential
``-k/r``); :func:`cartesian_to_polar` and :func:`polar_to_cartesian` map states of one to states
of the other (a canonical change of variables). The exact solution of bound orbits is computed
from Kepler's equation ``E - e sin E = M``, solved by a safeguarded Newton iteration in torch
(:func:`solve_kepler`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._errors import ConvergenceError, SymplearnError
from .._validate import check_int
from ..dynamics import SeparableHamiltonian, join, split
from .base import System, seeded_generator

TWO_PI = 2.0 * math.pi


# -- Kepler's equation and the two-body flow --------------------------------------------------
def solve_kepler(M: Tensor, e: Tensor | float, *, max_iter: int = 60) -> Tensor:
    """Solve Kepler's equation ``E - e sin E = M`` for the eccentric anomaly E (elliptic orbits).

    Newton's method safeguarded by bisection on the bracket ``[M - e, M + e]`` (which always
    holds the root, since ``|E - M| = e |sin E| <= e``), after reducing M to ``[-pi, pi]``; the
    whole revolutions are added back, so E is continuous (unwrapped) in M.

    Args:
        M: mean anomalies, any shape.
        e: eccentricities in ``[0, 1)``, broadcastable to ``M``.
        max_iter: iteration limit.

    Returns:
        E with the broadcast shape of ``M`` and ``e``.

    Raises:
        SymplearnError: an eccentricity outside ``[0, 1)``.
        ConvergenceError: no convergence within ``max_iter`` iterations (not expected).
    """
    e = torch.as_tensor(e, dtype=M.dtype, device=M.device)
    if bool(((e < 0) | (e >= 1) | ~torch.isfinite(e)).any()):
        raise SymplearnError(
            f"Kepler's equation is solved here for elliptic orbits only (0 <= e < 1); got "
            f"eccentricities in [{float(e.min()):g}, {float(e.max()):g}]"
        )
    M, e = torch.broadcast_tensors(M, e)
    revs = torch.round(M / TWO_PI)
    Mr = M - TWO_PI * revs
    lo, hi = Mr - e, Mr + e
    E = torch.clamp(Mr + e * torch.sin(Mr), lo, hi)
    tol = 4.0 * torch.finfo(M.dtype).eps
    for _ in range(max_iter):
        F = E - e * torch.sin(E) - Mr
        lo = torch.where(F < 0, E, lo)
        hi = torch.where(F > 0, E, hi)
        newton = E - F / (1.0 - e * torch.cos(E))
        inside = (newton > lo) & (newton < hi)
        E_new = torch.where(inside, newton, 0.5 * (lo + hi))
        step = (E_new - E).abs()
        E = E_new
        if bool((step <= tol * (1.0 + E.abs())).all()):
            return E + TWO_PI * revs
    raise ConvergenceError(f"Kepler's equation did not converge in {max_iter} iterations")


def _kepler_flow(
    q0: Tensor, p0: Tensor, k: float, t: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Exact flow of ``H = |p|^2/2 - k/|q|`` by Lagrange's f and g functions in the eccentric
    anomaly (no orbit orientation needed, so circular orbits are fine).

    Args:
        q0, p0: ``(..., 2)``; t: ``(T,)``.

    Returns:
        ``q, p: (T, ..., 2)``, the unwrapped eccentric anomalies ``E: (T, ...)`` and ``E0: (...)``,
        and the eccentricities ``e: (...)``.
    """
    r0 = q0.norm(dim=-1)
    energy = 0.5 * (p0**2).sum(-1) - k / r0
    if bool((energy >= 0).any()):
        raise SymplearnError(
            f"the exact Kepler solution is implemented for bound (elliptic) orbits only, which "
            f"have energy < 0; got energies up to {float(energy.max()):g}"
        )
    ang = q0[..., 0] * p0[..., 1] - q0[..., 1] * p0[..., 0]
    if bool((ang == 0).any()):
        raise SymplearnError(
            "the exact Kepler solution needs nonzero angular momentum (a radial orbit falls into the centre)"
        )
    a = -k / (2.0 * energy)
    n = torch.sqrt(k / a**3)
    sqrt_ka = torch.sqrt(k * a)
    S = (q0 * p0).sum(-1) / sqrt_ka  # e sin E0
    C = 1.0 - r0 / a  # e cos E0
    e = torch.sqrt(S**2 + C**2)
    E0 = torch.atan2(S, C)
    tt = t.to(q0).reshape(-1, *([1] * (q0.ndim - 1)))
    E = solve_kepler(E0 - S + n * tt, e)
    dE = E - E0
    cd, sd = torch.cos(dE), torch.sin(dE)
    r = a * (1.0 - C * cd + S * sd)
    f = 1.0 - (a / r0) * (1.0 - cd)
    g = (S * (1.0 - cd) - C * sd + sd) / n  # = t - (dE - sin dE)/n, without cancellation
    fdot = -sqrt_ka * sd / (r * r0)
    gdot = 1.0 - (a / r) * (1.0 - cd)
    q = f[..., None] * q0 + g[..., None] * p0
    p = fdot[..., None] * q0 + gdot[..., None] * p0
    return q, p, E, E0, e


def _true_anomaly(E: Tensor, e: Tensor) -> Tensor:
    """True anomaly from the eccentric anomaly, continuous (unwrapped) in E."""
    beta = e / (1.0 + torch.sqrt(1.0 - e**2))
    return E + 2.0 * torch.atan(beta * torch.sin(E) / (1.0 - beta * torch.cos(E)))


# -- coordinate changes -----------------------------------------------------------------------
def polar_to_cartesian(z: Tensor) -> Tensor:
    """Map polar canonical states ``(r, theta, p_r, p_theta)`` to Cartesian ``(x, y, p_x, p_y)``.

    ``q = r (cos theta, sin theta)``, ``p = p_r e_r + (p_theta / r) e_theta``. The map is
    canonical (symplectic).

    Args:
        z: ``(..., 4)``.

    Returns:
        ``(..., 4)``.
    """
    r, th, pr, pth = z.unbind(-1)
    c, s = torch.cos(th), torch.sin(th)
    return torch.stack([r * c, r * s, pr * c - pth * s / r, pr * s + pth * c / r], -1)


def cartesian_to_polar(z: Tensor) -> Tensor:
    """Map Cartesian states ``(x, y, p_x, p_y)`` to polar ``(r, theta, p_r, p_theta)``.

    ``r = |q|``, ``theta = atan2(y, x)`` in ``(-pi, pi]``, ``p_r = q.p / r``,
    ``p_theta = x p_y - y p_x``. Inverse of :func:`polar_to_cartesian` up to ``2 pi`` in theta.

    Args:
        z: ``(..., 4)`` with ``q != 0``.

    Returns:
        ``(..., 4)``.
    """
    x, y, px, py = z.unbind(-1)
    r = torch.sqrt(x**2 + y**2)
    return torch.stack([r, torch.atan2(y, x), (x * px + y * py) / r, x * py - y * px], -1)


def _check_k(system: System) -> None:
    if system.k <= 0:
        raise SymplearnError(f"k of {system.name} must be > 0 (an attractive centre), got k={system.k:g}")


# -- the systems ------------------------------------------------------------------------------
class Kepler(System, SeparableHamiltonian):
    """Planar Kepler problem in Cartesian coordinates, ``q = (x, y)``, ``p = (p_x, p_y)``:

        H = |p|^2 / 2 - k / |q|,      L = |q_dot|^2 / 2 + k / |q|.

    Separable (``grad_T = p``, ``grad_V = k q / |q|^3``). Conserved: the energy, the angular
    momentum ``x p_y - y p_x`` and the Runge-Lenz vector ``A = p x L - k q / |q|``
    (``= (p_y L - k x / r, -p_x L - k y / r)`` in the plane; ``|A| = k e``, pointing to the
    periapsis). Exact solution for bound orbits (energy < 0) from Kepler's equation.

    Sampling (:meth:`sample`): bound orbits drawn by their elements, never near collision:
    energy uniform in ``energy_range`` (negative; default ``(-0.7 k, -0.3 k)``, i.e. semi-major
    axes ``a = -k / (2E)`` in ``(0.71, 1.67)``), eccentricity uniform in ``eccentricity_range``
    (default ``(0, 0.6)``), so the closest approach is ``a (1 - e) >= 0.28``; then a uniformly
    random orientation of the periapsis, sense of rotation, and mean anomaly (phase uniform in
    time along the orbit).
    """

    name = "kepler"
    n_dof = 2
    has_lagrangian = True
    has_exact_solution = True
    PARAMS = {"k": 1.0}
    ECCENTRICITY_RANGE: tuple[float, float] = (0.0, 0.6)

    def _validate(self) -> None:
        _check_k(self)

    @property
    def ENERGY_RANGE(self) -> tuple[float, float]:  # a class constant in simpler systems
        """Default sampling range ``(-0.7 k, -0.3 k)``."""
        return (-0.7 * self.k, -0.3 * self.k)

    def hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        return 0.5 * (p**2).sum(-1) - self.k / q.norm(dim=-1)

    def vector_field(self, t, z: Tensor) -> Tensor:
        q, p = split(z)
        return join(p, -self.grad_V(q))

    def grad_T(self, p: Tensor) -> Tensor:
        return p

    def grad_V(self, q: Tensor) -> Tensor:
        r = q.norm(dim=-1, keepdim=True)
        return self.k * q / r**3

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        return 0.5 * (qdot**2).sum(-1) + self.k / q.norm(dim=-1)

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        return -self.grad_V(q)

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        return qdot.clone()

    def velocities(self, q: Tensor, p: Tensor) -> Tensor:
        return p.clone()

    def conserved_quantities(self, z: Tensor) -> dict[str, Tensor]:
        """Energy ``(...)``, angular momentum ``(...)`` and Runge-Lenz vector ``(..., 2)``."""
        q, p = split(z)
        x, y = q[..., 0], q[..., 1]
        px, py = p[..., 0], p[..., 1]
        L = x * py - y * px
        r = q.norm(dim=-1)
        A = torch.stack([py * L - self.k * x / r, -px * L - self.k * y / r], -1)
        return {"energy": self.hamiltonian(z), "angular_momentum": L, "runge_lenz": A}

    def exact_solution(self, z0: Tensor, t: Tensor) -> Tensor:
        """Exact flow of bound orbits. Args: z0: ``(..., 4)``, t: ``(T,)``. Returns ``(T, ..., 4)``.

        Raises:
            SymplearnError: an orbit with energy >= 0 or zero angular momentum.
        """
        q0, p0 = split(z0)
        q, p, *_ = _kepler_flow(q0, p0, self.k, torch.as_tensor(t))
        return join(q, p)

    def sample(
        self,
        n: int,
        *,
        energy_range: tuple[float, float] | None = None,
        eccentricity_range: tuple[float, float] | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """Sample ``n`` states on bound orbits (see the class docstring for the distribution).

        Args:
            n: number of states.
            energy_range: ``(low, high)`` with ``high < 0``; ``None`` uses ``ENERGY_RANGE``.
            eccentricity_range: ``(low, high)`` within ``[0, 1)``; ``None`` uses
                ``ECCENTRICITY_RANGE``.
            seed: seed of the private random generator.
            dtype: dtype of the result.

        Returns:
            ``(n, 4)`` Cartesian states ``(x, y, p_x, p_y)``.

        Raises:
            SymplearnError: invalid ranges (non-negative energies, eccentricities outside [0, 1)),
                ``n`` not a positive integer, or an invalid seed.
        """
        n = check_int("the number of states", n)
        lo, hi = self._energy_range(energy_range)
        if hi >= 0:
            raise SymplearnError(
                f"{self.name} samples bound orbits, which need energies < 0; got energy_range "
                f"{(lo, hi)} (try e.g. {self.ENERGY_RANGE})"
            )
        erng = eccentricity_range if eccentricity_range is not None else self.ECCENTRICITY_RANGE
        try:
            e_lo, e_hi = (float(x) for x in erng)
        except (TypeError, ValueError):
            raise SymplearnError(
                f"eccentricity_range must be a pair (low, high) of numbers, got {erng!r}"
            ) from None
        if not (0.0 <= e_lo <= e_hi < 1.0):
            raise SymplearnError(
                f"eccentricity_range must satisfy 0 <= low <= high < 1 (elliptic orbits), got {(e_lo, e_hi)}"
            )
        gen = seeded_generator(seed)
        u = torch.rand(5, n, generator=gen, dtype=torch.float64)
        energy = lo + (hi - lo) * u[0]
        e = e_lo + (e_hi - e_lo) * u[1]
        omega = TWO_PI * u[2]
        M = TWO_PI * u[3]
        sense = torch.where(u[4] < 0.5, -1.0, 1.0).to(torch.float64)
        a = -self.k / (2.0 * energy)
        b = a * torch.sqrt(1.0 - e**2)
        nn = torch.sqrt(self.k / a**3)
        E = solve_kepler(M, e)
        cE, sE = torch.cos(E), torch.sin(E)
        denom = 1.0 - e * cE
        x, y = a * (cE - e), sense * b * sE
        vx, vy = -a * nn * sE / denom, sense * b * nn * cE / denom
        co, so = torch.cos(omega), torch.sin(omega)
        z = torch.stack([co * x - so * y, so * x + co * y, co * vx - so * vy, so * vx + co * vy], -1)
        return z.to(dtype)


class KeplerPolar(System):
    """Planar Kepler problem in polar canonical coordinates ``z = (r, theta, p_r, p_theta)``:

        H = (p_r^2 + p_theta^2 / r^2) / 2 - k / r,
        L = (r_dot^2 + r^2 theta_dot^2) / 2 + k / r.

    The kinetic energy depends on r, so H is **not separable** in this (q, p) split: use an
    implicit integrator. Conserved: the energy and the angular momentum ``p_theta`` (theta is
    cyclic), and the Runge-Lenz vector (computed in the Cartesian frame). theta is not wrapped:
    it grows continuously along the motion, also in the exact solution.

    Sampling: the Cartesian sampler of :class:`Kepler` (same distribution, same seeds), mapped
    by :func:`cartesian_to_polar` (so theta is in ``(-pi, pi]``).
    """

    name = "kepler-polar"
    n_dof = 2
    has_lagrangian = True
    has_exact_solution = True
    PARAMS = {"k": 1.0}
    ECCENTRICITY_RANGE = Kepler.ECCENTRICITY_RANGE

    def _validate(self) -> None:
        _check_k(self)

    @property
    def ENERGY_RANGE(self) -> tuple[float, float]:  # a class constant in simpler systems
        """Default sampling range ``(-0.7 k, -0.3 k)``."""
        return (-0.7 * self.k, -0.3 * self.k)

    def hamiltonian(self, z: Tensor) -> Tensor:
        r, _, pr, pth = z.unbind(-1)
        return 0.5 * (pr**2 + pth**2 / r**2) - self.k / r

    def vector_field(self, t, z: Tensor) -> Tensor:
        r, _, pr, pth = z.unbind(-1)
        return torch.stack([pr, pth / r**2, pth**2 / r**3 - self.k / r**2, torch.zeros_like(pth)], -1)

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        r = q[..., 0]
        rd, thd = qdot[..., 0], qdot[..., 1]
        return 0.5 * (rd**2 + r**2 * thd**2) + self.k / r

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        """``(p_r, p_theta) = (r_dot, r^2 theta_dot)``. Args: ``(..., 2)``. Returns ``(..., 2)``."""
        r = q[..., 0]
        return torch.stack([qdot[..., 0], r**2 * qdot[..., 1]], -1)

    def velocities(self, q: Tensor, p: Tensor) -> Tensor:
        """``(r_dot, theta_dot) = (p_r, p_theta / r^2)``. Args: ``(..., 2)``. Returns ``(..., 2)``."""
        r = q[..., 0]
        return torch.stack([p[..., 0], p[..., 1] / r**2], -1)

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        """``r_ddot = r theta_dot^2 - k / r^2``, ``theta_ddot = -2 r_dot theta_dot / r``."""
        r = q[..., 0]
        rd, thd = qdot[..., 0], qdot[..., 1]
        return torch.stack([r * thd**2 - self.k / r**2, -2.0 * rd * thd / r], -1)

    def conserved_quantities(self, z: Tensor) -> dict[str, Tensor]:
        """Energy ``(...)``, angular momentum ``p_theta`` ``(...)``, Runge-Lenz ``(..., 2)``."""
        out = Kepler(k=self.k).conserved_quantities(polar_to_cartesian(z))
        out["energy"] = self.hamiltonian(z)
        out["angular_momentum"] = z[..., 3].clone()
        return out

    def exact_solution(self, z0: Tensor, t: Tensor) -> Tensor:
        """Exact flow of bound orbits, theta unwrapped. Args: z0: ``(..., 4)``, t: ``(T,)``.

        Returns:
            ``(T, ..., 4)``.

        Raises:
            SymplearnError: an orbit with energy >= 0 or zero angular momentum.
        """
        q0, p0 = split(polar_to_cartesian(z0))
        q, p, E, E0, e = _kepler_flow(q0, p0, self.k, torch.as_tensor(t))
        zc = cartesian_to_polar(join(q, p))
        sense = torch.sign(z0[..., 3])
        theta = z0[..., 1] + sense * (_true_anomaly(E, e) - _true_anomaly(E0, e))
        return torch.stack([zc[..., 0], theta, zc[..., 2], zc[..., 3]], -1)

    def sample(
        self,
        n: int,
        *,
        energy_range: tuple[float, float] | None = None,
        eccentricity_range: tuple[float, float] | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """Sample ``n`` polar states on bound orbits: :meth:`Kepler.sample`, mapped to polar.

        Returns:
            ``(n, 4)`` states ``(r, theta, p_r, p_theta)``.
        """
        zc = Kepler(k=self.k).sample(
            n, energy_range=energy_range, eccentricity_range=eccentricity_range, seed=seed
        )
        return cartesian_to_polar(zc).to(dtype)
