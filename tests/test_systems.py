"""Ground-truth systems: vector fields against autograd of the Hamiltonian, separable pieces,
Legendre transform and Euler-Lagrange accelerations, exact solutions against Gauss-Legendre-6,
conserved quantities along accurate integration, the seeded samplers, and clear errors."""

import math

import pytest
import torch
from conftest import tol

import symplearn as sl
from symplearn._errors import SymplearnError
from symplearn.dynamics import join, split
from symplearn.geometry import (
    batch_jacobian,
    gradient,
    poisson_bracket,
    symplectic_gradient,
    symplecticity_defect,
)
from symplearn.systems import SYSTEMS, cartesian_to_polar, get_system, polar_to_cartesian, solve_kepler

F64 = torch.float64
GL6 = sl.get_integrator("gauss-legendre-6")

# non-default parameters, so that a swapped or ignored parameter cannot go unnoticed
CASES = {
    "oscillator": {"omega": 1.7},
    "pendulum": {"g": 9.81, "L": 0.8},
    "double-pendulum": {"m1": 1.3, "m2": 0.7, "l1": 0.9, "l2": 1.4, "g": 9.5},
    "kepler": {"k": 1.3},
    "kepler-polar": {"k": 1.3},
    "henon-heiles": {"lam": 1.2},
    "two-body-spring": {"k": 1.3},
}
NAMES = list(CASES)
SEPARABLE = ["oscillator", "pendulum", "kepler", "henon-heiles", "two-body-spring"]
NON_SEPARABLE = ["double-pendulum", "kepler-polar"]


def make(name):
    return get_system(name, **CASES[name])


def rel_err(a, b):
    """max |a - b| / max(1, max |b|)."""
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


# -- registry and documentation ---------------------------------------------------------------
def test_registry_names_parameters_and_defaults():
    assert list(SYSTEMS)[: len(NAMES)] == NAMES  # the few-degree-of-freedom systems, first
    assert {n: SYSTEMS[n].PARAMS for n in NAMES} == {
        "oscillator": {"omega": 1.0},
        "pendulum": {"g": 9.81, "L": 1.0},
        "double-pendulum": {"m1": 1.0, "m2": 1.0, "l1": 1.0, "l2": 1.0, "g": 9.81},
        "kepler": {"k": 1.0},
        "kepler-polar": {"k": 1.0},
        "henon-heiles": {"lam": 1.0},
        "two-body-spring": {"k": 1.0},
    }
    for name, cls in SYSTEMS.items():
        assert cls.name == name
    for name in NAMES:
        cls = SYSTEMS[name]
        s = make(name)
        assert s.params == {**cls.PARAMS, **CASES[name]}
        assert all(getattr(s, k) == v for k, v in s.params.items())


@pytest.mark.parametrize("name", NAMES)
def test_docstring_gives_the_hamiltonian_with_the_parameter_names(name):
    doc = SYSTEMS[name].__doc__
    assert "H = " in doc
    for param in SYSTEMS[name].PARAMS:
        assert param in doc, (name, param)


# -- vector fields and separable pieces --------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_vector_field_is_symplectic_gradient_of_hamiltonian(name, dtype):
    s = make(name)
    z = s.sample(64, seed=1, dtype=dtype)
    vf = s.vector_field(0.0, z)
    auto = symplectic_gradient(s.hamiltonian, z)
    assert vf.dtype == dtype and vf.shape == z.shape
    err = ((vf - auto).abs() / (1.0 + auto.abs())).max()
    assert err < tol(dtype, 1e-12, 1e-5), float(err)
    # batch shapes: (2, 32, 2n) gives the same rows as (64, 2n)
    assert torch.equal(s.vector_field(0.0, z.reshape(2, 32, -1)).reshape(64, -1), vf)


def _mixed_hessian(s, z):
    """d^2 H / dq dp at each row of z: (B, n, n)."""
    n = s.n_dof
    Hs = torch.stack([torch.autograd.functional.hessian(s.hamiltonian, zi) for zi in z])
    return Hs[:, :n, n:]


