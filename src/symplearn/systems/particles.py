r"""Particles in a periodic cubic box with a pair potential; the Lennard-Jones fluid.

State ``z = (q, p)`` of shape ``(..., 6N)``: ``q = z[..., :3N]`` holds the positions
``(x_1, y_1, z_1, x_2, ...)`` and ``p`` the momenta in the same order (``n_dof = 3N``). Positions
are never wrapped by the dynamics (so they stay unwrapped, as mean squared displacements need);
every distance uses the minimum-image convention in the box ``[0, L)^3``, so wrapped and unwrapped
positions give the same forces.

.. math::

    H(q, p) = \sum_i \frac{|p_i|^2}{2 m_i} + \sum_{i<j} u(|q_i - q_j|_{\mathrm{min\,image}})

Reduced (Lennard-Jones) units: lengths in sigma, energies in epsilon, masses in m, time in
``tau = sigma sqrt(m / epsilon)``, temperature in ``epsilon / k_B`` (``k_B = 1``).

Pairs are found either by all-pairs minimum image (small N) or by a Verlet neighbour list of
radius ``cutoff + skin`` built by the ``vesin`` library and rebuilt when some particle has moved
more than ``skin / 2`` (minimum image of the move, so a position wrapped back into the box counts
as the small move it is). ``neighbor="auto"`` chooses (see :data:`AUTO_MIN_SKIN`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor

from .._errors import SymplearnError, check_names, lookup
from ..dynamics import SeparableHamiltonian
from .base import System, seeded_generator

#: cutoff treatments of :class:`LennardJonesPair`
CUTOFF_TREATMENTS = ("truncated", "shifted", "switched")

#: ``neighbor="auto"`` uses the vesin neighbour list whenever the box leaves a skin of at least
#: this (``L/2 - cutoff >= AUTO_MIN_SKIN``; the list needs ``cutoff + skin <= L/2`` for unique
#: minimum images), all-pairs otherwise. Measured on the 2-core development machine (float64, one
#: torch thread, rc = 2.5, one force evaluation incl. the displacement check): the list is faster
#: already at N = 32 (density 0.2) and 108 (density 0.8442), and 5x faster at N = 256 (see docs/md.md).
AUTO_MIN_SKIN = 0.1
#: inductor options of the ``compile=True`` pair kernel: its C++ loops run on one thread, so that
#: the scatter of pair forces adds in pair order (with more threads inductor splits the loop and
#: adds with atomics, in an order that changes from call to call: 4-10 different force arrays in
#: 10 calls at N = 4000 on 2 threads, measured)
_SERIAL_CPP = {"cpp.threads": 1}


# ------------------------------------------------------------------------------------------
# pair potentials
# ------------------------------------------------------------------------------------------
class PairPotential:
    """A radial pair potential ``u(r)`` that is zero from ``cutoff`` on.

    Subclasses set ``cutoff`` and implement :meth:`energy_force` on squared distances (no square
    roots needed for Lennard-Jones).
    """

    cutoff: float

    def energy_force(self, r2: Tensor) -> tuple[Tensor, Tensor]:
        """Pair energies and forces from squared distances.

        Args:
            r2: squared pair distances ``(...)`` (all > 0).

        Returns:
            ``(u, f_over_r)``, each ``(...)``: ``u(r)`` and ``-u'(r) / r`` (so the force on
            particle i from j is ``f_over_r * (q_i - q_j)``); both zero from the cutoff on.
        """
        raise NotImplementedError

    def force(self, r2: Tensor) -> Tensor:
        """``-u'(r) / r`` only (what the dynamics needs). Args: r2: ``(...)``. Returns ``(...)``."""
        return self.energy_force(r2)[1]

    def energy(self, r: Tensor) -> Tensor:
        """``u(r)`` at distances ``r: (...)``; returns ``(...)``."""
        return self.energy_force(r * r)[0]

    def tail_corrections(self, density: float) -> tuple[float, float]:
        """Long-range corrections ``(energy per particle, pressure)`` for the part beyond the
        cutoff of the untruncated potential (zero unless a subclass knows them)."""
        return 0.0, 0.0


