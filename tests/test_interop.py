"""Interop (issue 8, point 5): every continuous dynamics is a ``func(t, y)`` for
``torchdiffeq.odeint``; and a system, a model and an integrator defined OUTSIDE the package,
registered in the registries, run through ``integrate``, ``fit`` and the diagnostics."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torchdiffeq import odeint

import symplearn as sl
from symplearn import diagnostics as dg
from symplearn.dynamics import HamiltonianDynamics, SeparableHamiltonian, split
from symplearn.integrators import INTEGRATORS, SplittingIntegrator
from symplearn.models import MODELS, build_model
from symplearn.models._common import ModelMixin
from symplearn.systems import SYSTEMS
from symplearn.systems.base import System

RTOL = ATOL = 1e-10


def test_a_ground_truth_system_is_a_torchdiffeq_func_and_dopri5_meets_its_exact_solution():
    """The oscillator (omega = 1.3) through torchdiffeq's dopri5 at rtol = atol = 1e-10 for 4
    periods: the error against the exact flow is at the solver's tolerance (local error per step
    <= 1e-10 (1 + |z|), ~50 accepted steps: we allow 1e-8)."""
    osc = sl.get_system("oscillator", omega=1.3)
    z0 = osc.sample(8, seed=0)
    t = torch.linspace(0.0, 4 * 2 * math.pi / 1.3, 9, dtype=torch.float64)
    z = odeint(osc, z0, t, method="dopri5", rtol=RTOL, atol=ATOL)
    assert z.shape == (9, 8, 2)
    assert float((z - osc.exact_solution(z0, t)).abs().max()) < 1e-8


@pytest.fixture(scope="module")
def trained_hnn():
    """A small float64 HNN trained for 300 steps on pendulum data (seeded)."""
    data = sl.generate_dataset("pendulum", n_traj=16, dt=0.1, n_steps=50, seed=0)
    torch.manual_seed(0)
    model = build_model("hnn", n_dof=1, width=32, depth=2).double()
    sl.fit(model, data, steps=300, batch_size=256, lr=3e-3, seed=0, progress=False)
    return model, data


def test_a_trained_hnn_through_dopri5_agrees_with_gauss_legendre_6_to_the_solver_tolerance(trained_hnn):
    """The trained model is itself the func(t, y). Over T = 3: dopri5 at rtol = atol = 1e-10
    against Gauss-Legendre 6 at dt = 0.01 (its global error, estimated by Richardson from
    dt = 0.02 as |z_0.02 - z_0.01| / (2^6 - 1), is checked to be below 1e-11): they agree to
    1e-8, i.e. to the accumulated tolerance of dopri5 (1e-10 per step, a few hundred steps)."""
    model, _ = trained_hnn
    z0 = sl.get_system("pendulum").sample(8, seed=3)
    T, dt = 3.0, 0.01
    with torch.no_grad():
        ref = odeint(
            model, z0, torch.tensor([0.0, T], dtype=torch.float64), method="dopri5", rtol=RTOL, atol=ATOL
        )
        fine = sl.integrate(sl.discretize(model, "gauss-legendre-6", dt), z0, round(T / dt)).z[-1]
        coarse = sl.integrate(sl.discretize(model, "gauss-legendre-6", 2 * dt), z0, round(T / dt / 2)).z[-1]
    richardson = float((coarse - fine).abs().max()) / (2**6 - 1)
    assert richardson < 1e-11
    assert float((ref[-1] - fine).abs().max()) < 1e-8


# --------------------------------------------------------------------------------------------
# a toy system, model and integrator registered from outside the package
# --------------------------------------------------------------------------------------------
class QuarticOscillator(System, SeparableHamiltonian):
    """``H = p^2/2 + q^4/4`` (a nonlinear, integrable oscillator)."""

    name = "toy-quartic"
    n_dof = 1
    PARAMS = {}
    ENERGY_RANGE = (0.2, 1.0)
    Q_BOX = 2.0

    def hamiltonian(self, z):
        q, p = split(z)
        return (0.5 * p**2 + 0.25 * q**4).sum(-1)

    def vector_field(self, t, z):
        q, p = split(z)
        return torch.cat([p, -(q**3)], -1)

    def grad_T(self, p):
        return p

    def grad_V(self, q):
        return q**3


class QuadraticEnergy(ModelMixin, nn.Module, SeparableHamiltonian):
    """A two-parameter model ``H = a p^2/2 + b q^2/2`` (a, b > 0 through their logs)."""

    kind = "toy-quadratic"

    def __init__(self, n_dof: int = 1):
        super().__init__()
        self.n_dof = n_dof
        self._set_config(n_dof=n_dof)
        self.log_a = nn.Parameter(torch.zeros(()))
        self.log_b = nn.Parameter(torch.zeros(()))

    def hamiltonian(self, z):
        q, p = split(z)
        return (0.5 * self.log_a.exp() * p**2 + 0.5 * self.log_b.exp() * q**2).sum(-1)

    def grad_T(self, p):
        return self.log_a.exp() * p

    def grad_V(self, q):
        return self.log_b.exp() * q

    def vector_field(self, t, z):
        q, p = split(z)
        return torch.cat([self.grad_T(p), -self.grad_V(q)], -1)

    def forward(self, t, z):
        return self.vector_field(t, z)


class PositionVerlet(SplittingIntegrator):
    """Drift-kick-drift Stormer-Verlet: order 2, symplectic, symmetric, needs separable H (its
    type says so: a splitting integrator)."""

    name = "toy-position-verlet"
    order = 2
    symplectic = True
    time_reversible = True

    def step(self, dynamics, t, z, dt):
        q, p = split(z)
        q = q + 0.5 * dt * dynamics.grad_T(p)
        p = p - dt * dynamics.grad_V(q)
        q = q + 0.5 * dt * dynamics.grad_T(p)
        return torch.cat([q, p], -1)


@pytest.fixture
def registered(monkeypatch):
    """The three toys in the package's registries, for this test only."""
    monkeypatch.setitem(SYSTEMS, QuarticOscillator.name, QuarticOscillator)
    monkeypatch.setitem(MODELS, QuadraticEnergy.kind, QuadraticEnergy)
    monkeypatch.setitem(INTEGRATORS, PositionVerlet.name, PositionVerlet)


