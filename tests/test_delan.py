"""The structured Lagrangian network (DeLaN): a mass matrix positive definite by construction,
Euler-Lagrange accelerations equal to the general solver's, a conserved energy, periodic angles."""

from __future__ import annotations

import math

import pytest
import torch

import symplearn as sl
from symplearn.models import StructuredLNN, build_model, lagrangian_acceleration
from symplearn.systems import get_system

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
F64 = torch.float64


def _random(model, std, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
    return model


def _states(k, n, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    q = scale * torch.randn(k, n, generator=gen, dtype=F64)
    return q, scale * torch.randn(k, n, generator=gen, dtype=F64)


@pytest.mark.parametrize("angles", [False, True])
def test_accelerations_equal_the_general_euler_lagrange_solver(angles):
    """The model's closed-form route (forward mode by hand through C, grad V, a solve) against
    lagrangian_acceleration of its own L (the full Hessian d2L/dq_dot2 and d2L/dq_dot dq by
    torch.func): the same equation solved two ways."""
    model = _random(StructuredLNN(3, width=12, angles=angles).to(F64), std=0.6, seed=1)
    q, qdot = _states(20, 3, seed=2)
    mine = model.acceleration(q, qdot)
    ref = lagrangian_acceleration(lambda a, b: model.lagrangian(a, b), q, qdot)
    assert mine.abs().max() > 0.1
    torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-10)


def test_mass_matrix_is_positive_definite_for_any_weights():
    """Eigenvalues >= eps for large random weights, and for weights that push the learned factor
    to zero (where a free Hessian, Cranmer's LNN, is singular): the solve always exists."""
    model = _random(StructuredLNN(2, width=16, epsilon=1e-3).to(F64), std=2.0, seed=3)
    q, qdot = _states(200, 2, seed=4, scale=3.0)
    eig = torch.linalg.eigvalsh(model.mass_matrix(q))
    assert eig.min() >= 1e-3 * (1 - 1e-9)
    torch.testing.assert_close(model.mass_matrix(q), model.mass_matrix(q).mT, rtol=0, atol=0)
    with torch.no_grad():  # the factor C -> 0: M -> eps I, still invertible
        model.mass_out.weight.zero_()
        model.mass_out.bias.copy_(-60.0 * model._diagonal)  # diagonal of C ~ e^-60, the rest 0
    M = model.mass_matrix(q)
    torch.testing.assert_close(M, 1e-3 * torch.eye(2, dtype=F64).expand_as(M), rtol=1e-6, atol=1e-12)
    assert torch.isfinite(model.acceleration(q, qdot)).all()


def test_energy_is_conserved_by_the_learned_flow():
    """E = q_dot^T M q_dot / 2 + V is a first integral of the Euler-Lagrange flow (for random
    weights): RK4's energy error over t = 5 falls as dt^4 (measured order within 3.5..4.5), so
    it is the integrator's, not the model's."""
    model = _random(StructuredLNN(2, width=16, angles=True).to(F64), std=0.5, seed=5)
    q, qdot = _states(6, 2, seed=6)
    x0 = torch.cat([q, qdot], -1)
    errors = []
    for dt in (0.01, 0.005):
        with torch.no_grad():
            traj = sl.integrate(sl.discretize(model, "rk4", dt), x0, round(5.0 / dt), save_every=10)
            e = model.energy(traj.z)
        assert (traj.z[-1] - x0).norm(dim=-1).min() > 0.1  # the states travel
        errors.append(float((e - e[0]).abs().max()))
    order = math.log2(errors[0] / errors[1])
    assert 3.5 < order < 4.5, (errors, order)


def test_angles_make_mass_and_potential_periodic():
    model = _random(StructuredLNN(2, width=8, angles=True).to(F64), std=0.7, seed=7)
    q, _ = _states(10, 2, seed=8)
    shift = torch.tensor([2 * math.pi, -4 * math.pi], dtype=F64)
    torch.testing.assert_close(model.mass_matrix(q + shift), model.mass_matrix(q), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.potential(q + shift), model.potential(q), rtol=1e-12, atol=1e-12)
    plain = _random(StructuredLNN(2, width=8).to(F64), std=0.7, seed=7)
    assert (plain.potential(q + shift) - plain.potential(q)).abs().max() > 1e-3


def test_learns_the_pendulum_mass_and_potential_from_accelerations():
    """Trained by fit on the pendulum's accelerations (weights and minibatches seeded 0, 1000
    steps), the held-out RMS acceleration error is below 2 % of the accelerations' spread
    (measured 0.8 %; 0.6-0.8 % for initial seeds 0-2), and on |q| <= 1.5 (where the data are) the
    learned Lagrangian is the true one up to the scale accelerations cannot see (L and c L have the
    same Euler-Lagrange equation): M(q) constant to 5 % (measured 1.7 %; 1.4-5.2 % for seeds 0-2),
    and (V(q) - V(0)) / M equal to g (1 - cos q), g/L = 9.81, to 5 % of its range (measured
    0.2 %)."""
    system = get_system("pendulum")
    data = sl.generate_dataset(system, n_traj=32, n_steps=40, dt=0.05, seed=0)
    torch.manual_seed(0)
    model = build_model("lnn-structured", n_dof=1, width=32, angles=True).to(F64)
    res = sl.fit(model, data, steps=1000, lr=3e-3, seed=0, progress=False)
    assert res.loss == "acceleration"
    assert res.test_loss < (0.02) ** 2 * float(data.dzdt[..., 1].var()), res.test_loss
    q = torch.linspace(-1.5, 1.5, 9, dtype=F64)[:, None]  # where the data lie (|q| <= 1.58)
    with torch.no_grad():
        M = model.mass_matrix(q)[:, 0, 0]
        V = (model.potential(q) - model.potential(torch.zeros(1, 1, dtype=F64))) / M.mean()
    assert (M.max() - M.min()) / M.mean() < 0.05, M
    true_v = 9.81 * (1 - torch.cos(q[:, 0]))
    assert (V - true_v).abs().max() < 0.05 * float(true_v.max()), (V, true_v)


def test_canonical_form_is_the_legendre_transform_and_its_flow_keeps_the_energy():
    """H(q, p) = p^T M^-1 p / 2 + V: its closed-form field equals J grad H by autograd, and
    implicit midpoint on it, read back in (q, q_dot), keeps the learned energy in a band that
    shrinks like dt^2 (a symplectic method), where the RK4 rollout in (q, q_dot) drifts."""
    model = StructuredLNN(2, width=16, angles=True).to(F64)
    H = model.canonical()
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=F64).requires_grad_(True)
    (g,) = torch.autograd.grad(H.hamiltonian(z).sum(), z)
    torch.testing.assert_close(
        H.vector_field(0.0, z), torch.cat([g[:, 2:], -g[:, :2]], -1), rtol=1e-9, atol=1e-10
    )
    x0 = 0.5 * torch.randn(4, 4, generator=torch.Generator().manual_seed(4), dtype=F64)
    e0 = model.energy(x0)

    def band(dt, steps):
        flow, x, worst = model.canonical_flow("implicit-midpoint", dt), x0, 0.0
        with torch.no_grad():
            for _ in range(steps):
                x = flow.step(0.0, x)
                worst = max(worst, float(((model.energy(x) - e0) / e0).abs().max()))
        return worst

    coarse, fine = band(0.1, 200), band(0.05, 400)
    assert coarse < 1e-2
    assert 2.5 < coarse / fine < 6.0  # second order: 4x smaller band at half the step
