r"""Learned interatomic potentials for particles in a periodic box (the "HNN for particles").

Every model here *is* a :class:`~symplearn.systems.particles.ParticleSystem` (and an
``nn.Module``): same state layout ``z = (q, p)`` of shape ``(..., 6N)``, same minimum-image
pairs and neighbour lists, ``grad_T = p / m``; only the interaction is learned. So Verlet runs a
model through ``integrate`` exactly as it runs the true Lennard-Jones fluid, and
:class:`symplearn.ase.SymplearnCalculator` drives it from ASE.

All three kinds see the neighbourhood through the same smooth radial descriptors within the
cutoff ``rc``: a Gaussian basis ``b_k(r) = exp(-eta (r - mu_k)^2) f_c(r)``, ``k = 1..K``, with
the C2 envelope ``f_c(r) = (1 - (r/rc)^2)^3`` (zero, with zero first and second derivative,
at ``rc``), and the per-particle Behler-Parrinello radial symmetry functions (G2)
``G_i = sum_{j != i} b(r_ij)``. Every interaction is a central pair force
``f_ij = s_ij (q_i - q_j)`` (``s_ij = f_over_r``), with ``f_ij`` on i and ``-f_ij`` on j, so all
kinds are translation and permutation invariant, rotation equivariant and conserve momentum by
construction:

* ``pair-potential`` :class:`LearnedPairPotential`: ``V = sum_{i<j} phi(r_ij)``,
  ``phi(r) = f_c(r) MLP(b(r))``; forces ``-grad V`` (closed form).
* ``symmetry-function`` :class:`SymmetryFunctionPotential`: ``V = sum_i MLP(G_i)`` (Behler &
  Parrinello 2007, radial part); forces ``-grad V`` in closed form,
  ``s_ij = -(dE/dG_i + dE/dG_j) . b'(r_ij) / r_ij``.
* ``direct-force`` :class:`DirectForceModel`: the non-conservative baseline of the same size on
  the same descriptors, ``s_ij = MLP([G_i + G_j, b(r_ij)]) f_c(r_ij) / r_ij``. It has no energy
  (``compute(...)["energy"]`` is NaN); its forces are not a gradient, since the magnitude of a pair
  force depends on the other neighbours of i and j.

Generating their training data with the true system and fitting them to energies and forces is
:mod:`symplearn.training.potentials`.

Gradients of the networks with respect to their inputs are taken in closed form
(:class:`~symplearn.models._common.ScalarMLP`), so forces need no autograd call, work under
``torch.no_grad`` and a loss on them trains with one ordinary backward pass.

Outside autograd (MD steps, thermo, the ASE calculator), the symmetry-function and direct-force
models compute on the CPU through a fused C kernel (:mod:`symplearn.models._fused`: one loop over
the pairs for the descriptors, torch for the network, one loop for forces and virial; 1.6-1.9x the
eager path). It is built with the system's C compiler on first use in a process; without one, or
with ``model.fused = False`` or ``SYMPLEARN_FUSED=0``, the eager torch path gives the same
numbers to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._errors import SymplearnError
from ..systems.particles import PairPotential, ParticleSystem, pair_results
from . import _fused
from ._common import ModelMixin, ScalarMLP, check_float, check_int
from .activations import get_activation

__all__ = [
    "DirectForceModel",
    "LearnedPairPotential",
    "RadialBasis",
    "SymmetryFunctionPotential",
]


def _row_sums(b: Tensor, i: Tensor, j: Tensor, n_total: int) -> Tensor:
    """``G (n_total, K)`` with ``G_a = sum of the rows b_p (P, K) of the pairs p with i_p = a or
    j_p = a``, summed in pair order (the same numbers on every run).

    index_put with accumulate on the rows adds each pair's row in order with no ``(P, K)`` index
    array (half the time of the 1-D index_add of flat rows on CPU; the 2-D index_add is several
    times slower). On a multi-threaded CPU, float32 index_put accumulates in parallel with atomic
    adds (an order that changes from run to run): there, the flat 1-D index_add, serial."""
    K = b.shape[-1]
    if b.dtype == torch.float32 and b.device.type == "cpu" and torch.get_num_threads() > 1:
        k = torch.arange(K, dtype=i.dtype, device=i.device)
        flat = b.reshape(-1)
        G = torch.zeros(n_total * K, dtype=b.dtype, device=b.device)
        G = G.index_add(0, (i[:, None] * K + k).reshape(-1), flat)
        return G.index_add(0, (j[:, None] * K + k).reshape(-1), flat).view(n_total, K)
    G = torch.zeros(n_total, K, dtype=b.dtype, device=b.device)
    return G.index_put((i,), b, accumulate=True).index_put((j,), b, accumulate=True)


def _traced(q: Tensor) -> bool:
    """Whether q is inside a torch.func transform or carries a forward-mode tangent (tensors
    without storage of their own, which the C kernel cannot read)."""
    functorch = getattr(torch._C, "_functorch", None)
    if functorch is not None and functorch.is_functorch_wrapped_tensor(q):
        return True
    from torch.autograd import forward_ad

    return forward_ad.unpack_dual(q).tangent is not None


class _CutoffOnly(PairPotential):
    """Placeholder pair potential that only declares the cutoff (for the neighbour machinery)."""

    def __init__(self, cutoff: float):
        self.cutoff = float(cutoff)

    def energy_force(self, r2: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - never used
        raise SymplearnError("learned models compute their own interactions")


class RadialBasis(nn.Module):
    """Smooth radial descriptors ``b_k(r) = exp(-eta (r - mu_k)^2) f_c(r)`` and ``db_k/dr``.

    Args:
        cutoff: ``rc`` (> 0).
        n_basis: K Gaussians with centres evenly spaced on ``[r_min, rc]``.
        r_min: first centre (the closest approach in a liquid is about 0.8 sigma).

    ``eta = 1 / (2 h^2)`` with ``h`` the centre spacing.
    """

    def __init__(self, cutoff: float, n_basis: int, r_min: float = 0.8):
        super().__init__()
        self.cutoff = float(cutoff)
        mu = torch.linspace(float(r_min), self.cutoff, int(n_basis), dtype=torch.float64)
        h = (self.cutoff - r_min) / max(1, n_basis - 1)
        self.register_buffer("mu", mu)
        self.eta = 1.0 / (2.0 * h * h)
        # contract sums c_k e_k (r - mu_k) as (r - r0) S1 - S2 with S2 = sum c_k e_k (mu_k - r0)
        # for the middle r0 of the centres: the two terms are then at most about 4 times their
        # difference (about 10 times with r0 = 0), which bounds the float32 round-off
        self.r0 = 0.5 * (float(r_min) + self.cutoff)

    def gaussians(self, r: Tensor, r2: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The pair path's pieces at distances ``r (P,)`` inside the cutoff (``r2 = r^2``):
        ``(e, fc, dfc_over_r, delta)``: the Gaussians ``e_k = exp(-eta (r - mu_k)^2)`` ``(P, K)``
        (so ``b = e fc``), the envelope ``fc`` and ``f_c'(r) / r`` ``(P,)``, and ``r - r0``.
        With :meth:`contract`, what :meth:`forward` gives with ``derivative=True`` in fewer
        passes over ``(P, K)`` arrays (none for ``db``)."""
        e = (r[:, None] - self.mu.to(r)).square_().mul_(-self.eta).exp_()
        one = torch.add(1.0, r2, alpha=-1.0 / self.cutoff**2)  # 1 - (r / rc)^2
        one_sq = one * one
        return e, one_sq * one, one_sq * (-6.0 / self.cutoff**2), r - self.r0

    def contract(
        self, c: Tensor, e: Tensor, fc: Tensor, dfc_over_r: Tensor, delta: Tensor, r: Tensor
    ) -> Tensor:
        """``-(sum_k c_k db_k/dr) / r`` ``(P,)`` for coefficients ``c (P, K)`` and the pieces of
        :meth:`gaussians`, with no ``(P, K)`` derivative array: ``db_k/dr = e_k (f_c' - 2 eta
        (r - mu_k) f_c)``, so ``sum_k c_k db_k/dr = f_c' S_1 - 2 eta f_c (delta S_1 - S_2)`` with
        ``S_1 = sum_k c_k e_k`` and ``S_2 = sum_k c_k e_k nu_k`` (two matrix-vector products:
        CPU BLAS is slower on the skinny ``(P, K) @ (K, 2)``)."""
        # mu - r0 from the centres in use (as gaussians takes them, so that the forces stay the
        # exact gradient of the energy whatever precision the centres were stored in)
        nu = self.mu.to(r) - self.r0
        ce = c * e
        S1, S2 = ce.mv(torch.ones_like(nu)), ce.mv(nu)
        inner = torch.addcmul(-S2, delta, S1) * fc  # (delta S1 - S2) fc
        return torch.addcmul(-dfc_over_r * S1, inner, r.reciprocal(), value=2.0 * self.eta)

    def grid(self) -> tuple[float, float] | None:
        """``(mu_0, h)`` when the centres are evenly spaced, ``mu_k = mu_0 + k h`` to within
        ``1e-6 h`` (as built, also after a round trip through float32), with
        ``eta = 1 / (2 h^2)``; ``None`` when the centres were set otherwise (then only the eager
        path computes this basis)."""
        mu = self.mu.detach().to("cpu", torch.float64)
        h = (2.0 * self.eta) ** -0.5
        grid = mu[0] + h * torch.arange(mu.shape[0], dtype=torch.float64)
        if not bool((mu - grid).abs().max() <= 1e-6 * h):
            return None
        return float(mu[0]), h

    def envelope(self, r: Tensor) -> tuple[Tensor, Tensor]:
        """``f_c(r)`` and ``f_c'(r)`` at ``r: (...)``; each ``(...)`` (zero beyond rc)."""
        x = torch.clamp(r / self.cutoff, max=1.0)
        one = 1.0 - x * x
        fc = one**3
        dfc = -6.0 * x * one**2 / self.cutoff
        return fc, dfc

    def forward(self, r: Tensor, derivative: bool = False):
        """``b(r)`` ``(..., K)`` (and ``db/dr`` ``(..., K)`` when ``derivative``) at ``r: (...)``."""
        mu = self.mu.to(r)
        dr = r[..., None] - mu
        g = torch.exp(dr.square() * -self.eta)
        fc, dfc = self.envelope(r)
        b = g * fc[..., None]
        if not derivative:
            return b
        db = g * torch.addcmul(dfc[..., None], dr, fc[..., None], value=-2.0 * self.eta)
        return b, db