@pytest.mark.parametrize("name", SEPARABLE)
def test_separable_pieces_are_the_gradients_of_the_hamiltonian(name, dtype):
    s = make(name)
    assert isinstance(s, sl.SeparableHamiltonian)
    z = s.sample(32, seed=2, dtype=dtype)
    q, p = split(z)
    dH = gradient(s.hamiltonian, z)
    t = tol(dtype, 1e-12, 1e-5)
    assert rel_err(s.grad_V(q), dH[..., : s.n_dof]) < t
    assert rel_err(s.grad_T(p), dH[..., s.n_dof :]) < t
    assert rel_err(s.vector_field(0.0, z), join(s.grad_T(p), -s.grad_V(q))) < t
    # H = T(p) + V(q): no coupling between q and p
    assert float(_mixed_hessian(s, z[:4].double()).abs().max()) < 1e-12


@pytest.mark.parametrize("name", NON_SEPARABLE)
def test_non_separable_systems_declare_it(name):
    s = make(name)
    assert not isinstance(s, sl.SeparableHamiltonian)
    # the kinetic energy really depends on q: the mixed Hessian is far from zero
    z = s.sample(4, seed=3)
    assert float(_mixed_hessian(s, z).abs().amax(dim=(-1, -2)).min()) > 1e-3
    with pytest.raises(SymplearnError, match="not separable.*gauss-legendre-6"):
        sl.integrate(sl.discretize(s, sl.get_integrator("verlet"), 0.01), z, 1)


# -- Lagrangian side ------------------------------------------------------------------------------
def _lagrangian_states(s, dtype, n=32):
    gen = torch.Generator().manual_seed(5)
    q, _ = split(s.sample(n, seed=4))
    qdot = torch.randn(q.shape, generator=gen, dtype=F64)
    return q.to(dtype), qdot.to(dtype)


@pytest.mark.parametrize("name", NAMES)
def test_legendre_transform_is_consistent(name, dtype):
    s = make(name)
    assert s.has_lagrangian
    q, qdot = _lagrangian_states(s, dtype)
    t = tol(dtype, 1e-12, 2e-5)
    p = s.momenta(q, qdot)
    # p = dL/d(q_dot)
    dL = gradient(lambda v: s.lagrangian(q, v), qdot)
    assert rel_err(p, dL) < t
    # velocities and momenta are inverse maps
    assert rel_err(s.velocities(q, p), qdot) < t
    q2, p2 = split(s.sample(32, seed=6, dtype=dtype))
    assert rel_err(s.momenta(q2, s.velocities(q2, p2)), p2) < t
    # H(q, p) = q_dot . p - L(q, q_dot)
    H = s.hamiltonian(join(q, p))
    assert rel_err(H, (qdot * p).sum(-1) - s.lagrangian(q, qdot)) < t
    # dq/dt of the Hamiltonian field is the velocity
    assert rel_err(split(s.vector_field(0.0, join(q, p)))[0], qdot) < t


@pytest.mark.parametrize("name", NAMES)
def test_acceleration_agrees_with_the_hamiltonian_vector_field(name):
    """d/dt p(q, q_dot) = dp/dq q_dot + dp/dq_dot q_ddot must equal dp/dt of the Hamiltonian field."""
    s = make(name)
    q, qdot = _lagrangian_states(s, F64)
    n = s.n_dof
    qddot = s.acceleration(q, qdot)
    Jp = batch_jacobian(lambda x: s.momenta(x[..., :n], x[..., n:]), join(q, qdot))  # (B, n, 2n)
    dpdt_lagrange = (Jp[..., :n] @ qdot[..., None] + Jp[..., n:] @ qddot[..., None])[..., 0]
    dpdt_hamilton = split(s.vector_field(0.0, join(q, s.momenta(q, qdot))))[1]
    assert rel_err(dpdt_lagrange, dpdt_hamilton) < 1e-12