class LennardJonesPair(PairPotential):
    r"""Lennard-Jones ``u(r) = 4 epsilon ((sigma/r)^12 - (sigma/r)^6)`` with a declared cutoff.

    Cutoff treatments (``rc = cutoff``):

    * ``"truncated"``: ``u`` for ``r < rc``, 0 beyond (LAMMPS ``lj/cut``; energy jumps at rc).
    * ``"shifted"``: ``u(r) - u(rc)`` for ``r < rc`` (energy continuous, force jumps at rc; the
      default of ASE's ``LennardJones``).
    * ``"switched"``: ``u(r) S(r)`` with jax-md's ``multiplicative_isotropic_cutoff``:
      ``S = 1`` for ``r < r_onset``,
      ``S = (rc^2 - r^2)^2 (rc^2 + 2 r^2 - 3 r_on^2) / (rc^2 - r_on^2)^3`` up to rc, 0 beyond.
      Energy and force are continuous (``S`` and ``S'`` vanish at rc).

    Args:
        sigma, epsilon: length and energy scales (> 0).
        cutoff: ``rc`` (> 2^(1/6) sigma, so the minimum is kept).
        treatment: one of :data:`CUTOFF_TREATMENTS`.
        r_onset: start of the switch (``"switched"`` only); default ``cutoff - 0.5 sigma``
            (jax-md's ``lennard_jones_pair`` uses 2.0 with ``rc = 2.5`` in units of sigma).

    Raises:
        SymplearnError: non-positive or non-finite parameters, an unknown treatment, an onset
            outside ``(0, cutoff)``.
    """

    def __init__(
        self,
        sigma: float = 1.0,
        epsilon: float = 1.0,
        cutoff: float = 2.5,
        treatment: str = "shifted",
        r_onset: float | None = None,
    ):
        for name, v in (("sigma", sigma), ("epsilon", epsilon), ("cutoff", cutoff)):
            if not (isinstance(v, numbers.Real) and math.isfinite(v) and v > 0):
                raise SymplearnError(f"Lennard-Jones {name} must be a positive number, got {v!r}")
        if treatment not in CUTOFF_TREATMENTS:
            lookup(treatment, {t: t for t in CUTOFF_TREATMENTS}, "cutoff treatment")
        if cutoff <= 2 ** (1 / 6) * sigma:
            raise SymplearnError(
                f"cutoff {cutoff:g} must exceed the potential minimum 2^(1/6) sigma = "
                f"{2 ** (1 / 6) * sigma:.4g} (usual values: 2.5 sigma or 3 sigma)"
            )
        self.sigma, self.epsilon, self.cutoff = float(sigma), float(epsilon), float(cutoff)
        self.treatment = treatment
        if r_onset is None:
            r_onset = cutoff - 0.5 * sigma
        if not (0 < r_onset < cutoff):
            raise SymplearnError(f"r_onset must lie in (0, cutoff={cutoff:g}), got {r_onset!r}")
        self.r_onset = float(r_onset)
        self._shift = self._raw(cutoff**2)[0] if treatment == "shifted" else 0.0

    def __repr__(self) -> str:
        extra = f", r_onset={self.r_onset:g}" if self.treatment == "switched" else ""
        return (
            f"LennardJonesPair(sigma={self.sigma:g}, epsilon={self.epsilon:g}, cutoff={self.cutoff:g}, "
            f"treatment={self.treatment!r}{extra})"
        )

    def _raw(self, r2):
        s2 = self.sigma**2 / r2
        s6 = s2 * s2 * s2
        s12 = s6 * s6
        u = 4.0 * self.epsilon * (s12 - s6)
        f_over_r = 24.0 * self.epsilon * (2.0 * s12 - s6) / r2
        return u, f_over_r

    def energy_force(self, r2: Tensor) -> tuple[Tensor, Tensor]:
        """See :meth:`PairPotential.energy_force`. ``r2: (...)`` -> ``(u, f_over_r)``, each ``(...)``."""
        rc2 = self.cutoff**2
        inside = r2 < rc2
        r2s = torch.where(inside, r2, torch.full_like(r2, rc2))  # no overflow outside
        u, f = self._raw(r2s)
        if self.treatment == "shifted":
            u = u - self._shift
        elif self.treatment == "switched":
            ro2 = self.r_onset**2
            x = torch.clamp(r2s, min=ro2)
            denom = (rc2 - ro2) ** 3
            s = (rc2 - x) ** 2 * (rc2 + 2.0 * x - 3.0 * ro2) / denom
            # dS/dr = dS/d(r^2) * 2r;  -(u S)'/r = f S - u * 2 dS/d(r^2)
            ds_dr2 = (-2.0 * (rc2 - x) * (rc2 + 2.0 * x - 3.0 * ro2) + 2.0 * (rc2 - x) ** 2) / denom
            ds_dr2 = torch.where(r2s > ro2, ds_dr2, torch.zeros_like(ds_dr2))
            f = f * s - 2.0 * u * ds_dr2
            u = u * s
        zero = torch.zeros_like(u)
        return torch.where(inside, u, zero), torch.where(inside, f, zero)

    def force(self, r2: Tensor) -> Tensor:
        """``-u'(r) / r``, zero from the cutoff on (fewer operations than :meth:`energy_force`
        for the truncated and shifted potentials, whose forces are the same)."""
        if self.treatment == "switched":
            return self.energy_force(r2)[1]
        inv = (r2 < self.cutoff**2).to(r2.dtype) / r2  # 1/r^2 inside, 0 outside (r2 > 0)
        s6 = (self.sigma**6) * inv * inv * inv
        return s6 * (48.0 * self.epsilon * s6 - 24.0 * self.epsilon) * inv

    def tail_corrections(self, density: float) -> tuple[float, float]:
        """Standard long-range corrections of the truncated potential (Allen & Tildesley, eq. 2.144):
        ``U/N = (8/3) pi rho eps sigma^3 [ (1/3)(sigma/rc)^9 - (sigma/rc)^3 ]``,
        ``P = (16/3) pi rho^2 eps sigma^3 [ (2/3)(sigma/rc)^9 - (sigma/rc)^3 ]``.

        Args:
            density: number density ``N / V``.

        Returns:
            ``(energy per particle, pressure)`` to add to the truncated-potential values.
        """
        sr3 = (self.sigma / self.cutoff) ** 3
        sr9 = sr3**3
        e = 8.0 / 3.0 * math.pi * density * self.epsilon * self.sigma**3 * (sr9 / 3.0 - sr3)
        p = 16.0 / 3.0 * math.pi * density**2 * self.epsilon * self.sigma**3 * (2.0 * sr9 / 3.0 - sr3)
        return e, p