class _LearnedParticles(ModelMixin, nn.Module, ParticleSystem):
    """Shared machinery: a ParticleSystem whose pair forces ``s_ij`` come from :meth:`_pair_terms`."""

    conservative = True
    has_energy = True
    kind = ""
    _stored_images = False  # _pair_geometry takes the minimum image of each separation
    #: whether forces outside autograd (MD's stepping path) go through the fused C kernel of
    #: :mod:`symplearn.models._fused` where it is available (the descriptor models; set False on
    #: a model to keep the eager path, which gives the same forces to rounding)
    fused = False
    #: how the last :meth:`compute` ran: ``"fused C kernel"``, or ``"eager torch"`` and why
    last_force_path = "eager torch"

    def __init__(
        self,
        n_particles: int,
        box_length: float,
        cutoff: float = 2.5,
        n_basis: int = 12,
        width: int = 32,
        depth: int = 2,
        activation: str = "tanh",
        mass: float = 1.0,
        neighbor: str = "auto",
    ):
        nn.Module.__init__(self)
        cutoff = check_float("cutoff", cutoff)
        n_basis = check_int("n_basis", n_basis)
        width = check_int("width", width)
        depth = check_int("depth", depth)
        self._act = get_activation(activation, smooth=True, model=type(self).__name__)
        ParticleSystem.__init__(
            self, n_particles, box_length, _CutoffOnly(cutoff), mass=mass, neighbor=neighbor, skin=0.3
        )
        self._set_config(
            n_particles=self.n_particles,
            box_length=self.box_length,
            cutoff=cutoff,
            n_basis=n_basis,
            width=width,
            depth=depth,
            activation=activation,
            mass=float(mass),
            neighbor=neighbor,
        )
        self.basis = RadialBasis(cutoff, n_basis)
        # descriptor standardisation (set from data by fit_scales; saved with the weights)
        self.register_buffer("g_shift", torch.zeros(n_basis))
        self.register_buffer("g_scale", torch.ones(n_basis))
        self.register_buffer("e_shift", torch.zeros(()))
        self._fused_pairs = None  # all-pairs (i, j) of B replicas for the fused kernel
        self._fused_grid = None  # (mu, eta, RadialBasis.grid()) of the last check

    def extra_repr(self) -> str:
        return ModelMixin.extra_repr(self)

    def __repr__(self) -> str:
        return nn.Module.__repr__(self)

    # -- descriptors ------------------------------------------------------------------------
    def _pair_geometry(self, q: Tensor):
        """Pair geometry of positions ``q (..., 3N)``: ``(x_s, d (3, P), r2 (P,), i (P,), j (P,),
        pair_batch (P,), i3, j3, B)`` with global particle indices ``b N + i``."""
        if q.shape[-1] != self.n_dof:
            raise SymplearnError(
                f"positions must have shape (..., {self.n_dof}) = 3N for N={self.n_particles}, "
                f"got {tuple(q.shape)}"
            )
        x = q.reshape(-1, self.n_particles, 3)
        B = x.shape[0]
        L = self.box_length
        if self.neighbor == "all-pairs":
            pair_batch, i3, j3 = self._all_pairs(B, q.device)
        else:
            self._nl.update(x, L)
            pair_batch, i3, j3 = self._nl.pair_batch, self._nl.i3, self._nl.j3
        P = pair_batch.shape[0]
        xs = x.reshape(-1, 3).T.reshape(-1)
        d = xs.index_select(0, i3) - xs.index_select(0, j3)
        d = (d - L * torch.round(d * (1.0 / L))).view(3, P)
        r2 = (d * d).sum(0)
        # Only pairs inside the cutoff go on: every descriptor, pair energy and pair force of
        # a pair at r >= rc is exactly zero (the envelope), so the sums over the rest are the
        # same numbers, and the (P, K) basis work shrinks by the share of pairs beyond rc (about
        # half of all pairs at N = 108, a third of a Verlet list's).
        keep = torch.nonzero(r2.detach() < self.basis.cutoff**2).squeeze(1)
        if keep.shape[0] < P:
            d, r2 = d.index_select(1, keep), r2.index_select(0, keep)
            # one replica: every pair's replica index is 0, any slice of them will do
            pair_batch = pair_batch[: keep.shape[0]] if B == 1 else pair_batch.index_select(0, keep)
            i3 = i3.view(3, P).index_select(1, keep).view(-1)
            j3 = j3.view(3, P).index_select(1, keep).view(-1)
            P = keep.shape[0]
        return xs, d, r2, i3[:P], j3[:P], pair_batch, i3, j3, B

    def symmetry_functions(self, r: Tensor, i: Tensor, j: Tensor, n_total: int, derivative: bool = False):
        """Standardised G2 descriptors of ``n_total`` particles from pair distances ``r (P,)`` of pairs
        ``(i, j)``: ``G (n_total, K)``, and with ``derivative`` also ``(b, db)`` of the pairs."""
        b, db = self.basis(r, derivative=True)
        G = self._standardise(_row_sums(b, i, j, n_total))
        return (G, b, db) if derivative else G

    def _standardise(self, G: Tensor) -> Tensor:
        return (G - self.g_shift.to(G)) / self.g_scale.to(G)

    def _descriptors(self, r2: Tensor, i: Tensor, j: Tensor, n_total: int):
        """The force path's descriptors of pairs inside the cutoff: ``(G (n_total, K), pieces)``
        with ``pieces = (e, fc, dfc_over_r, delta, r)`` for :meth:`_pair_forces`."""
        r = r2.sqrt()
        e, fc, dfc_over_r, delta = self.basis.gaussians(r, r2)
        G = self._standardise(_row_sums(e * fc[:, None], i, j, n_total))
        return G, (e, fc, dfc_over_r, delta, r)

    def _pair_forces(self, c: Tensor, i: Tensor, j: Tensor, pieces) -> Tensor:
        """``s_ij = -((c_i + c_j) . db(r_ij)/dr) / r_ij`` ``(P,)`` for per-particle coefficients
        ``c (n_total, K)`` (an energy's gradient in G, or the direct model's stand-in)."""
        return self.basis.contract(c.index_select(0, i) + c.index_select(0, j), *pieces)

    def _pair_terms(self, r2, i, j, pair_batch, B, energy: bool):
        """``(s_ij (P,), energy per replica (B,) or None)``: the pair force over distance."""
        raise NotImplementedError

    def _coefficients(self, G: Tensor, energy: bool = False) -> tuple[Tensor, Tensor | None]:
        """The per-particle coefficients ``c (M, K)`` of ``db/dr`` in the pair forces from the
        standardised descriptors ``G (M, K)`` (the descriptor models), and with ``energy`` each
        particle's energy ``(M,)`` (``None`` for a model without one)."""
        raise NotImplementedError

    def _fused_grid_of_basis(self) -> tuple[float, float] | None:
        # checked against the values (an edit through .data does not count as a version)
        mu, eta = self.basis.mu.detach(), self.basis.eta
        c = self._fused_grid
        if c is None or c[1] != eta or c[0].dtype != mu.dtype or not torch.equal(c[0], mu):
            self._fused_grid = c = (mu.clone(), eta, self.basis.grid())
        return c[2]

    def _fused_compute(self, q: Tensor, energy: bool, virial: bool, virial_tensor: bool) -> dict | None:
        """:meth:`compute` through the fused kernel, or ``None`` where it does not apply
        (autograd wanted, not the CPU, another dtype, a changed basis, no compiler)."""
        self.last_force_path = "eager torch"
        if not self.fused or q.device.type != "cpu" or q.dtype not in (torch.float32, torch.float64):
            return None
        if torch.is_grad_enabled() and (q.requires_grad or any(p.requires_grad for p in self.parameters())):
            return None
        if _traced(q) or q.shape[-1] != self.n_dof or self.basis.mu.shape[0] > _fused.MAX_K:
            return None
        grid = self._fused_grid_of_basis()
        if grid is None:
            self.last_force_path = "eager torch (radial centres off the even grid)"
            return None
        if _fused.library() is None:
            self.last_force_path = f"eager torch ({_fused.status()})"
            return None
        self.last_force_path = "fused C kernel"
        x = q.reshape(-1, self.n_particles, 3)
        B = x.shape[0]
        if self.neighbor == "all-pairs":
            if self._fused_pairs is None or self._fused_pairs[0] != B:
                iu = torch.triu_indices(self.n_particles, self.n_particles, 1)
                off = (torch.arange(B) * self.n_particles)[:, None]
                ij = tuple((a + off).reshape(-1).contiguous() for a in iu)
                self._fused_pairs = (B, ij)
            i, j = self._fused_pairs[1]
        else:
            self._nl.update(x, self.box_length)
            i, j = self._nl.ij64
        g_scale = self.g_scale.to(q.dtype)
        per = []

        def coefficients(G_raw):
            c, e = self._coefficients((G_raw - self.g_shift.to(G_raw)) / g_scale, energy=energy)
            per.append(e)
            return c

        F, W = _fused.radial_forces(
            x.reshape(-1, 3), i, j, self.box_length, self.basis.cutoff, self.basis.mu, grid[1],
            coefficients, virial_replicas=B if (virial or virial_tensor) else 0,
        )  # fmt: skip
        batch = q.shape[:-1]
        out = {"forces": F.reshape(q.shape)}
        if energy:
            e = per[0]
            e = torch.full((B,), float("nan"), dtype=q.dtype) if e is None else e.view(B, -1).sum(-1)
            out["energy"] = e.reshape(batch)
        if virial:
            out["virial"] = W.diagonal(dim1=-2, dim2=-1).sum(-1).reshape(batch)
        if virial_tensor:
            out["virial_tensor"] = W.reshape(*batch, 3, 3)
        return out

    def compute(self, q: Tensor, *, energy: bool = True, virial: bool = True, virial_tensor: bool = False):
        """Potential energy, forces and virial at ``q`` (same contract as
        :meth:`ParticleSystem.compute <symplearn.systems.particles.ParticleSystem.compute>`;
        energy is NaN for a model without one)."""
        out = self._fused_compute(q, energy, virial, virial_tensor)
        if out is not None:
            return out
        batch = q.shape[:-1]
        xs, d, r2, i, j, pair_batch, i3, j3, B = self._pair_geometry(q)
        f, e = self._pair_terms(r2, i, j, pair_batch, B, energy)
        if energy and e is None:
            e = torch.full((B,), float("nan"), dtype=q.dtype, device=q.device)
        return pair_results(
            xs, d, r2, f, i3, j3, pair_batch, batch, self.n_dof,
            energy=e if energy else None, virial=virial, virial_tensor=virial_tensor,
        )  # fmt: skip

    @torch.no_grad()
    def fit_scales(self, q: Tensor, energy: Tensor | None = None) -> None:
        """Set the descriptor standardisation (mean, std of G over the frames ``q (F, 3N)``) and
        the energy offset per particle (mean of ``energy (F,) / N``) from training data."""
        _, _, r2, i, j, _, _, _, B = self._pair_geometry(q)
        self.g_shift.zero_()
        self.g_scale.fill_(1.0)
        G = self.symmetry_functions(r2.sqrt(), i, j, B * self.n_particles)
        self.g_shift.copy_(G.mean(0))
        self.g_scale.copy_(G.std(0).clamp_min(1e-3))
        if energy is not None:
            self.e_shift.copy_((energy / self.n_particles).mean())

    # the model's own pieces are the "dynamics": no cached forces across parameter updates
    def grad_V(self, q: Tensor) -> Tensor:
        """``dV/dq = -forces`` (for the direct-force model: minus its forces, not a gradient).
        Args: q: ``(..., 3N)``. Returns ``(..., 3N)``.

        Outside grad mode the last result is reused when q and the weights (their in-place
        version counters) are unchanged (Verlet asks twice at the same positions)."""
        reuse = not torch.is_grad_enabled() and not q.requires_grad
        key = tuple(p._version for p in self.parameters())
        c = self._cache
        if reuse and c is not None and c[2] == key and c[0].shape == q.shape and c[0].dtype == q.dtype:
            if torch.equal(c[0], q):
                return c[1]
        g = -self.compute(q, energy=False, virial=False)["forces"]
        self._cache = (q.detach().clone(), g.detach(), key) if reuse else None
        return g


