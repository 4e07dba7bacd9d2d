r"""Exact samples of the microcanonical measure: the Liouville measure restricted to an energy
shell ``H = E``, for Hamiltonians with a kinetic energy quadratic in p,

    H(q, p) = p^T M(q)^{-1} p / 2 + V(q),

with a position-dependent, symmetric positive-definite mass matrix ``M(q)`` (the double
pendulum; constant M for the pendulum and Henon-Heiles).

Derivation
----------
The microcanonical measure is ``mu_E(dq dp) = delta(H(q, p) - E) dq dp / Omega(E)``: the
Liouville volume between the shells ``E`` and ``E + dE``, divided by ``dE``. Equivalently the
surface measure on the shell weighted by ``1 / |grad H|``. It is invariant under the flow
(Liouville's theorem plus energy conservation), and it is what the long-time averages of an
ergodic trajectory sample.

Fix q and write ``M(q) = L L^T`` (Cholesky) and ``p = L w``. Then ``dp = det L dw =
sqrt(det M) dw`` and ``p^T M^{-1} p = |w|^2``, so the kinetic energy is ``|w|^2 / 2``. In polar
coordinates ``w = r u`` (``r >= 0``, ``u`` on the unit sphere ``S^{n-1}``, ``dw = r^{n-1} dr
dsigma(u)``)

    int delta(|w|^2/2 + V - E) dw = int r^{n-1} delta(r^2/2 - (E - V)) dr dsigma(u)
                                  = r_E^{n-2} int dsigma(u),        r_E = sqrt(2 (E - V)),

because ``delta(r^2/2 - c) = delta(r - sqrt(2c)) / sqrt(2c)`` for ``r >= 0``. Hence

* the **q-marginal** is ``rho(q) ∝ sqrt(det M(q)) (E - V(q))^{(n-2)/2}`` on ``V(q) < E``;
  for ``n = 2`` it is ``∝ sqrt(det M(q))``, independent of ``E - V`` (only the support depends
  on E); for ``n = 1`` it is ``∝ sqrt(M(q)) / sqrt(E - V(q))`` (the time a swing spends near
  q, ``1 / |q_dot|``);
* **given q**, u is uniform on the unit sphere and ``p = sqrt(2 (E - V(q))) L(q) u``. No extra
  Jacobian appears: the factors ``sqrt(det M)`` and ``r_E^{n-2}`` are constant on the ellipsoid
  ``p^T M^{-1} p = 2 (E - V)`` at fixed q (the delta function's ``1/|grad_p H|`` is exactly what
  turns the ellipsoid's non-uniform surface measure into the uniform measure in u).

Sampling: for ``n >= 2`` the weight is bounded, and q is drawn by rejection from the box
``[-Q_BOX, Q_BOX]^n`` (restricted to the system's admissible region, e.g. the bounded well of
Henon-Heiles) with acceptance ``rho(q) / rho_max``. For ``n = 1`` the weight is unbounded at the
turning points, so each allowed interval ``[a, b]`` is parametrised by ``q = c + h sin(phi)``
(``c = (a + b)/2``, ``h = (b - a)/2``, ``phi`` in ``(-pi/2, pi/2)``): the Jacobian ``h cos(phi)``
cancels the inverse square root at simple turning points, and the weight in phi is bounded.
``rho_max`` is the largest weight over a large batch of proposals times a safety factor; a
later proposal above it raises the bound and restarts the draw, so the samples are exact.

Only ``hamiltonian`` is needed: ``V(q) = H(q, 0)`` and ``M(q)^{-1}`` by polarisation of the
quadratic form ``T(q, p) = H(q, p) - H(q, 0)`` (checked to be quadratic).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import Tensor

from .._errors import SymplearnError
from .base import seeded_generator

__all__ = ["microcanonical_sample", "microcanonical_density"]

#: proposals per batch of the rejection sampler
_BATCH = 65536
#: the bound on the weight is the largest of a first batch times this
_SAFETY = 1.5


def _parts(system: Any, q: Tensor) -> tuple[Tensor, Tensor]:
    """``V(q) (m,)`` and ``M(q)^{-1} (m, n, n)`` from the Hamiltonian alone (polarisation)."""
    m, n = q.shape
    zero = torch.zeros_like(q)
    V = system.hamiltonian(torch.cat([q, zero], -1))
    eye = torch.eye(n, dtype=q.dtype)
    # T(e_i) for the unit vectors and T(e_i + e_j) for the pairs
    Ti = torch.stack([system.hamiltonian(torch.cat([q, eye[i].expand(m, n)], -1)) - V for i in range(n)], -1)
    Minv = torch.zeros(m, n, n, dtype=q.dtype)
    for i in range(n):
        Minv[:, i, i] = 2.0 * Ti[:, i]
        for j in range(i + 1, n):
            Tij = system.hamiltonian(torch.cat([q, (eye[i] + eye[j]).expand(m, n)], -1)) - V
            Minv[:, i, j] = Minv[:, j, i] = Tij - Ti[:, i] - Ti[:, j]
    return V, Minv


def _check_quadratic(system: Any, gen: torch.Generator) -> None:
    n = system.n_dof
    q = system.Q_BOX * (2 * torch.rand(64, n, generator=gen, dtype=torch.float64) - 1)
    p = torch.randn(64, n, generator=gen, dtype=torch.float64)
    V, Minv = _parts(system, q)
    T = system.hamiltonian(torch.cat([q, p], -1)) - V
    T_quad = 0.5 * torch.einsum("bi,bij,bj->b", p, Minv, p)
    scale = 1.0 + T.abs() + V.abs()
    if not bool(((T - T_quad).abs() <= 1e-9 * scale).all()):
        raise SymplearnError(
            f"microcanonical_sample needs H = p^T M(q)^-1 p / 2 + V(q) (kinetic energy quadratic in p); "
            f"{getattr(system, 'name', type(system).__name__)} is not of this form"
        )
    if not bool((torch.linalg.eigvalsh(Minv) > 0).all()):
        raise SymplearnError("microcanonical_sample: the kinetic energy is not positive definite in p")


def microcanonical_density(system: Any, q: Tensor, energy: float) -> Tensor:
    """Unnormalised q-marginal ``sqrt(det M(q)) (E - V(q))^{(n-2)/2}`` (0 where ``V >= E`` or
    outside the system's admissible region).

    Args:
        system: a system with ``hamiltonian``, ``n_dof`` (kinetic energy quadratic in p).
        q: ``(m, n)`` positions (float64).
        energy: the shell ``E`` (in the system's energy convention).

    Returns:
        ``(m,)`` weights.
    """
    n = q.shape[-1]
    V, Minv = _parts(system, q)
    ok = (V < energy) & system._admissible(q)
    gap = torch.where(ok, energy - V, torch.ones_like(V))
    w = torch.linalg.det(Minv).rsqrt() * gap ** ((n - 2) / 2.0)
    return torch.where(ok, w, torch.zeros_like(w))


def _momenta(system: Any, q: Tensor, energy: float, gen: torch.Generator) -> Tensor:
    V, Minv = _parts(system, q)
    L = torch.linalg.cholesky(torch.linalg.inv(Minv))
    u = torch.randn(q.shape, generator=gen, dtype=q.dtype)
    u = u / u.norm(dim=-1, keepdim=True)
    r = torch.sqrt(2.0 * torch.clamp(energy - V, min=0.0))
    return r[:, None] * torch.einsum("bij,bj->bi", L, u)


def _rejection(propose, weight, n: int, gen: torch.Generator, what: str) -> Tensor:
    """Exact rejection sampling of ``n`` points: ``propose(m) -> x``, ``weight(x) -> w >= 0``."""
    x = propose(_BATCH)
    w = weight(x)
    bound = _SAFETY * float(w.max())
    if not bound > 0:
        raise SymplearnError(f"microcanonical_sample: no admissible state found {what}")
    for _ in range(1000):  # restarts after a raised bound
        out, have, tries = [], 0, 0
        restart = False
        while have < n:
            x = propose(_BATCH)
            w = weight(x)
            if float(w.max()) > bound:  # the bound was too low: raise it and start again
                bound = _SAFETY * float(w.max())
                restart = True
                break
            keep = torch.rand(w.shape, generator=gen, dtype=w.dtype) * bound < w
            out.append(x[keep])
            have += int(keep.sum())
            tries += 1
            if tries > 10000:
                raise SymplearnError(f"microcanonical_sample: acceptance too low {what}")
        if not restart:
            return torch.cat(out)[:n]
    raise SymplearnError(f"microcanonical_sample: could not bound the density {what}")  # pragma: no cover


def _intervals(system: Any, energy: float) -> list[tuple[float, float, bool]]:
    """Allowed intervals ``(a, b, periodic)`` of ``V(q) < E`` in ``[-Q_BOX, Q_BOX]`` for n = 1;
    ends refined by bisection. ``periodic``: the whole box (a rotating orbit)."""
    box = float(system.Q_BOX)
    grid = torch.linspace(-box, box, 4097, dtype=torch.float64)[:, None]

    def gap(q: Tensor) -> Tensor:
        V, _ = _parts(system, q)
        return energy - V

    g = gap(grid)
    ok = (g > 0) & system._admissible(grid)
    if bool(ok.all()):
        return [(-box, box, True)]
    out = []
    idx = ok.nonzero()[:, 0].tolist()
    if not idx:
        return out
    runs, start, prev = [], idx[0], idx[0]
    for i in idx[1:]:
        if i != prev + 1:
            runs.append((start, prev))
            start = i
        prev = i
    runs.append((start, prev))

    def refine(inside: float, outside: float) -> float:
        lo, hi = inside, outside
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if float(gap(torch.tensor([[mid]], dtype=torch.float64))[0]) > 0:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    for i0, i1 in runs:
        a = float(grid[i0, 0]) if i0 == 0 else refine(float(grid[i0, 0]), float(grid[i0 - 1, 0]))
        b = float(grid[i1, 0]) if i1 == len(grid) - 1 else refine(float(grid[i1, 0]), float(grid[i1 + 1, 0]))
        out.append((a, b, False))
    return out


def microcanonical_sample(
    system: Any,
    energy: float,
    n: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    r"""Exact samples of the microcanonical (uniform Liouville) measure on the shell ``H = E``.

    See the module docstring for the derivation: q from ``rho(q) ∝ sqrt(det M(q))
    (E - V(q))^{(n-2)/2}`` on ``V(q) < E`` by rejection (for n = 1 in the turning-point
    parametrisation ``q = c + h sin(phi)``), then ``p = sqrt(2 (E - V(q))) L(q) u`` with
    ``M = L L^T`` and u uniform on the unit sphere. Every sample lies on the shell to round-off.

    Positions are drawn from the box ``[-Q_BOX, Q_BOX]^n`` of the system, restricted to its
    admissible region (the bounded well of Henon-Heiles). For angles (pendulum, double pendulum)
    this is one period, so the samples are the measure on the torus in wrapped coordinates.

    Args:
        system: a ground-truth system with ``hamiltonian`` of the form ``p^T M(q)^-1 p / 2 + V(q)``,
            ``n_dof`` and ``Q_BOX`` (e.g. ``double-pendulum``, ``pendulum``, ``henon-heiles``).
        energy: the shell ``E``, in the system's own energy convention (the double pendulum's is
            measured from the hanging rest state).
        n: number of samples.
        seed: seed of the private generator (the global torch state is untouched).
        dtype: dtype of the result (sampling is done in float64).

    Returns:
        ``(n, 2 n_dof)`` states ``(q, p)``.

    Raises:
        SymplearnError: ``n`` not a positive integer, a non-finite energy, an energy outside the
            range ``System.sample`` accepts (the same check: Henon-Heiles at or above its escape
            energy ``1 / (6 lam^2)``, where the accessible region is unbounded, or below 0), an
            energy with no admissible state (below the minimum of V), or a Hamiltonian whose
            kinetic energy is not quadratic in p.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise SymplearnError(f"n must be a positive integer (number of samples), got {n!r}")
    try:
        energy = float(energy)
    except (TypeError, ValueError):
        raise SymplearnError(f"energy must be a number, got {energy!r}") from None
    if not math.isfinite(energy):
        raise SymplearnError(f"energy must be finite, got {energy}")
    check_range = getattr(system, "_energy_range", None)
    if check_range is not None:  # the energies System.sample accepts (Henon-Heiles: below escape)
        try:
            check_range((energy, energy))
        except SymplearnError as e:
            raise SymplearnError(
                f"microcanonical_sample: the measure on the shell E = {energy:g} does not exist for "
                f"{getattr(system, 'name', type(system).__name__)} (the accessible region is not "
                f"bounded or is empty): {e}"
            ) from None
    gen = seeded_generator(seed)
    _check_quadratic(system, gen)
    d = system.n_dof
    what = f"for {getattr(system, 'name', type(system).__name__)} at energy {energy:g}"
    box = float(system.Q_BOX)
    with torch.no_grad():
        if d >= 2:

            def propose(m: int) -> Tensor:
                return box * (2 * torch.rand(m, d, generator=gen, dtype=torch.float64) - 1)

            q = _rejection(propose, lambda x: microcanonical_density(system, x, energy), n, gen, what)
        else:
            ivals = _intervals(system, energy)
            if not ivals:
                raise SymplearnError(f"microcanonical_sample: no state with V(q) < E {what}")
            if ivals[0][2]:  # rotation: the weight 1/sqrt(E - V) is bounded, sample q directly

                def propose(m: int) -> Tensor:
                    return box * (2 * torch.rand(m, 1, generator=gen, dtype=torch.float64) - 1)

                q = _rejection(propose, lambda x: microcanonical_density(system, x, energy), n, gen, what)
            else:
                c = torch.tensor([0.5 * (a + b) for a, b, _ in ivals], dtype=torch.float64)
                h = torch.tensor([0.5 * (b - a) for a, b, _ in ivals], dtype=torch.float64)

                def propose(m: int) -> Tensor:  # columns: interval index, phi
                    k = torch.randint(len(ivals), (m,), generator=gen).to(torch.float64)
                    phi = math.pi * (torch.rand(m, generator=gen, dtype=torch.float64) - 0.5)
                    return torch.stack([k, phi], -1)

                def weight(x: Tensor) -> Tensor:
                    k = x[:, 0].long()
                    qq = (c[k] + h[k] * torch.sin(x[:, 1]))[:, None]
                    V, Minv = _parts(system, qq)
                    gap = torch.clamp(energy - V, min=0.0)
                    w = h[k] * torch.cos(x[:, 1]) * Minv[:, 0, 0].rsqrt()
                    return torch.where(gap > 0, w / torch.sqrt(torch.where(gap > 0, gap, 1.0)), 0.0)

                x = _rejection(propose, weight, n, gen, what)
                k = x[:, 0].long()
                q = (c[k] + h[k] * torch.sin(x[:, 1]))[:, None]
        p = _momenta(system, q, energy, gen)
    return torch.cat([q, p], -1).to(dtype)
