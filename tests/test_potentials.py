"""Learned particle potentials: forces = -grad E exactly, symmetries, Verlet, ASE, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from symplearn.dynamics import SeparableHamiltonian
from symplearn.integrators import integrate
from symplearn.integrators.discretize import discretize
from symplearn.models import MODELS, build_model
from symplearn.systems.particles import LennardJones
from symplearn.training.potentials import generate_md_data, train_potential

N = 108
KINDS = ("pair-potential", "symmetry-function", "direct-force")


@pytest.fixture(scope="module")
def lj():
    return LennardJones(N, density=0.8442, cutoff_treatment="switched")


@pytest.fixture(scope="module")
def state(lj):
    """A disordered state: fcc plus 0.08 sigma random displacements, T = 1 momenta."""
    z = lj.sample(1, temperature=1.0, seed=3)[0]
    g = torch.Generator().manual_seed(3)
    q = z[: lj.n_dof] + 0.08 * torch.randn(lj.n_dof, generator=g, dtype=torch.float64)
    return torch.cat([q, z[lj.n_dof :]])


def _model(kind, lj, state, scale=1.0):
    torch.manual_seed(0)
    m = build_model(kind, n_particles=N, box_length=lj.box_length, n_basis=8, width=16).double()
    m.fit_scales(state[None, : lj.n_dof])
    if scale != 1.0:
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(scale)
    return m


def test_registered_and_rebuilt(lj, state):
    for kind in KINDS:
        assert kind in MODELS
        m = _model(kind, lj, state)
        assert isinstance(m, SeparableHamiltonian)
        m2 = build_model(**m.config).double()
        m2.load_state_dict(m.state_dict())
        q = state[: lj.n_dof]
        torch.testing.assert_close(m2.grad_V(q), m.grad_V(q), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["pair-potential", "symmetry-function"])
def test_forces_are_minus_autograd_gradient(kind, lj, state):
    m = _model(kind, lj, state)
    q = state[: lj.n_dof].clone().requires_grad_(True)
    out = m.compute(q)
    (g,) = torch.autograd.grad(out["energy"], q)
    F = out["forces"].detach()
    assert float((F + g).abs().max()) <= 1e-12 * float(F.abs().max())


@pytest.mark.parametrize("kind", ["pair-potential", "symmetry-function"])
def test_forces_stay_the_gradient_after_a_round_trip_through_float32(kind, lj, state):
    """A model stored in float32 and run in float64 (a trained folder loaded with .double()):
    its radial centres are float32 numbers, and the closed-form forces must use the same centres
    as the energy (a derived copy rounded on its own made them differ by ~1e-8 relative)."""
    m = _model(kind, lj, state).float().double()
    q = state[: lj.n_dof].clone().requires_grad_(True)
    out = m.compute(q)
    (g,) = torch.autograd.grad(out["energy"], q)
    F = out["forces"].detach()
    assert float((F + g).abs().max()) <= 1e-12 * float(F.abs().max())


@pytest.mark.parametrize("kind", KINDS)
@torch.no_grad()
def test_symmetries(kind, lj, state):
    """Translation and permutation invariance, equivariance under the box's 90-degree rotation
    about z ((x, y, z) -> (L - y, x, z)); Newton's third law (zero total force)."""
    m = _model(kind, lj, state)
    L = lj.box_length
    q = state[: lj.n_dof]
    out = m.compute(q)
    F = out["forces"].detach().reshape(N, 3)
    assert float(F.sum(0).abs().max()) < 1e-11
    x = q.reshape(N, 3)
    shifted = m.compute((x + torch.tensor([0.3, -1.1, 2.7], dtype=torch.float64)).reshape(-1))
    torch.testing.assert_close(shifted["forces"], out["forces"], rtol=0, atol=1e-11)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(1))
    permuted = m.compute(x[perm].reshape(-1))
    torch.testing.assert_close(permuted["forces"].reshape(N, 3), F[perm], rtol=0, atol=1e-11)
    rot = torch.stack([L - x[:, 1], x[:, 0], x[:, 2]], -1)
    rotated = m.compute(rot.reshape(-1))["forces"].reshape(N, 3)
    torch.testing.assert_close(rotated, torch.stack([-F[:, 1], F[:, 0], F[:, 2]], -1), rtol=0, atol=1e-11)
    if m.has_energy:
        for o in (shifted, permuted):
            assert abs(float(o["energy"] - out["energy"])) < 1e-11 * abs(float(out["energy"]))
    else:
        assert math.isnan(float(out["energy"]))