class LearnedPairPotential(_LearnedParticles):
    """A learned pair potential ``phi(r) = f_c(r) MLP(b(r))``, ``V = sum_{i<j} phi(r_ij)``.

    Args:
        n_particles, box_length: N and L of the periodic box (as :class:`ParticleSystem`).
        cutoff: rc (<= L/2); n_basis: K radial basis functions.
        width, depth, activation: the scalar network (smooth activation).
        mass: particle mass; neighbor: ``"auto"``, ``"all-pairs"`` or ``"vesin"``.

    Raises:
        SymplearnError: bad sizes, a cutoff above L/2, a non-smooth activation.
    """

    kind = "pair-potential"

    def __init__(self, n_particles, box_length, cutoff=2.5, n_basis=12, width=32, depth=2,
                 activation="tanh", mass=1.0, neighbor="auto"):  # fmt: skip
        super().__init__(n_particles, box_length, cutoff, n_basis, width, depth, activation, mass, neighbor)
        self.net = ScalarMLP(n_basis, width, depth, self._act)

    def pair_energy(self, r: Tensor) -> Tensor:
        """``phi(r)`` at distances ``r: (...)``; returns ``(...)`` (zero from rc on)."""
        b = self.basis(r)
        fc, _ = self.basis.envelope(r)
        return fc * self.net(b)

    def _pair_terms(self, r2, i, j, pair_batch, B, energy):
        # phi = fc u(b), u = MLP: -phi'/r = -(dfc/r) u - fc (sum_k du/db_k db_k/dr) / r
        r = r2.sqrt()
        e_k, fc, dfc_r, delta = self.basis.gaussians(r, r2)
        v, g = self.net.value_and_grad(e_k * fc[:, None])
        f = torch.addcmul(fc * self.basis.contract(g, e_k, fc, dfc_r, delta, r), dfc_r, v, value=-1.0)
        e = None
        if energy:
            e = torch.zeros(B, dtype=r.dtype, device=r.device).index_add(0, pair_batch, fc * v)
        return f, e