def test_double_pendulum_lagrangian_is_kinetic_minus_potential_of_the_two_masses():
    """Independent derivation from the Cartesian positions of the bobs (pivot at the origin)."""
    s = make("double-pendulum")
    m1, m2, l1, l2, g = (s.params[k] for k in ("m1", "m2", "l1", "l2", "g"))
    q, qdot = _lagrangian_states(s, F64)
    (q1, q2), (w1, w2) = q.unbind(-1), qdot.unbind(-1)
    y1 = -l1 * torch.cos(q1)  # heights; x1 = l1 sin q1, x2 = x1 + l2 sin q2
    y2 = y1 - l2 * torch.cos(q2)
    vx1, vy1 = l1 * torch.cos(q1) * w1, l1 * torch.sin(q1) * w1
    vx2, vy2 = vx1 + l2 * torch.cos(q2) * w2, vy1 + l2 * torch.sin(q2) * w2
    T = 0.5 * m1 * (vx1**2 + vy1**2) + 0.5 * m2 * (vx2**2 + vy2**2)
    V = m1 * g * y1 + m2 * g * y2 + (m1 + m2) * g * l1 + m2 * g * l2  # zero at the hanging rest
    assert rel_err(s.lagrangian(q, qdot), T - V) < 1e-12
    assert float(s.hamiltonian(torch.zeros(1, 4, dtype=F64)).abs()) == 0.0
    up = torch.tensor([[math.pi, math.pi, 0.0, 0.0]], dtype=F64)
    assert float(s.hamiltonian(up)) == pytest.approx(s.V_max, rel=1e-14)


def test_polar_and_cartesian_kepler_are_the_same_system():
    cart, pol = make("kepler"), make("kepler-polar")
    zc = cart.sample(16, seed=7)
    zp = cartesian_to_polar(zc)
    assert rel_err(polar_to_cartesian(zp), zc) < 1e-14
    assert rel_err(pol.hamiltonian(zp), cart.hamiltonian(zc)) < 1e-14
    # the change of variables is canonical and carries one vector field onto the other
    A = batch_jacobian(polar_to_cartesian, zp)
    assert float(symplecticity_defect(A).max()) < 1e-13
    assert rel_err((A @ pol.vector_field(0.0, zp)[..., None])[..., 0], cart.vector_field(0.0, zc)) < 1e-13
    # and the Lagrangians agree (q_dot maps by the Jacobian of the position map)
    rdot = torch.randn(16, 2, dtype=F64, generator=torch.Generator().manual_seed(8))
    qc_dot = (A[..., :2, :2] @ rdot[..., None])[..., 0]
    assert rel_err(pol.lagrangian(zp[..., :2], rdot), cart.lagrangian(zc[..., :2], qc_dot)) < 1e-13


# -- exact solutions ----------------------------------------------------------------------------
def test_oscillator_exact_solution_agrees_with_gauss_legendre(dtype):
    s = make("oscillator")
    z0 = s.sample(8, seed=9, dtype=dtype)
    traj = sl.integrate(sl.discretize(s, GL6, 0.01), z0, 600, save_every=50)
    exact = s.exact_solution(z0, traj.t)
    assert exact.shape == traj.z.shape and exact.dtype == dtype
    assert rel_err(traj.z, exact) < tol(dtype, 1e-10, 2e-5)
    assert torch.equal(s.exact_solution(z0, [0.0])[0], z0)


def test_kepler_exact_solution_agrees_with_gauss_legendre():
    s = make("kepler")
    # moderate eccentricities (the default), and an exactly circular orbit
    z0 = torch.cat([s.sample(6, seed=10), s.sample(1, eccentricity_range=(0.0, 0.0), seed=11)])
    traj = sl.integrate(sl.discretize(s, GL6, 0.005), z0, 1200, save_every=100)  # t up to 6: 1-3 orbits
    assert rel_err(s.exact_solution(z0, traj.t), traj.z) < 1e-10
    moved = (traj.z - z0).norm(dim=-1).amax(0)
    assert float(moved.min()) > 0.5  # every orbit went a good way round