def test_verlet_energy_error_is_second_order(lj, state):
    """The learned V in a separable H runs through discretize(model, "verlet"): the energy error
    over t = 0.5 shrinks by 4 when dt halves (a conservative model's own energy)."""
    m = _model("symmetry-function", lj, state, scale=3.0)
    errs = []
    for dt, n in ((0.004, 125), (0.002, 250)):
        with torch.no_grad():
            traj = integrate(discretize(m, "verlet", dt), state[None], n, save_every=5)
            H = m.hamiltonian(traj.z[:, 0])
        errs.append(float((H - H[0]).abs().max()))
    assert errs[0] > 1e-8  # the potential does something
    assert 3.5 < errs[0] / errs[1] < 4.5


def test_ase_calculator_matches_symplearn_nve(lj, state):
    """The learned model driven by ASE (symplearn.ase calculator + VelocityVerlet) follows
    symplearn's own velocity Verlet for 100 steps to round-off."""
    from ase.md.verlet import VelocityVerlet

    from symplearn.ase import SymplearnCalculator, from_atoms, to_atoms

    m = _model("symmetry-function", lj, state, scale=3.0)
    with torch.no_grad():
        traj = integrate(discretize(m, "verlet", 0.005), state[None], 100, save_every=100)
    atoms = to_atoms(m, state)
    atoms.calc = SymplearnCalculator(m)
    VelocityVerlet(atoms, timestep=0.005).run(100)
    z_ase = from_atoms(atoms)
    diff = float((z_ase - traj.z[-1, 0]).abs().max())
    assert diff < 1e-9, diff
    e_ase = atoms.get_potential_energy()
    assert abs(e_ase - float(m.potential_energy(traj.z[-1, 0, : lj.n_dof]).detach())) < 1e-9 * abs(e_ase)


def test_training_learns_lj_forces(lj):
    """A stated accuracy at a fixed seed: 150 Adam steps on 60 Langevin frames bring the held-out
    force RMSE of a small symmetry-function model from 49 % to 41 % of the RMS force (measured);
    asserted: below 50 % and decreasing."""
    data = generate_md_data(lj, [1.0], 60, equilibration_steps=300, sample_every=10, seed=0)
    torch.manual_seed(0)
    m = build_model(
        "symmetry-function", n_particles=N, box_length=lj.box_length, n_basis=8, width=16
    ).double()
    res = train_potential(m, data, steps=150, batch_size=2, lr=1e-2, eval_every=50, seed=0)
    scale = float(data["forces"][res["val_idx"]].pow(2).mean().sqrt())
    h = res["history"]["val_force_rmse"]
    assert h[-1] < 0.5 * scale and h[-1] < h[0], (h, scale)
    assert np.isfinite(res["val_energy_rmse"])