class SymmetryFunctionPotential(_LearnedParticles):
    """Behler-Parrinello potential on radial symmetry functions: ``V = sum_i MLP(G_i)``.

    Same arguments as :class:`LearnedPairPotential`. Forces are ``-grad V`` in closed form.
    """

    kind = "symmetry-function"

    def __init__(self, n_particles, box_length, cutoff=2.5, n_basis=12, width=32, depth=2,
                 activation="tanh", mass=1.0, neighbor="auto"):  # fmt: skip
        super().__init__(n_particles, box_length, cutoff, n_basis, width, depth, activation, mass, neighbor)
        self.net = ScalarMLP(n_basis, width, depth, self._act)

    fused = True

    def _coefficients(self, G: Tensor, energy: bool = False) -> tuple[Tensor, Tensor | None]:
        if not energy:
            return self.net.gradient(G) / self.g_scale.to(G), None  # dE/dG_raw
        v, g = self.net.value_and_grad(G)
        return g / self.g_scale.to(G), v + self.e_shift.to(G)

    def _pair_terms(self, r2, i, j, pair_batch, B, energy):
        G, pieces = self._descriptors(r2, i, j, B * self.n_particles)
        v, g = self.net.value_and_grad(G) if energy else (None, self.net.gradient(G))  # (M,), (M, K)
        f = self._pair_forces(g / self.g_scale.to(G), i, j, pieces)
        e = None
        if energy:
            per = v + self.e_shift.to(G)
            e = per.view(B, self.n_particles).sum(-1)
        return f, e