def test_kepler_polar_exact_solution_agrees_with_gauss_legendre_and_unwraps_theta():
    s = make("kepler-polar")
    z0 = s.sample(6, seed=12)
    traj = sl.integrate(sl.discretize(s, GL6, 0.005), z0, 1200, save_every=20)
    exact = s.exact_solution(z0, traj.t)
    assert rel_err(exact, traj.z) < 1e-10
    # theta is continuous and turns monotonically, in the sense of p_theta, past several pi
    dth = exact[1:, :, 1] - exact[:-1, :, 1]
    assert bool((dth * torch.sign(z0[:, 3]) > 0).all())
    assert float((exact[-1, :, 1] - exact[0, :, 1]).abs().max()) > 2 * math.pi
    # and it is the Cartesian exact solution in other coordinates
    cart = make("kepler").exact_solution(polar_to_cartesian(z0), traj.t)
    assert rel_err(polar_to_cartesian(exact), cart) < 1e-12


def test_kepler_exact_solution_on_very_eccentric_orbits():
    """e up to 0.97 (too hard for a fixed-step check): the flow property, time reversal and the
    invariants hold along the exact solution over many orbits, and a(1 - e) <= r <= a(1 + e)."""
    s = make("kepler")
    z0 = s.sample(8, eccentricity_range=(0.9, 0.97), seed=13)
    t = torch.linspace(0.0, 60.0, 3001, dtype=F64)
    z = s.exact_solution(z0, t)
    t1 = torch.tensor([23.7], dtype=F64)
    later = s.exact_solution(z[1000], t1)[0]  # z(20 + 23.7)
    assert rel_err(later, s.exact_solution(z0, t[1000] + t1)[0]) < 1e-9
    assert rel_err(s.exact_solution(z[-1], -t[-1:])[0], z0) < 1e-9
    c0, c = s.conserved_quantities(z0), s.conserved_quantities(z)
    for key in ("energy", "angular_momentum", "runge_lenz"):
        assert rel_err(c[key], c0[key].expand_as(c[key])) < 1e-11, key
    a = -s.k / (2 * c0["energy"])
    e = c0["runge_lenz"].norm(dim=-1) / s.k
    r = z[..., :2].norm(dim=-1)
    assert bool((r >= a * (1 - e) * (1 - 1e-12)).all() and (r <= a * (1 + e) * (1 + 1e-12)).all())
    assert torch.allclose(r.amax(0), a * (1 + e), rtol=1e-4)  # apoapsis, where the body is slow


def test_exact_kepler_refuses_unbound_and_radial_orbits():
    s = make("kepler")
    t = torch.tensor([0.0, 1.0], dtype=F64)
    with pytest.raises(SymplearnError, match="bound"):
        s.exact_solution(torch.tensor([1.0, 0.0, 0.0, 2.0], dtype=F64), t)
    with pytest.raises(SymplearnError, match="angular momentum"):
        s.exact_solution(torch.tensor([1.0, 0.0, 0.5, 0.0], dtype=F64), t)


def test_solve_kepler_residual_and_unwrapping(dtype):
    M = torch.linspace(-40.0, 40.0, 801, dtype=dtype)[:, None]
    e = torch.tensor([0.0, 0.3, 0.9, 0.999], dtype=dtype)
    E = solve_kepler(M, e)
    E64, M64, e64 = E.double(), M.double(), e.double()
    residual = (E64 - e64 * torch.sin(E64) - M64).abs()
    assert float(residual.max()) < tol(dtype, 1e-13, 1e-5)
    # continuous in M and shifted by 2 pi per revolution (up to the rounding of M + 2 pi, which
    # dE/dM = 1 / (1 - e cos E) amplifies near periapsis)
    shifted = solve_kepler(M + 2 * math.pi, e)
    d = (shifted - E - 2 * math.pi) * (1 - e * torch.cos(E))
    assert float(d.abs().max()) < tol(dtype, 1e-13, 1e-5)
    assert bool((E[1:] >= E[:-1]).all())
    with pytest.raises(SymplearnError, match="elliptic"):
        solve_kepler(M, 1.0)