def test_a_toy_integrator_from_outside_integrates_a_toy_system_at_its_declared_order(registered):
    system = sl.get_system("toy-quartic")
    z0 = system.sample(4, seed=1)
    T = 2.0
    ref = sl.integrate(sl.discretize(system, "gauss-legendre-6", 0.005), z0, 400, save_every=400).z[-1]
    errs = []
    for dt in (0.1, 0.05, 0.025):
        flow = sl.discretize(system, "toy-position-verlet", dt)
        errs.append(float((sl.integrate(flow, z0, round(T / dt), save_every=1000).z[-1] - ref).abs().max()))
    slope = np.polyfit(np.log([0.1, 0.05, 0.025]), np.log(errs), 1)[0]
    assert abs(slope - 2.0) < 0.2, (slope, errs)
    # and the registry's checks apply to it: it needs a separable H
    with pytest.raises(sl.SymplearnError, match="not separable.*implicit-midpoint"):
        sl.discretize(sl.get_system("double-pendulum"), "toy-position-verlet", 0.01)


def test_a_toy_model_from_outside_is_built_fitted_and_diagnosed(registered):
    """``fit`` (derivative loss) recovers the oscillator's H = p^2/2 + omega^2 q^2/2 with the
    toy model: a = 1, b = omega^2 to 1e-3 (noise-free data, 400 Adam steps). Its flow under the
    toy integrator then keeps areas (a symplectic map: area ratio 1 to the transported curve's
    accuracy, 1e-6 here) and has a zero Lyapunov exponent: the map is linear, a rotation in
    coordinates stretched by about omega, so |v(t)| / |v(0)| stays within omega^2 = 1.69 < 2 and
    the estimate over T = 100 is below log(2) / T. The quartic oscillator shears: its tangent grows
    linearly, and log(c T) / T < 0.05 at T = 100."""
    omega = 1.3
    data = sl.generate_dataset(sl.get_system("oscillator", omega=omega), n_traj=8, dt=0.1, n_steps=20, seed=0)
    model = build_model("toy-quadratic", n_dof=1).double()
    assert model.config == {"kind": "toy-quadratic", "n_dof": 1}
    sl.fit(model, data, steps=400, batch_size=128, lr=0.05, seed=0, progress=False)
    assert abs(float(model.log_a.detach().exp()) - 1.0) < 1e-3
    assert abs(float(model.log_b.detach().exp()) - omega**2) < 1e-3

    flow = sl.discretize(model, "toy-position-verlet", 0.05)
    loop = dg.square_loop(torch.tensor([0.5, 0.0], dtype=torch.float64), 0.2, 32)
    with torch.no_grad():
        tr = dg.transport_loop(flow, loop, 200, save_every=50)
        ly = dg.lyapunov_exponent(flow, torch.tensor([[0.5, 0.0]], dtype=torch.float64), 2000)
    assert abs(tr.area_ratio - 1.0) < 1e-6
    assert abs(ly.mean) < math.log(2.0) / 100.0

    # the toy system's flow, through the same diagnostics
    system = sl.get_system("toy-quartic")
    ly_sys = dg.lyapunov_exponent(
        sl.discretize(system, "toy-position-verlet", 0.05), system.sample(2, seed=0), 2000
    )
    assert float(ly_sys.exponent.abs().max()) < 0.05


class QuarticEnergy(HamiltonianDynamics):
    """Only an energy, ``H = q^2 / 2 + p^4 / 4``: the vector field comes from the interface."""

    n_dof = 1

    def hamiltonian(self, z):
        return 0.5 * z[..., 0] ** 2 + 0.25 * z[..., 1] ** 4


def test_an_energy_alone_is_a_dynamics_with_the_field_j_grad_h():
    dyn = QuarticEnergy()
    z = torch.randn(5, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = torch.stack([z[..., 1] ** 3, -z[..., 0]], -1)  # (dH/dp, -dH/dq)
    torch.testing.assert_close(dyn.vector_field(0.0, z), expected, rtol=1e-14, atol=1e-14)
    # differentiable through the field when gradients are on (training through an integrator)
    zg = z.clone().requires_grad_(True)
    (dyn.vector_field(0.0, zg)[..., 0].sum()).backward()
    torch.testing.assert_close(zg.grad[..., 1], 3 * z[..., 1] ** 2, rtol=1e-14, atol=1e-14)
    # and the default implicit midpoint keeps its energy error bounded, O(dt^2), over a long run
    traj = sl.integrate(sl.discretize(dyn, dt=0.05), z[0], 2000, save_every=100, grad=False)
    H = dyn.hamiltonian(traj.z)
    assert float(((H - H[0]).abs() / H[0]).max()) < 2e-3