class DirectForceModel(_LearnedParticles):
    """Direct-force baseline: the symmetry-function network with the gradient constraint removed.

    A network of the same width and depth on the same descriptors outputs a vector
    ``c_i = MLP(G_i)`` in ``R^K`` where :class:`SymmetryFunctionPotential` has ``dE/dG_i``, and
    the pair forces are ``f_ij = -(c_i + c_j) . b'(r_ij) (q_i - q_j) / r_ij``. Rotation
    equivariant and momentum conserving (``f_ji = -f_ij``), at the same cost, but ``c`` is not a
    gradient, so the forces have no energy behind them. Same arguments as
    :class:`LearnedPairPotential`.
    """

    kind = "direct-force"
    conservative = False
    has_energy = False

    def __init__(self, n_particles, box_length, cutoff=2.5, n_basis=12, width=32, depth=2,
                 activation="tanh", mass=1.0, neighbor="auto"):  # fmt: skip
        super().__init__(n_particles, box_length, cutoff, n_basis, width, depth, activation, mass, neighbor)
        dims = [n_basis] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(width, n_basis)

    def coefficients(self, G: Tensor) -> Tensor:
        """``c(G)``: ``(..., K)`` -> ``(..., K)`` (what stands where a gradient would be)."""
        h = G
        for lin in self.hidden:
            h = self._act.fn(lin(h))
        return self.out(h)

    fused = True

    def _coefficients(self, G: Tensor, energy: bool = False) -> tuple[Tensor, Tensor | None]:
        return self.coefficients(G) / self.g_scale.to(G), None

    def _pair_terms(self, r2, i, j, pair_batch, B, energy):
        G, pieces = self._descriptors(r2, i, j, B * self.n_particles)
        return self._pair_forces(self._coefficients(G)[0], i, j, pieces), None