# ------------------------------------------------------------------------------------------
# the particle system
# ------------------------------------------------------------------------------------------
class _NeighborList:
    """Half Verlet list over a batch of B replicas (global particle indices ``b * N + i``)."""

    def __init__(self, radius: float, skin: float, images: bool = True):
        """``radius = cutoff + skin``; ``images``: also keep each pair's periodic image
        (:meth:`shift`), for the eager stepping path; without them a caller takes the minimum image
        of each separation (the same numbers for every pair within the cutoff, see :meth:`shift`)."""
        import vesin

        self.radius, self.skin, self.images = radius, skin, images
        self._vesin = vesin.NeighborList(cutoff=radius, full_list=False)
        self.ref = None
        self.builds = 0
        self._shifts: dict = {}
        self._derived: dict = {}

    def __getstate__(self) -> dict:
        """A copy (``copy.deepcopy``) leaves out vesin's calculator, which holds C
        pointers, and the built list: it makes its own and builds on first use."""
        state = dict(self.__dict__, _vesin=None, ref=None, _shifts={}, _derived={})
        for name in ("i", "j", "_S"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        import vesin

        self.__dict__.update(state)
        self._vesin = vesin.NeighborList(cutoff=self.radius, full_list=False)

    def update(self, x: Tensor, box: float) -> Tensor:
        """Rebuild if needed for positions ``x: (B, N, 3)``; return ``x`` moved by whole boxes to the
        periodic image of the list's reference positions (``(B, N, 3)``, x's dtype, differentiable
        in x), on which :meth:`shift` gives every listed pair's minimum image.

        The pairs do not depend on the dtype: a call in another precision (a float64 energy check
        of a float32 run) is compared in the list's own precision, not answered by a rebuild."""
        if self.ref is not None and self.ref.shape == x.shape and self.ref.device == x.device:
            d = x.detach().to(self.ref.dtype) - self.ref
            k = torch.round(d * (1.0 / box))
            d = d - box * k
            if float((d * d).sum(-1).max()) <= (0.5 * self.skin) ** 2:
                return x if not bool(k.any()) else x - box * k.to(x.dtype)
        self.build(x, box)
        return x

    def shift(self, box: float, dtype: torch.dtype) -> Tensor:
        """``L * image_ij`` of every listed pair at the reference positions, component-major
        ``(3P,)``: ``x_i - x_j - shift`` is the minimum-image separation for positions aligned by
        :meth:`update` (they moved less than ``skin / 2`` since, and ``cutoff + skin <= L / 2``).

        For a pair within the cutoff this image is the nearest one, so ``d - L round(d / L)`` of
        the aligned separation d gives the same numbers bit for bit (``L * image`` is then the
        same product); the two can differ only for a listed pair beyond the cutoff."""
        if not self.images:
            raise RuntimeError("this neighbour list keeps no images (images=False)")
        s = self._shifts.get(dtype)
        if s is None:
            s = self._shifts[dtype] = (box * self.image).to(dtype)
        return s

    def build(self, x: Tensor, box: float) -> None:
        """Build the list at positions ``x: (B, N, 3)``: vesin takes the unwrapped positions and
        returns the pairs ``i, j`` ``(P,)`` (global indices ``b N + i``) and, with ``images``, each
        pair's cell shift S with ``x_j - x_i + L S`` the minimum image (:meth:`shift`).

        What follows vesin is kept to a few passes over the pairs (a build at N = 32000 is 1.25 M
        pairs, and vesin's search alone is a third of a compiled MD step's time there): vesin's
        arrays are read in place, and the component-major gather indices ``i3, j3`` ``(3P,)``,
        ``pair_batch`` ``(P,)`` and the images are made on first use after a build, in one pass
        each (the compiled stepping path uses only ``i, j``)."""
        B, N, _ = x.shape
        xd = x.detach()
        pts = xd.to(torch.float64).cpu().numpy()
        cell = np.eye(3) * box
        quantities = "ijS" if self.images else "ij"
        ii, jj, ss = [], [], []
        for b in range(B):
            # copy=False: views of vesin's buffers, valid until its next compute (the next
            # build, which replaces everything derived from them)
            out = self._vesin.compute(
                points=pts[b], box=cell, periodic=True, quantities=quantities, copy=False
            )
            i, j = _int64(out[0]), _int64(out[1])
            S = torch.from_numpy(out[2]) if self.images else None
            if B > 1:  # the next replica's compute overwrites the views: new tensors now
                i, j = i + b * N, j + b * N
                S = None if S is None else S.clone()
            ii.append(i)
            jj.append(j)
            ss.append(S)
        self.i = (ii[0] if B == 1 else torch.cat(ii)).to(x.device)
        self.j = (jj[0] if B == 1 else torch.cat(jj)).to(x.device)
        self._S = ss[0] if B == 1 else (None if ss[0] is None else torch.cat(ss))  # (P, 3) int32
        self.n_per_replica, self.n_total = N, B * N
        self.ref = xd.clone()
        self._shifts = {}
        self._derived = {}
        self.builds += 1

    @property
    def i3(self) -> Tensor:
        """Gather indices of the i side into component-major positions ``(3P,)``."""
        return self._ij3()[0]

    @property
    def j3(self) -> Tensor:
        """Gather indices of the j side into component-major positions ``(3P,)``."""
        return self._ij3()[1]

    def _ij3(self) -> tuple[Tensor, Tensor]:
        c = self._derived.get("ij3")
        if c is None:
            c = self._derived["ij3"] = _component_indices(self.i, self.j, self.n_total)
        return c

    @property
    def ij64(self) -> tuple[Tensor, Tensor]:
        """``i, j`` as contiguous int64 ``(P,)`` (what the fused kernel of the learned potentials
        reads, :mod:`symplearn.models._fused`)."""
        c = self._derived.get("ij64")
        if c is None:
            c = self._derived["ij64"] = tuple(a.to(torch.int64).contiguous() for a in (self.i, self.j))
        return c

    @property
    def ij32(self) -> tuple[Tensor, Tensor]:
        """``i, j`` as contiguous int32 ``(P,)`` (half the index memory that the compiled kernel
        reads; vesin's ``i, j`` are strided uint64 views), or int64 past 2^31 particles."""
        c = self._derived.get("ij32")
        if c is None:
            small = self.n_total < 2**31 - 1
            c = tuple(a.to(torch.int32) if small else a.contiguous() for a in (self.i, self.j))
            self._derived["ij32"] = c
        return c

    @property
    def pair_batch(self) -> Tensor:
        """The replica of each pair ``(P,)``."""
        c = self._derived.get("pair_batch")
        if c is None:
            P, N = self.i.shape[0], self.n_per_replica
            if self.n_total == N:
                c = torch.zeros(P, dtype=torch.int64, device=self.i.device)
            else:
                c = torch.div(self.i, N, rounding_mode="floor")
            self._derived["pair_batch"] = c
        return c

    @property
    def image(self) -> Tensor:
        """Each pair's image ``(3P,)`` float64, component-major (``x_i - x_j - L image`` is the
        minimum image at the reference positions)."""
        c = self._derived.get("image")
        if c is None:
            if self._S is None:
                raise RuntimeError("this neighbour list keeps no images (images=False)")
            P = self._S.shape[0]
            c = torch.empty((3, P), dtype=torch.float64)
            c.copy_(self._S.T)
            c = self._derived["image"] = c.reshape(-1).to(device=self.i.device)
        return c


def _int64(a: np.ndarray) -> Tensor:
    """vesin's uint64 indices as an int64 tensor without a copy (indices are far below 2^63)."""
    return torch.from_numpy(a.view(np.int64) if a.dtype.itemsize == 8 else a.astype(np.int64))


def pair_force_kernel(pair: PairPotential):
    """The forces-only pair loop on a neighbour list: ``(xs, i3, j3, shift) -> forces``, all flat
    and component-major (``xs (3M,)`` positions aligned by ``_NeighborList.update``, ``i3, j3,
    shift (3P,)``; forces ``(3M,)``): the eager stepping path, one 1-D gather and one 1-D
    ``index_add_`` per side for all three components (``compile=True`` runs
    :func:`pair_force_kernel_compiled` instead)."""

    def kernel(xs: Tensor, i3: Tensor, j3: Tensor, shift: Tensor) -> Tensor:
        d = xs.index_select(0, i3) - xs.index_select(0, j3) - shift
        dd = d.view(3, -1)
        return scatter_pair_forces(xs, dd, pair.force((dd * dd).sum(0)), i3, j3)

    return kernel


def pair_force_kernel_compiled(pair: PairPotential):
    """The forces-only pair loop written for ``torch.compile``: ``(x3, i, j, box) -> forces``
    with positions ``x3 (3, M)`` aligned by ``_NeighborList.update``, pairs ``i, j (P,)`` (int32
    or int64) and forces ``(M, 3)`` (rows, the layout of the state), the minimum image taken in
    the loop (``d - L round(d / L)``).

    The same forces as :func:`pair_force_kernel` bit for bit (see ``_NeighborList.shift``).
    The separations are written per component on ``(P,)`` arrays, so that inductor fuses the
    gathers, the image and the pair force into one loop over the pairs with no ``(3, P)``
    temporaries and no image array; the pair forces are then stacked into ``(P, 3)`` rows and
    scattered by two ``index_add_`` (one loop per side over ``3P`` values, against one per side
    and component for ``(P,)`` arrays). With int32 indices (:meth:`_NeighborList.ij32`), 1.25 M
    pairs at N = 32000 take 13 ms a call against 19 ms for the same kernel on int64 ``(P,)``
    outputs and 29 ms for the compiled :func:`pair_force_kernel` (one core, AMD EPYC,
    interleaved medians). Eager, its extra ops make it slower than :func:`pair_force_kernel`,
    which stays the eager path."""

    def kernel(x3: Tensor, i: Tensor, j: Tensor, box: float) -> Tensor:
        inv = 1.0 / box
        d = []
        for c in range(3):
            dc = x3[c].index_select(0, i) - x3[c].index_select(0, j)
            d.append(dc - box * torch.round(dc * inv))
        f = pair.force(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        fd = torch.stack([d[0] * f, d[1] * f, d[2] * f], 1)  # (P, 3)
        out = torch.zeros(x3.shape[1], 3, dtype=x3.dtype, device=x3.device)
        return out.index_add_(0, i, fd).index_add_(0, j, fd, alpha=-1)

    return kernel


def scatter_pair_forces(xs: Tensor, d: Tensor, f: Tensor, i3: Tensor, j3: Tensor) -> Tensor:
    """Per-particle forces from pair forces ``f_ij = f d_ij``: ``+f_ij`` on i, ``-f_ij`` on j.

    Args:
        xs: positions ``(3M,)``, flat and component-major (only their shape, dtype and device
            are used).
        d: separations ``x_i - x_j`` ``(3, P)``; f: the pair force over distance
            ``-phi'(r) / r`` ``(P,)``; i3, j3: gather indices ``(3P,)`` (:func:`_component_indices`).

    Returns:
        forces ``(3M,)``, component-major. One product and two 1-D ``index_add_`` into one fresh
        buffer, nothing else (the stepping path of an MD run).
    """
    fd = (d * f).reshape(-1)
    return torch.zeros_like(xs).index_add_(0, i3, fd).index_add_(0, j3, fd, alpha=-1)


def pair_results(
    xs: Tensor,
    d: Tensor,
    r2: Tensor,
    f: Tensor,
    i3: Tensor,
    j3: Tensor,
    pair_batch: Tensor,
    batch: tuple[int, ...],
    n_dof: int,
    *,
    energy: Tensor | None,
    virial: bool,
    virial_tensor: bool,
) -> dict[str, Tensor]:
    """The result dict of a ``compute`` of B replicas from its pair terms (shared by the true and
    the learned particle systems).

    Args:
        xs, d, f, i3, j3: as :func:`scatter_pair_forces`; r2: ``|d|^2`` ``(P,)``.
        pair_batch: the replica of each pair ``(P,)``; batch: the batch shape (B replicas in all);
        n_dof: 3N.
        energy: the energy per replica ``(B,)`` (``None``: not asked).
        virial, virial_tensor: whether to compute those.

    Returns:
        ``"forces"`` ``(*batch, 3N)``, and if asked ``"energy"``, ``"virial"`` ``(*batch)``
        (``sum_{i<j} r_ij . f_ij``) and ``"virial_tensor"`` ``(*batch, 3, 3)``
        (``sum_{i<j} r_ij (x) f_ij``).
    """
    forces = scatter_pair_forces(xs, d, f, i3, j3)
    out = {"forces": forces.view(3, -1).T.reshape(*batch, n_dof)}
    if energy is not None:
        out["energy"] = energy.reshape(batch)
    if virial or virial_tensor:
        B = math.prod(batch)
        if virial:
            w = torch.zeros(B, dtype=xs.dtype, device=xs.device).index_add(0, pair_batch, f * r2)
            out["virial"] = w.reshape(batch)
        if virial_tensor:
            comps = [f * d[a] * d[b] for a in range(3) for b in range(3)]
            wt = torch.zeros(B, 9, dtype=xs.dtype, device=xs.device).index_add(
                0, pair_batch, torch.stack(comps, -1)
            )
            out["virial_tensor"] = wt.reshape(*batch, 3, 3)
    return out


def _component_indices(i: Tensor, j: Tensor, n_total: int) -> tuple[Tensor, Tensor]:
    """Gather indices into the component-major flat positions ``(x_0..x_{M-1}, y_0.., z_0..)``
    of M = ``n_total`` particles for pairs ``(i, j)``: ``(3P,)`` each, components outermost."""
    off = torch.arange(0, 3 * n_total, n_total, dtype=i.dtype, device=i.device)[:, None]  # (3, 1)
    return (i[None, :] + off).reshape(-1), (j[None, :] + off).reshape(-1)


class ParticleSystem(System, SeparableHamiltonian):
    r"""N particles in a periodic cubic box of side L interacting through a pair potential.

    ``H = sum_i |p_i|^2 / (2 m_i) + sum_{i<j} u(r_ij)`` with minimum-image distances. A
    separable Hamiltonian: Verlet and Yoshida run it through ``integrate`` unchanged.

    Args:
        n_particles: N.
        box_length: L; the box is ``[0, L)^3``, periodic in all three directions.
        pair: the pair potential (its cutoff must not exceed L / 2).
        mass: one mass for all particles, or a sequence of N masses.
        neighbor: ``"auto"`` (see :data:`AUTO_MIN_SKIN`), ``"all-pairs"`` (every ``i < j`` pair) or
            ``"vesin"`` (Verlet list from the vesin library with radius ``cutoff + skin``).
        skin: neighbour-list skin (the list is rebuilt when a particle moved more than skin/2);
            reduced to ``L/2 - cutoff`` if larger.
        compile: run the forces-only pair loop of the neighbour list (the stepping path) through
            ``torch.compile`` (one fused loop; needs a C++ compiler; about 20 s of compilation on
            first use, 4-7 s with torch's cache warm; then about 1.5x faster at N = 32000 and
            1.2x at 4000, the same or slower at 256 where one call's fixed cost dominates:
            ``benchmarks/bench_md.py``; :func:`pair_force_kernel_compiled`). Energy, virial and
            differentiable calls stay eager. No effect with ``neighbor="all-pairs"``.

    Raises:
        SymplearnError: non-positive sizes, a cutoff larger than half the box, bad masses, an
            unknown neighbour method.

    A batch of K independent replicas is a state of shape ``(K, 6N)``; every method accepts any
    leading batch shape.
    """

    name = "particles"
    PARAMS: dict[str, float] = {}
    #: whether the neighbour list keeps each pair's image for the eager stepping kernel (classes
    #: that take the minimum image themselves, as the learned potentials do, set False)
    _stored_images = True

    def __init__(
        self,
        n_particles: int,
        box_length: float,
        pair: PairPotential,
        *,
        mass: float | list[float] = 1.0,
        neighbor: str = "auto",
        skin: float = 0.3,
        compile: bool = False,
    ):
        if isinstance(n_particles, bool) or not isinstance(n_particles, numbers.Integral) or n_particles < 2:
            raise SymplearnError(f"n_particles must be an integer >= 2, got {n_particles!r}")
        if not (isinstance(box_length, numbers.Real) and math.isfinite(box_length) and box_length > 0):
            raise SymplearnError(f"box_length must be a positive number, got {box_length!r}")
        if not isinstance(pair, PairPotential):
            raise SymplearnError(f"pair must be a PairPotential, got {type(pair).__name__}")
        if pair.cutoff > box_length / 2:
            raise SymplearnError(
                f"cutoff {pair.cutoff:g} is larger than half the box ({box_length / 2:.4g}); "
                f"use more particles (larger box) or a smaller cutoff"
            )
        self.n_particles = int(n_particles)
        self.n_dof = 3 * self.n_particles
        self.box_length = float(box_length)
        self.pair = pair
        m = torch.as_tensor(mass, dtype=torch.float64)
        if m.ndim == 0:
            m = m.expand(self.n_particles)
        if m.shape != (self.n_particles,) or not bool(torch.isfinite(m).all() & (m > 0).all()):
            raise SymplearnError(f"mass must be a positive number or {self.n_particles} positive numbers")
        self.masses = m.clone()  # (N,)
        self._inv_m3 = (1.0 / m).repeat_interleave(3)  # (3N,)
        if neighbor == "auto":
            neighbor = "vesin" if box_length / 2 - pair.cutoff >= AUTO_MIN_SKIN else "all-pairs"
        lookup(neighbor, {"all-pairs": 0, "vesin": 0}, "neighbour method")
        self.neighbor = neighbor
        if not (isinstance(skin, numbers.Real) and skin >= 0):
            raise SymplearnError(f"skin must be a number >= 0, got {skin!r}")
        self.skin = float(min(skin, box_length / 2 - pair.cutoff))
        if not isinstance(compile, bool):
            raise SymplearnError(f"compile must be True or False, got {compile!r}")
        self.compile = compile and neighbor == "vesin"
        # the eager stepping path subtracts each pair's stored image; the compiled one, the
        # energy path with compile=True and the learned models take the minimum image in the
        # loop (the same numbers)
        self._nl = (
            _NeighborList(pair.cutoff + self.skin, self.skin, images=self._stored_images and not self.compile)
            if neighbor == "vesin"
            else None
        )
        if self.compile:
            self._kernel = pair_force_kernel_compiled(pair)
            self._compiled = torch.compile(self._kernel, dynamic=True, options=_SERIAL_CPP)
        else:
            self._kernel, self._compiled = pair_force_kernel(pair), None
        self._kernel_checked = False
        self._cache = None
        self._pairs = None
        self.params = {"n_particles": self.n_particles, "box_length": self.box_length}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={self.n_particles}, L={self.box_length:.6g}, pair={self.pair!r})"

    # -- geometry ---------------------------------------------------------------------------
    @property
    def volume(self) -> float:
        """Box volume ``L^3``."""
        return self.box_length**3

    @property
    def density(self) -> float:
        """Number density ``N / L^3``."""
        return self.n_particles / self.volume

    def positions(self, z_or_q: Tensor) -> Tensor:
        """Positions ``(..., N, 3)`` from a state ``(..., 6N)`` or positions ``(..., 3N)``."""
        q = z_or_q[..., : self.n_dof]
        return q.reshape(*q.shape[:-1], self.n_particles, 3)

    def wrap(self, z: Tensor) -> Tensor:
        """The state with positions wrapped into ``[0, L)^3`` (same forces; MSD needs unwrapped)."""
        q, p = z[..., : self.n_dof], z[..., self.n_dof :]
        return torch.cat([torch.remainder(q, self.box_length), p], -1)

    # -- forces -----------------------------------------------------------------------------
    def compute(
        self, q: Tensor, *, energy: bool = True, virial: bool = True, virial_tensor: bool = False
    ) -> dict[str, Tensor]:
        """Potential energy, forces and virial at positions ``q``.

        Args:
            q: positions ``(..., 3N)`` (wrapped or not).
            energy, virial, virial_tensor: whether to compute those (forces always).

        Returns:
            dict with ``"forces"`` ``(..., 3N)`` (``= -dV/dq``), and if asked ``"energy"`` ``(...)``
            (the potential energy V) and ``"virial"`` ``(...)`` (``W = sum_{i<j} r_ij . f_ij``, so
            that the pressure is ``(2 KE + W) / (3 V)``) and ``"virial_tensor"`` ``(..., 3, 3)``
            (``sum_{i<j} r_ij (x) f_ij``, trace W; ASE's stress is ``-virial_tensor / V``).
        """
        if q.shape[-1] != self.n_dof:
            raise SymplearnError(
                f"positions must have shape (..., {self.n_dof}) = 3N for N={self.n_particles}, "
                f"got {tuple(q.shape)}"
            )
        batch = q.shape[:-1]
        x = q.reshape(-1, self.n_particles, 3)
        L = self.box_length
        B = x.shape[0]
        if self.neighbor == "all-pairs":
            pair_batch, i3, j3 = self._all_pairs(B, q.device)
            shift = None
        else:
            x = self._nl.update(x, L)
            if not (energy or virial or virial_tensor):  # the stepping path: one kernel
                xs = x.reshape(-1, 3).T.reshape(-1)
                if self.compile:
                    forces = self._forces(xs.view(3, -1), *self._nl.ij32, L)  # rows (M, 3)
                else:
                    forces = self._kernel(xs, self._nl.i3, self._nl.j3, self._nl.shift(L, q.dtype))
                    forces = forces.view(3, -1).T
                return {"forces": forces.reshape(*batch, self.n_dof)}
            pair_batch, i3, j3 = self._nl.pair_batch, self._nl.i3, self._nl.j3
            shift = None if self.compile else self._nl.shift(L, q.dtype)
        # Component-major flat layout (x of all particles, then y, then z): one 1-D gather per
        # side and one 1-D index_add per side for all three components. On CPU these are several
        # times faster than the same operations on (P, 3) rows, and the op count per force
        # evaluation (which bounds speed at a few hundred particles) stays small.
        n_pairs = pair_batch.shape[0]
        xs = x.reshape(-1, 3).T.reshape(-1)
        d = xs.index_select(0, i3) - xs.index_select(0, j3)
        d = d - L * torch.round(d * (1.0 / L)) if shift is None else d - shift
        dd = d.view(3, n_pairs)
        r2 = (d * d).view(3, n_pairs).sum(0)
        e = None
        if energy:
            u, f = self.pair.energy_force(r2)
            e = torch.zeros(B, dtype=q.dtype, device=q.device).index_add(0, pair_batch, u)
        else:
            f = self.pair.force(r2)
        return pair_results(
            xs, dd, r2, f, i3, j3, pair_batch, batch, self.n_dof,
            energy=e, virial=virial, virial_tensor=virial_tensor,
        )  # fmt: skip

    def _forces(self, x3: Tensor, i: Tensor, j: Tensor, box: float) -> Tensor:
        """The compiled pair kernel (``compile=True``); the same kernel eager where a graph is
        recorded. ``x3 (3, M)``, ``i, j (P,)``; returns ``(M, 3)``."""
        if torch.is_grad_enabled() and x3.requires_grad:
            return self._kernel(x3, i, j, box)
        if self._kernel_checked:
            return self._compiled(x3, i, j, box)
        try:
            out = self._compiled(x3, i, j, box)
        except Exception as exc:  # inductor needs a C++ compiler at run time
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise SymplearnError(
                f"compile=True could not compile the pair kernel ({type(exc).__name__}: {first}); "
                "torch.compile needs a working C++ compiler (g++ or clang); use compile=False"
            ) from None
        self._kernel_checked = True
        return out

    def _all_pairs(self, B: int, device) -> tuple[Tensor, Tensor, Tensor]:
        """All ``i < j`` pairs of B replicas: ``(pair_batch, i3, j3)`` (see
        :func:`_component_indices`), cached per B."""
        if self._pairs is None or self._pairs[0] != (B, device):
            N = self.n_particles
            iu = torch.triu_indices(N, N, 1, device=device)
            off = (torch.arange(B, device=device) * N)[:, None]
            i, j = (iu[0] + off).reshape(-1), (iu[1] + off).reshape(-1)
            i3, j3 = _component_indices(i, j, B * N)
            self._pairs = ((B, device), (torch.div(i, N, rounding_mode="floor"), i3, j3))
        return self._pairs[1]

    def potential_energy(self, q: Tensor) -> Tensor:
        """``V(q)``. Args: q: ``(..., 3N)``. Returns ``(...)``. Differentiable in q."""
        return self.compute(q, virial=False)["energy"]

    def kinetic_energy(self, p: Tensor) -> Tensor:
        """``T(p) = sum |p_i|^2 / (2 m_i)``. Args: p: ``(..., 3N)``. Returns ``(...)``."""
        return 0.5 * (p * p * self._inv_m3.to(p)).sum(-1)

    def grad_T(self, p: Tensor) -> Tensor:
        """``dT/dp = p / m``. Args: p: ``(..., 3N)``. Returns ``(..., 3N)``."""
        return p * self._inv_m3.to(p)

    def grad_V(self, q: Tensor) -> Tensor:
        """``dV/dq = -forces``. Args: q: ``(..., 3N)``. Returns ``(..., 3N)``.

        Verlet evaluates the force twice at the same positions (end of one step, start of the
        next); the last result is reused when q is equal to the previous call's (and no graph
        is being recorded).
        """
        reuse = not q.requires_grad
        c = self._cache
        if (
            reuse
            and c is not None
            and c[0].shape == q.shape
            and c[0].dtype == q.dtype
            and torch.equal(c[0], q)
        ):
            return c[1]
        g = -self.compute(q, energy=False, virial=False)["forces"]
        self._cache = (q.detach().clone(), g.detach()) if reuse else None
        return g

    def hamiltonian(self, z: Tensor) -> Tensor:
        """``H = T(p) + V(q)``. Args: z: ``(..., 6N)``. Returns ``(...)``."""
        return self.kinetic_energy(z[..., self.n_dof :]) + self.potential_energy(z[..., : self.n_dof])

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``dz/dt = (p/m, forces)``. Args: t (ignored; autonomous), z: ``(..., 6N)``.
        Returns ``(..., 6N)``."""
        q, p = z[..., : self.n_dof], z[..., self.n_dof :]
        return torch.cat([self.grad_T(p), -self.grad_V(q)], -1)

    def conserved_quantities(self, z: Tensor) -> dict[str, Tensor]:
        """Energy ``(...)`` and total momentum ``(..., 3)`` at ``z: (..., 6N)``."""
        p = z[..., self.n_dof :]
        return {"energy": self.hamiltonian(z), "momentum": p.reshape(*p.shape[:-1], -1, 3).sum(-2)}

    # -- initial states ---------------------------------------------------------------------
    def sample(
        self,
        n: int,
        *,
        temperature: float = 1.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        energy_range=None,
    ) -> Tensor:
        """``n`` initial states: the fcc lattice filling the box with Maxwell-Boltzmann momenta.

        Args:
            n: number of replicas K.
            temperature: temperature of the momenta (scaled exactly, zero total momentum).
            seed: seed of the private generator.
            dtype: dtype of the result.
            energy_range: not used by particle systems (must be None).

        Returns:
            ``(n, 6N)``.

        Raises:
            SymplearnError: N is not ``4 k^3``, a bad temperature or count.
        """
        if energy_range is not None:
            raise SymplearnError("particle systems sample at a temperature; energy_range must be None")
        k = round((self.n_particles / 4) ** (1 / 3))
        if 4 * k**3 != self.n_particles:
            raise SymplearnError(
                f"an fcc start needs N = 4 k^3 particles (32, 108, 256, 500, 864, 4000, ...), "
                f"got {self.n_particles}"
            )
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise SymplearnError(f"the number of states must be a positive integer, got {n!r}")
        q = fcc_lattice(k, self.density)[0].reshape(-1)
        p = maxwell_boltzmann(self.masses, temperature, n_replicas=n, seed=seed)
        return torch.cat([q.expand(n, -1), p], -1).to(dtype)


class LennardJones(ParticleSystem):
    r"""The Lennard-Jones fluid: N particles at a number density in a periodic cube.

    H = sum_i |p_i|^2 / (2 mass) + sum_{i<j} 4 epsilon ((sigma/r_ij)^12 - (sigma/r_ij)^6)

    (minimum-image distances r_ij) with the cutoff treatment of :class:`LennardJonesPair`.
    Defaults: the LAMMPS ``in.lj`` state (N = 256 instead of 32000, density 0.8442, rc = 2.5,
    samples at T = 1.44), the cutoff shifted.

    Args:
        n_particles: N (``4 k^3`` for an fcc start).
        density: number density ``N / L^3`` (reduced units, > 0).
        temperature: temperature of :meth:`sample`'s momenta.
        sigma, epsilon, cutoff, cutoff_treatment, r_onset: see :class:`LennardJonesPair`.
        mass, neighbor, skin: see :class:`ParticleSystem`.

    Raises:
        SymplearnError: non-physical density or temperature, a cutoff above half the box, ...
    """

    name = "lennard-jones"
    n_dof = 3 * 256  # at the default N (instances set 3N)
    PARAMS = {
        "n_particles": 256,
        "density": 0.8442,
        "temperature": 1.44,
        "sigma": 1.0,
        "epsilon": 1.0,
        "cutoff": 2.5,
        "mass": 1.0,
        "skin": 0.3,
    }

    def __init__(
        self,
        n_particles: int = 256,
        density: float = 0.8442,
        temperature: float = 1.44,
        sigma: float = 1.0,
        epsilon: float = 1.0,
        cutoff: float = 2.5,
        cutoff_treatment: str = "shifted",
        r_onset: float | None = None,
        mass: float = 1.0,
        neighbor: str = "auto",
        skin: float = 0.3,
        compile: bool = False,
        **unknown,
    ):
        check_names(
            unknown,
            [*self.PARAMS, "cutoff_treatment", "r_onset", "neighbor", "compile"],
            f"parameter of {self.name}",
        )
        if isinstance(n_particles, float) and n_particles.is_integer():
            n_particles = int(n_particles)
        if not (isinstance(density, numbers.Real) and math.isfinite(density) and 0 < density < 3.0):
            raise SymplearnError(
                f"density must be a number in (0, 3) in reduced units (liquid: about 0.8), got {density!r}"
            )
        _check_temperature(temperature)
        if isinstance(n_particles, bool) or not isinstance(n_particles, numbers.Integral) or n_particles < 2:
            raise SymplearnError(f"n_particles must be an integer >= 2, got {n_particles!r}")
        pair = LennardJonesPair(sigma, epsilon, cutoff, cutoff_treatment, r_onset)
        box = (n_particles / density) ** (1.0 / 3.0)
        super().__init__(n_particles, box, pair, mass=mass, neighbor=neighbor, skin=skin, compile=compile)
        self.temperature = float(temperature)
        self.params = {
            "n_particles": self.n_particles,
            "density": float(density),
            "temperature": self.temperature,
            "sigma": float(sigma),
            "epsilon": float(epsilon),
            "cutoff": float(cutoff),
            "cutoff_treatment": cutoff_treatment,
            "mass": float(mass),
        }

    def __repr__(self) -> str:
        return (
            f"LennardJones(N={self.n_particles}, density={self.density:g}, cutoff={self.pair.cutoff:g}, "
            f"treatment={self.pair.treatment!r})"
        )

    def sample(self, n: int, *, temperature: float | None = None, seed: int = 0, dtype=torch.float64, **kw):
        """fcc lattice plus Maxwell-Boltzmann momenta at ``temperature`` (default: the system's);
        the liquid forms within a few hundred steps (LAMMPS ``in.lj``). Returns ``(n, 6N)``."""
        t = self.temperature if temperature is None else temperature
        return super().sample(n, temperature=t, seed=seed, dtype=dtype, **kw)


# ------------------------------------------------------------------------------------------
# initial states
# ------------------------------------------------------------------------------------------
def _check_temperature(temperature) -> float:
    if not (isinstance(temperature, numbers.Real) and math.isfinite(temperature) and temperature > 0):
        raise SymplearnError(f"temperature must be a positive number (reduced units), got {temperature!r}")
    return float(temperature)


def fcc_lattice(n_cells: int, density: float) -> tuple[Tensor, float]:
    """The face-centred cubic lattice of ``n_cells^3`` unit cells at a number density.

    Same site order as LAMMPS ``lattice fcc`` / ``create_atoms``: basis (0,0,0), (1/2,1/2,0),
    (1/2,0,1/2), (0,1/2,1/2) in each cell.

    Args:
        n_cells: cells per side k (N = 4 k^3).
        density: number density (lattice constant ``(4 / density)^(1/3)``).

    Returns:
        ``(positions (N, 3) float64, box length L = k a)``.
    """
    if isinstance(n_cells, bool) or not isinstance(n_cells, numbers.Integral) or n_cells < 1:
        raise SymplearnError(f"n_cells must be a positive integer, got {n_cells!r}")
    if not (isinstance(density, numbers.Real) and math.isfinite(density) and density > 0):
        raise SymplearnError(f"density must be a positive number, got {density!r}")
    a = (4.0 / density) ** (1.0 / 3.0)
    basis = torch.tensor([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]], dtype=torch.float64)
    r = torch.arange(n_cells, dtype=torch.float64)
    cells = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    pos = (cells[:, None, :] + basis[None]).reshape(-1, 3) * a
    return pos, n_cells * a


def maxwell_boltzmann(
    masses: Tensor, temperature: float, *, n_replicas: int = 1, seed: int = 0, exact: bool = True
) -> Tensor:
    """Maxwell-Boltzmann momenta with zero total momentum.

    Args:
        masses: ``(N,)``.
        temperature: target temperature (k_B = 1).
        n_replicas: K independent draws.
        seed: seed of the private generator.
        exact: rescale each replica so that its temperature (``2 KE / (3N - 3)``) equals
            ``temperature`` exactly (as LAMMPS ``velocity create`` does).

    Returns:
        ``(K, 3N)`` float64.
    """
    T = _check_temperature(temperature)
    gen = seeded_generator(seed)
    m = torch.as_tensor(masses, dtype=torch.float64)
    N = m.shape[0]
    v = torch.randn(n_replicas, N, 3, generator=gen, dtype=torch.float64) * torch.sqrt(T / m)[:, None]
    vcm = (m[:, None] * v).sum(1, keepdim=True) / m.sum()
    v = v - vcm
    p = m[:, None] * v
    if exact:
        ke = 0.5 * (m[:, None] * v * v).sum((1, 2))
        p = p * torch.sqrt(T * (3 * N - 3) / (2 * ke))[:, None, None]
    return p.reshape(n_replicas, 3 * N)