@torch.no_grad()
def test_neighbour_list_matches_all_pairs():
    """N = 256: the vesin Verlet list and all pairs give the same energies and forces."""
    big = LennardJones(256, density=0.8442)
    z = big.sample(1, temperature=1.0, seed=2)[0]
    q = z[: big.n_dof] + 0.05 * torch.randn(
        big.n_dof, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    for kind in KINDS:
        ms = []
        for nb in ("vesin", "all-pairs"):
            torch.manual_seed(0)
            m = build_model(
                kind, n_particles=256, box_length=big.box_length, neighbor=nb, n_basis=8, width=16
            )
            m = m.double()
            m.fit_scales(q[None])
            ms.append(m.compute(q))
        assert ms[0]["forces"].shape == (big.n_dof,)
        torch.testing.assert_close(ms[0]["forces"], ms[1]["forces"], rtol=0, atol=1e-11)
        if kind != "direct-force":
            torch.testing.assert_close(ms[0]["energy"], ms[1]["energy"], rtol=1e-13, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_descriptor_sums_are_the_same_numbers_on_every_run_and_thread_count(lj, state, dtype):
    """G sums each pair's basis row in pair order: with 1 and 2 torch threads, in float32 (where
    index_put would accumulate in parallel with atomics) and float64, repeated calls give the
    same bits, and the sums agree with a float64 per-particle loop to round-off."""
    from symplearn.models.potentials import _row_sums

    g = torch.Generator().manual_seed(5)
    P, K, n = 6000, 12, 108  # P K above torch's parallel grain (32768 elements)
    i, j = torch.randint(0, n, (P,), generator=g), torch.randint(0, n, (P,), generator=g)
    b = torch.rand(P, K, generator=g, dtype=torch.float64)
    ref = torch.zeros(n, K, dtype=torch.float64)
    for a in range(n):
        ref[a] = b[i == a].sum(0) + b[j == a].sum(0)
    threads = torch.get_num_threads()
    try:
        outs = []
        for nt in (1, 2):
            torch.set_num_threads(nt)
            outs += [_row_sums(b.to(dtype), i, j, n) for _ in range(3)]
    finally:
        torch.set_num_threads(threads)
    for o in outs[1:]:
        assert torch.equal(o, outs[0])
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    assert float((outs[0].double() - ref).abs().max()) < tol * float(ref.abs().max())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_radial_pieces_give_the_basis_and_the_contracted_derivative(dtype):
    """The force path's ``gaussians`` and ``contract`` (no (P, K) derivative array, the sum
    c_k e_k (r - mu_k) split into two matrix-vector products) against ``RadialBasis.forward``
    with its derivative: to 1e-14 relative in float64; in float32 within 10 eps (b) and 30 eps
    (the contraction: its two terms are up to ~4 times their difference)."""
    from symplearn.models.potentials import RadialBasis

    rb = RadialBasis(2.5, 12).to(dtype)
    g = torch.Generator().manual_seed(0)
    r = (0.5 + 1.99 * torch.rand(500, generator=g, dtype=torch.float64)).to(dtype)
    c = torch.randn(500, 12, generator=g, dtype=torch.float64)
    b_ref, db_ref = RadialBasis(2.5, 12)(r.double(), derivative=True)  # float64 reference
    e, fc, dfc_over_r, delta = rb.gaussians(r, r * r)
    f = rb.contract(c.to(dtype), e, fc, dfc_over_r, delta, r).double()
    f_ref = -(c * db_ref).sum(-1) / r.double()
    eps32 = torch.finfo(torch.float32).eps
    tol_b, tol_f = (1e-14, 1e-14) if dtype == torch.float64 else (10 * eps32, 30 * eps32)
    assert float(((e * fc[:, None]).double() - b_ref).abs().max()) <= tol_b * float(b_ref.abs().max())
    assert float((f - f_ref).abs().max()) <= tol_f * float(f_ref.abs().max())


@torch.no_grad()
def test_systems_with_a_built_neighbour_list_can_be_copied():
    """copy.deepcopy of a true and a learned N = 256 system after their vesin lists
    were built (vesin's calculator holds C pointers: copying failed before): the copies give
    the same forces, also after the particles moved past the skin (the copy rebuilds).
    ``train --data`` copies its potential (``_train_potential``) and failed on it."""
    import copy

    big = LennardJones(256, density=0.8442)
    z = big.sample(1, temperature=1.0, seed=2)[0]
    g = torch.Generator().manual_seed(2)
    q = z[: big.n_dof] + 0.05 * torch.randn(big.n_dof, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    m = build_model("symmetry-function", n_particles=256, box_length=big.box_length, n_basis=8, width=16)
    m = m.double()
    m.fit_scales(q[None])
    moved = q + 0.4 * torch.rand(big.n_dof, generator=g, dtype=torch.float64)  # beyond skin / 2
    for s in (big, m):
        F = s.compute(q, energy=False, virial=False)["forces"]
        F_moved = s.compute(moved, energy=False, virial=False)["forces"]
        for c in (copy.deepcopy(s), copy.deepcopy(s)):
            out = c.compute(q, energy=False, virial=False)["forces"]
            torch.testing.assert_close(out, F, rtol=0, atol=1e-12)
            out = c.compute(moved, energy=False, virial=False)["forces"]
            torch.testing.assert_close(out, F_moved, rtol=0, atol=1e-12)
