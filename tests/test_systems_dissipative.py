"""Damped and forced ground truth: exact solutions, the energy balance along exact trajectories
(to round-off), and measured orders of RK4, Gauss-Legendre-4 and implicit midpoint on a forced
oscillator (integrators carry t)."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import newton_cotes

from symplearn import discretize, integrate
from symplearn._errors import SymplearnError
from symplearn.systems import PORT_SYSTEMS, get_port_system

F64 = torch.float64


def composite_newton_cotes(y: np.ndarray, h: float, degree: int = 6) -> np.ndarray:
    """Integral over the whole sample range of ``y (T, ...)`` (T - 1 a multiple of ``degree``)
    by the composite closed Newton-Cotes rule of that degree (error O(h^(degree + 2)))."""
    w, _ = newton_cotes(degree, 1)
    n = y.shape[0] - 1
    assert n % degree == 0
    blocks = y[:-1].reshape(n // degree, degree, *y.shape[1:])
    ends = y[degree::degree]
    total = (w[:-1].reshape(1, degree, *([1] * (y.ndim - 1))) * blocks).sum((0, 1)) + w[-1] * ends.sum(0)
    return h * total


def test_registry_and_parameters():
    assert set(PORT_SYSTEMS) == {
        "linear-oscillator",
        "damped-oscillator",
        "forced-oscillator",
        "dhnn-spring",
        "duffing",
        "duffing-chaotic",
    }
    assert get_port_system("damped-oscillator").gamma_p == 0.3
    s = get_port_system("duffing-chaotic")
    assert (s.gamma, s.f, s.omega, s.phase) == (0.1, 0.39, 1.4, math.pi / 2)
    with pytest.raises(SymplearnError, match="gamma_p"):
        get_port_system("damped-oscillator", gamma_p=-0.1)
    with pytest.raises(SymplearnError, match="valid damped/forced system names"):
        get_port_system("dampd-oscillator")


@pytest.mark.parametrize("name", sorted(PORT_SYSTEMS))
def test_field_is_port_hamiltonian_and_R_is_psd(name):
    """The analytic field equals (J - R) grad H0 + F(t), grad H0 matches autograd, R is PSD, and
    grad D = -R grad H0 for the declared Rayleigh potential."""
    s = get_port_system(name)
    z = torch.randn(64, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    t = torch.rand(64, dtype=F64, generator=torch.Generator().manual_seed(2)) * 10
    zz = z.clone().requires_grad_(True)
    g = torch.autograd.grad(s.hamiltonian(zz).sum(), zz)[0]
    assert torch.allclose(g, s.grad_hamiltonian(z), atol=1e-13)
    R = s.dissipation_matrix(z)
    assert torch.allclose(R, R.mT) and bool((torch.linalg.eigvalsh(R) >= -1e-15).all())
    general = torch.cat([g[:, 1:], -g[:, :1]], -1) - torch.einsum("bij,bj->bi", R, g) + s.forcing(t)
    assert torch.allclose(s.vector_field(t, z), general, atol=1e-13)
    gd = torch.autograd.grad(s.rayleigh_potential(zz).sum(), zz)[0]
    assert torch.allclose(gd, -torch.einsum("bij,bj->bi", R, g), atol=1e-13)
    assert s.conserved_quantities(z) == {}
    assert bool((s.dissipated_power(t, z) >= 0).all())


def test_damped_oscillator_exact_solution_is_the_textbook_formula():
    """exact_solution (matrix exponential) against q(t) = e^{-gt/2}(q0 cos wt + (p0 + g q0/2)/w sin wt)."""
    s = get_port_system("damped-oscillator")
    g = s.gamma_p
    w = math.sqrt(1 - g**2 / 4)
    z0 = torch.tensor([[1.0, 0.3], [-0.5, 0.8]], dtype=F64)
    t = torch.linspace(0, 20, 101, dtype=F64)
    q0, p0 = z0[:, 0], z0[:, 1]
    e = torch.exp(-g * t / 2)[:, None]
    c, sn = torch.cos(w * t)[:, None], torch.sin(w * t)[:, None]
    q = e * (q0 * c + (p0 + g * q0 / 2) / w * sn)
    p = e * (p0 * c - (q0 + g * p0 / 2) / w * sn)  # p = q'
    exact = s.exact_solution(z0, t)
    assert torch.allclose(exact[..., 0], q, atol=1e-14) and torch.allclose(exact[..., 1], p, atol=1e-14)


@pytest.mark.parametrize(
    "name", ["forced-oscillator", "damped-oscillator", "dhnn-spring", "linear-oscillator"]
)
def test_linear_exact_solution_satisfies_the_ode(name):
    """d/dt of the exact solution (complex-step-free: central differences of order 4) equals the
    field, and the solution starts at z0, also from a nonzero t0."""
    s = get_port_system(
        name,
        **({"f": 0.7, "gamma_p": 0.2, "Omega": 2.1, "phase": 0.4} if name == "linear-oscillator" else {}),
    )
    z0 = torch.tensor([[1.0, 0.3], [-0.5, 0.8]], dtype=F64)
    t0, h = 0.7, 1e-3
    t = torch.linspace(t0, t0 + 5, 11, dtype=F64)
    assert torch.allclose(s.exact_solution(z0, t[:1], t0=t0)[0], z0, atol=1e-15)
    zs = [s.exact_solution(z0, t + k * h, t0=t0) for k in (-2, -1, 1, 2)]
    deriv = (zs[0] - 8 * zs[1] + 8 * zs[2] - zs[3]) / (12 * h)
    z = s.exact_solution(z0, t, t0=t0)
    field = s.vector_field(t[:, None], z)
    assert float((deriv - field).abs().max()) < 1e-9


def test_resonance_is_refused():
    s = get_port_system("linear-oscillator", f=1.0, Omega=1.0)
    with pytest.raises(SymplearnError, match="resonance"):
        s.exact_solution(torch.zeros(1, 2, dtype=F64), torch.tensor([1.0], dtype=F64))


@pytest.mark.parametrize(
    "name", ["damped-oscillator", "forced-oscillator", "dhnn-spring", "duffing", "duffing-chaotic"]
)
def test_energy_balance_along_gauss_legendre_6_trajectories(name):
    """H0(T) - H0(0) = int_0^T (forcing power - dissipated power) dt along GL6 trajectories at a
    small step, the integral by the composite degree-6 Newton-Cotes rule: agreement to ~1e-12,
    i.e. the declared energy, dissipation and forcing account for every joule."""
    s = get_port_system(name)
    z0 = torch.tensor([[1.0, 0.3], [-0.5, 0.8], [1.5, -1.0]], dtype=F64)
    dt, n = 0.01, 600
    t, z = integrate(discretize(s, "gauss-legendre-6", dt), z0, n, t0=0.25)[:2]
    rate = s.energy_rate(t[:, None], z).numpy()
    balance = composite_newton_cotes(rate, dt)
    dH = (s.energy(z[-1]) - s.energy(z[0])).numpy()
    scale = np.abs(composite_newton_cotes(np.abs(rate), dt)).max()
    assert scale > 0.1  # the balance is not trivially zero
    assert np.abs(balance - dH).max() < 1e-11 * max(1.0, scale), (balance, dH)


@pytest.mark.parametrize("name", ["forced-oscillator", "damped-oscillator"])
def test_energy_balance_on_the_exact_solution(name):
    s = get_port_system(name)
    z0 = torch.tensor([[1.0, 0.3], [-0.5, 0.8]], dtype=F64)
    dt = 0.005
    t = torch.arange(0, 1201, dtype=F64) * dt
    z = s.exact_solution(z0, t)
    rate = s.energy_rate(t[:, None], z).numpy()
    dH = (s.energy(z[-1]) - s.energy(z[0])).numpy()
    assert np.abs(composite_newton_cotes(rate, dt) - dH).max() < 1e-12


ORDERS = {"rk4": 4, "gauss-legendre-4": 4, "implicit-midpoint": 2}
DTS = {4: [0.2, 0.1, 0.05, 0.025], 2: [0.1, 0.05, 0.025, 0.0125]}


@pytest.mark.parametrize("name", list(ORDERS))
def test_measured_order_on_the_forced_oscillator(name):
    """Integrators that drop or misplace t (stages at t instead of t + c_i dt) fall to order 1 on
    a forced system; the measured log-log slope against the exact solution is the declared order."""
    s = get_port_system("forced-oscillator", gamma_p=0.1)
    z0 = torch.tensor([[1.0, 0.3], [-0.5, 0.8]], dtype=F64)
    t0, T = 0.4, 3.0
    exact = s.exact_solution(z0, torch.tensor([t0 + T], dtype=F64), t0=t0)[0]
    errs = []
    for dt in DTS[ORDERS[name]]:
        n = round(T / dt)
        z = integrate(discretize(s, name, dt), z0, n, t0=t0, save_every=n).z
        errs.append(float((z[-1] - exact).norm(dim=-1).max()))
    slope = np.polyfit(np.log(DTS[ORDERS[name]]), np.log(errs), 1)[0]
    assert abs(slope - ORDERS[name]) < 0.3, (name, slope, errs)