# -- conserved quantities -----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_conserved_quantities_are_conserved_along_gauss_legendre(name):
    s = make(name)
    z0 = s.sample(4, seed=14)
    traj = sl.integrate(sl.discretize(s, GL6, 0.01), z0, 500, save_every=25)
    assert float((traj.z - z0).abs().amax(dim=(0, 2)).min()) > 0.1  # the states really moved
    quantities = s.conserved_quantities(traj.z)
    expected = {"energy"} | ({"angular_momentum", "runge_lenz"} if name.startswith("kepler") else set())
    expected |= {"total_momentum"} if name == "two-body-spring" else set()
    assert set(quantities) == expected
    for key, Q in quantities.items():
        Q0 = Q[0]
        scale = Q0.abs().clamp(min=1.0) if key != "runge_lenz" else s.k
        drift = float(((Q - Q0) / scale).abs().max())
        assert drift < 1e-9, (key, drift)


@pytest.mark.parametrize("name", ["kepler", "kepler-polar"])
def test_kepler_invariants_poisson_commute_with_h_and_runge_lenz_gives_eccentricity(name):
    s = make(name)
    z = s.sample(32, eccentricity_range=(0.1, 0.8), seed=15)

    def component(key, *i):
        return lambda x: s.conserved_quantities(x)[key][(..., *i)]

    for f in (component("angular_momentum"), component("runge_lenz", 0), component("runge_lenz", 1)):
        bracket = poisson_bracket(f, s.hamiltonian, z)
        assert float(bracket.abs().max()) < 1e-12
    # a non-conserved observable does not commute: the check above has teeth
    assert float(poisson_bracket(lambda x: x[..., 0], s.hamiltonian, z).abs().min()) > 1e-6
    c = s.conserved_quantities(z)
    A, L, E = c["runge_lenz"], c["angular_momentum"], c["energy"]
    assert rel_err((A**2).sum(-1), s.k**2 + 2 * E * L**2) < 1e-13
    # A points to the periapsis: A . q = L^2 - k r, so r = L^2 / (k + |A| cos(angle to A))
    q = polar_to_cartesian(z)[..., :2] if name == "kepler-polar" else z[..., :2]
    assert rel_err((A * q).sum(-1), L**2 - s.k * q.norm(dim=-1)) < 1e-13
    ecc = A.norm(dim=-1) / s.k
    assert bool(((ecc > 0.1 - 1e-12) & (ecc < 0.8 + 1e-12)).all())


# -- samplers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_sampler_is_seeded_and_respects_the_energy_range(name):
    s = make(name)
    lo, hi = s.ENERGY_RANGE
    rng_state = torch.get_rng_state()
    a = s.sample(200, seed=3)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global generator is untouched
    assert a.shape == (200, s.dim) and a.dtype == F64
    assert torch.equal(a, s.sample(200, seed=3))
    assert not torch.equal(a, s.sample(200, seed=4))
    assert torch.equal(s.sample(200, seed=3, dtype=torch.float32), a.float())
    E = s.hamiltonian(a)
    eps = 1e-12 * max(abs(lo), abs(hi))
    assert float(E.min()) >= lo - eps and float(E.max()) <= hi + eps
    # the range is filled, not just respected
    assert float(E.min()) < lo + 0.05 * (hi - lo) and float(E.max()) > hi - 0.05 * (hi - lo)
    # an explicit range
    lo2, hi2 = lo + 0.25 * (hi - lo), lo + 0.5 * (hi - lo)
    E2 = s.hamiltonian(s.sample(50, energy_range=(lo2, hi2), seed=5))
    assert float(E2.min()) >= lo2 - eps and float(E2.max()) <= hi2 + eps


def test_henon_heiles_samples_stay_in_the_bounded_well():
    s = make("henon-heiles")
    assert s.escape_energy == pytest.approx(1 / (6 * 1.2**2))
    z = s.sample(300, energy_range=(0.9 * s.escape_energy, 0.99 * s.escape_energy), seed=1)
    assert bool(s.in_well(z[:, :2]).all())
    # the well's corners are the saddles, at the escape energy
    c = 1 / s.lam
    saddles = torch.tensor(
        [[0.0, c], [math.sqrt(3) / 2 * c, -c / 2], [-math.sqrt(3) / 2 * c, -c / 2]], dtype=F64
    )
    V = s.potential(saddles)
    assert torch.allclose(V, torch.full_like(V, s.escape_energy), rtol=1e-14)
    assert float(s.grad_V(saddles).abs().max()) < 1e-14


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("pendulum", {"energy_range": (2.0, 1.0)}, "low <= high"),
        ("pendulum", {"energy_range": (float("nan"), 1.0)}, "low <= high"),
        ("pendulum", {"energy_range": "abc"}, "pair"),
        ("pendulum", {"energy_range": (-2.0, -1.0)}, "reachable"),
        ("double-pendulum", {"energy_range": (-1.0, -0.5)}, "reachable"),
        ("kepler", {"energy_range": (-0.5, 0.1)}, "bound orbits"),
        ("kepler-polar", {"energy_range": (0.1, 0.2)}, "bound orbits"),
        ("kepler", {"eccentricity_range": (0.5, 1.0)}, "eccentricity_range"),
        ("kepler", {"eccentricity_range": 0.5}, "eccentricity_range"),
        ("henon-heiles", {"energy_range": (0.05, 0.2)}, "escape energy"),
        ("henon-heiles", {"energy_range": (-0.1, 0.05)}, ">= 0"),
        ("oscillator", {"seed": -1}, "seed"),
        ("kepler", {"seed": 1.5}, "seed"),
    ],
)
def test_sampler_refuses_invalid_requests(name, kwargs, match):
    with pytest.raises(SymplearnError, match=match):
        get_system(name).sample(5, **kwargs)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_sampler_refuses_bad_counts(n):
    with pytest.raises(SymplearnError, match="must be an integer >= 1"):
        get_system("pendulum").sample(n)


# -- names and parameter values -------------------------------------------------------------------
def test_unknown_system_lists_the_valid_names():
    with pytest.raises(SymplearnError) as err:
        get_system("pendlum")
    msg = str(err.value)
    assert "'pendulum'" in msg and all(n in msg for n in NAMES)


@pytest.mark.parametrize(("name", "valid"), [(n, list(c.PARAMS)) for n, c in SYSTEMS.items()])
def test_unknown_parameter_lists_the_valid_ones(name, valid):
    with pytest.raises(SymplearnError, match="unknown parameter") as err:
        get_system(name, length=2.0)
    assert all(v in str(err.value) for v in valid)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("oscillator", {"omega": 0.0}, "omega must be > 0"),
        ("pendulum", {"L": 0.0}, "L must be > 0|g and L must be > 0"),
        ("pendulum", {"L": -1.0}, "L must be > 0|g and L must be > 0"),
        ("pendulum", {"g": float("inf")}, "finite"),
        ("pendulum", {"g": "abc"}, "must be a number"),
        ("double-pendulum", {"m1": 0.0}, "m1"),
        ("double-pendulum", {"l2": -1.0}, "l2"),
        ("double-pendulum", {"g": float("nan")}, "finite"),
        ("kepler", {"k": -1.0}, "k of kepler must be > 0"),
        ("kepler-polar", {"k": 0.0}, "k of kepler-polar must be > 0"),
        ("henon-heiles", {"lam": 0.0}, "lam"),
    ],
)
def test_invalid_parameter_values_are_refused(name, params, match):
    with pytest.raises(SymplearnError, match=match):
        get_system(name, **params)
