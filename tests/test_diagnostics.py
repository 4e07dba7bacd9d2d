"""Diagnostics: each against a known answer (exact formulas, conservation laws of the exact flow,
analytic Jacobians, scipy), plus clear errors for bad input."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from conftest import tol

import symplearn as sl
from symplearn import diagnostics as dg
from symplearn.dynamics import Dynamics, FlowMap, HamiltonianDynamics
from symplearn.geometry import symplectic_gradient
from symplearn.integrators import INTEGRATORS

F64 = torch.float64


# -- small dynamics with known answers -------------------------------------------------------
class Linear(Dynamics):
    """``dq_i/dt = a_i q_i``, ``dp_i/dt = b_i p_i``: divergence ``sum (a_i + b_i)``, area of the
    (q_i, p_i) projection scales by ``exp((a_i + b_i) t)``."""

    def __init__(self, a, b):
        self.a = torch.as_tensor(a, dtype=F64).reshape(-1)
        self.b = torch.as_tensor(b, dtype=F64).reshape(-1)
        self.n_dof = self.a.numel()

    def vector_field(self, t, z):
        n = self.n_dof
        return torch.cat([self.a.to(z) * z[..., :n], self.b.to(z) * z[..., n:]], -1)


class Saddle(HamiltonianDynamics):
    """``H = lam q p``: ``q = q0 e^{lam t}``, ``p = p0 e^{-lam t}``; Lyapunov exponent ``lam``."""

    n_dof = 1

    def __init__(self, lam):
        self.lam = lam

    def hamiltonian(self, z):
        return self.lam * z[..., 0] * z[..., 1]

    def vector_field(self, t, z):
        return torch.stack([self.lam * z[..., 0], -self.lam * z[..., 1]], -1)


class RotationMap(FlowMap):
    """The exact time-dt flow of the oscillator ``H = (q^2 + p^2)/2``: a rotation by ``-dt``."""

    n_dof = 1

    def __init__(self, dt):
        self.dt = dt

    def step(self, t, z):
        c, s = math.cos(self.dt), math.sin(self.dt)
        return torch.stack([c * z[..., 0] + s * z[..., 1], -s * z[..., 0] + c * z[..., 1]], -1)


class NetField(Dynamics):
    """``J grad H`` of a random scalar network (an untrained HNN) via geometry.symplectic_gradient."""

    n_dof = 1

    def __init__(self, seed=0, width=32, create_graph=False):
        gen = torch.Generator().manual_seed(seed)
        self.W1 = torch.randn(width, 2, generator=gen, dtype=F64)
        self.b1 = torch.randn(width, generator=gen, dtype=F64)
        self.w2 = torch.randn(width, generator=gen, dtype=F64) / width**0.5
        self.create_graph = create_graph

    def energy(self, z):
        return torch.tanh(z @ self.W1.T + self.b1) @ self.w2

    def vector_field(self, t, z):
        return symplectic_gradient(self.energy, z, create_graph=self.create_graph)


# -- invariants: bounded oscillation or drift -----------------------------------------------
def test_invariant_error_known_answers_for_oscillating_and_drifting_series():
    t = torch.linspace(0.0, 100.0, 1001, dtype=F64)
    osc = dg.invariant_error(2.0 * (1.0 + 0.01 * torch.sin(3.0 * t)), t)
    assert osc.verdict == "bounded" and osc.mode == "relative"
    assert osc.max == pytest.approx(0.01, rel=1e-3)
    assert abs(osc.slope) < 2e-6
    assert osc.rms == pytest.approx(0.01 / math.sqrt(2), rel=1e-2)

    drift = dg.invariant_error(2.0 * (1.0 + 1e-4 * t), t)
    assert drift.verdict == "drifting"
    assert drift.slope == pytest.approx(1e-4, rel=1e-10)
    assert drift.final == pytest.approx(1e-2, rel=1e-10)
    assert drift.first_envelope == pytest.approx(1e-4 * float(t[100]), rel=1e-10)  # first 101 samples
    assert drift.rms == pytest.approx(float((1e-4 * t).pow(2).mean().sqrt()), rel=1e-10)
    d = drift.as_dict()
    assert d["verdict"] == "drifting" and all(isinstance(d[k], float) for k in ("max", "slope", "rms"))


def test_invariant_error_vector_and_absolute_fallback():
    t = torch.linspace(0.0, 10.0, 201, dtype=F64)
    # a vector invariant that starts at zero: relative error undefined -> absolute, with a note
    v = torch.stack([1e-3 * torch.sin(t), torch.zeros_like(t)], -1)
    r = dg.invariant_error(v, t, vector=True)
    assert r.mode == "absolute" and "absolute" in r.note
    assert torch.allclose(r.errors, 1e-3 * torch.sin(t).abs(), atol=1e-18)
    # a rotating unit vector: |A(t) - A(0)| = 2 |sin(t/2)|
    u = torch.stack([torch.cos(t), torch.sin(t)], -1)
    r = dg.invariant_error(u[:, None, :], t, vector=True)
    assert r.errors.shape == (201, 1)
    assert torch.allclose(r.errors[:, 0], 2 * torch.sin(t / 2).abs(), atol=1e-14)


def test_energy_error_verlet_bounded_rk4_coarse_step_drifting(dtype):
    pend = sl.get_system("pendulum")
    z0 = torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=dtype)
    verlet = dg.energy_error(
        pend, sl.integrate(sl.discretize(pend, sl.get_integrator("verlet"), 0.1), z0, 2000)
    )
    rk4 = dg.energy_error(pend, sl.integrate(sl.discretize(pend, sl.get_integrator("rk4"), 0.2), z0, 2000))
    assert verlet.verdict == "bounded", verlet.as_dict()
    assert rk4.verdict == "drifting", rk4.as_dict()
    assert verlet.errors.shape == (2001, 2)
    assert 1e-3 < verlet.max < 0.05  # O(dt^2) oscillation of the modified energy
    assert rk4.last_envelope > 3 * rk4.first_envelope and rk4.slope > 0


def test_kepler_verlet_keeps_angular_momentum_exactly_and_energy_bounded_but_runge_lenz_precesses():
    kep = sl.get_system("kepler")
    z0 = kep.sample(3, eccentricity_range=(0.4, 0.6), seed=1)
    traj = sl.integrate(sl.discretize(kep, sl.get_integrator("verlet"), 0.01), z0, 4000, save_every=4)
    cq = kep.conserved_quantities(traj.z)
    L = dg.invariant_error(cq["angular_momentum"], traj.t)
    E = dg.energy_error(kep, traj)
    A = dg.invariant_error(cq["runge_lenz"], traj.t, vector=True)
    assert L.max < 1e-12  # Verlet kicks are parallel to q: L is conserved to round-off
    assert E.verdict == "bounded"
    assert A.verdict == "drifting" and A.slope > 0  # the discrete orbit precesses


# -- phase-space area --------------------------------------------------------------------------
def test_polygon_area_of_known_shapes(dtype):
    c = torch.tensor([0.7, -0.2], dtype=dtype)
    rel = tol(dtype, 1e-13, 1e-5)
    assert float(dg.polygon_area(dg.square_loop(c, 0.3, 16))) == pytest.approx(0.09, rel=rel)
    M, r = 12, 0.5
    exact = 0.5 * M * r**2 * math.sin(2 * math.pi / M)
    circ = dg.circle_loop(c, r, M)
    assert float(dg.signed_polygon_area(circ)) == pytest.approx(exact, rel=tol(dtype, 1e-13, 1e-5))
    assert float(dg.signed_polygon_area(circ.flip(0))) == pytest.approx(-exact, rel=tol(dtype, 1e-13, 1e-5))
    tri = torch.tensor(
        [[[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]], [[1.0, 1.0], [1.0, 3.0], [2.0, 1.0]]], dtype=dtype
    )
    assert torch.allclose(dg.polygon_area(tri), torch.tensor([6.0, 1.0], dtype=dtype))
    # two degrees of freedom: a square in the (q2, p2) plane has no area in (q1, p1)
    sq = dg.square_loop(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=dtype), 0.5, 8, plane=1)
    assert float(dg.polygon_area(sq, plane=1)) == pytest.approx(0.25, rel=tol(dtype, 1e-13, 1e-5))
    assert float(dg.polygon_area(sq, plane=0)) == 0.0
    assert float(dg.symplectic_area(sq)) == pytest.approx(0.25, rel=tol(dtype, 1e-13, 1e-5))


def test_transport_loop_pendulum_exact_flow_keeps_area_while_the_square_shears():
    pend = sl.get_system("pendulum")
    square = dg.square_loop(torch.tensor([1.5, 0.0], dtype=F64), 0.3, 64)
    gl6 = sl.get_integrator("gauss-legendre-6")
    res = dg.transport_loop(sl.discretize(pend, gl6, 0.1), square, 200, save_every=20)
    assert res.areas[0] == pytest.approx(0.09, rel=1e-13)
    assert res.perimeter_ratio > 10  # it really shears into a long sliver
    assert res.n_inserted > 500 and res.n_points[-1] == res.loops[-1].shape[0] and not res.saturated
    assert res.max_area_deviation < 1e-4, res.as_dict()
    # the same run without refinement loses the area: the check can fail
    coarse = dg.transport_loop(sl.discretize(pend, gl6, 0.1), square, 200, save_every=20, max_segment=1e9)
    assert coarse.n_inserted == 0 and coarse.max_area_deviation > 1e-3


def test_transport_loop_linear_field_scales_area_by_exp_of_divergence():
    a, b = 0.3, -0.1
    loop = dg.circle_loop(torch.tensor([0.5, -0.3], dtype=F64), 0.4, 48)
    res = dg.transport_loop(
        sl.discretize(Linear(a, b), sl.get_integrator("rk4"), 0.01), loop, 500, save_every=50
    )
    expected = torch.exp((a + b) * res.t)
    assert torch.allclose(res.areas / res.areas[0], expected, rtol=1e-9, atol=0)
    assert res.area_ratio == pytest.approx(math.exp(0.2 * 5.0), rel=1e-9)


def test_transport_loop_measures_the_exact_area_loss_of_rk4_on_the_oscillator():
    # RK4 on a linear oscillator is the linear map R(h A); its determinant per step is |R(i h)|^2
    h, n = 0.5, 100
    R = 1 + 1j * h + (1j * h) ** 2 / 2 + (1j * h) ** 3 / 6 + (1j * h) ** 4 / 24
    osc = sl.get_system("oscillator")
    loop = dg.square_loop(torch.tensor([1.0, 0.0], dtype=F64), 0.2, 16)
    res = dg.transport_loop(sl.discretize(osc, sl.get_integrator("rk4"), h), loop, n, save_every=n)
    assert res.area_ratio == pytest.approx(abs(R) ** (2 * n), rel=1e-12)
    assert res.area_ratio < 0.98


def test_transport_loop_two_degrees_of_freedom_conserves_the_symplectic_area_not_the_projection():
    # Henon-Heiles couples the two planes: the (x, p_x) projection of a loop changes, while the
    # Poincare integral invariant sum_i A_i is conserved by any symplectic map
    hh = sl.get_system("henon-heiles")
    loop = dg.square_loop(torch.tensor([0.1, 0.2, 0.3, -0.1], dtype=F64), 0.1, 32, plane=0)
    ver = dg.transport_loop(
        sl.discretize(hh, sl.get_integrator("verlet"), 0.05), loop, 400, save_every=50, max_segment=0.01
    )
    assert ver.max_area_deviation > 0.5
    assert ver.max_action_deviation < 1e-6
    rk4 = dg.transport_loop(sl.discretize(hh, sl.get_integrator("rk4"), 0.5), loop, 40, save_every=5)
    assert rk4.max_action_deviation > 1e-2  # a coarse non-symplectic step does not conserve it


def test_transport_loop_of_a_flow_map():
    rot = RotationMap(0.3)
    loop = dg.square_loop(torch.tensor([1.0, 0.5], dtype=F64), 0.4, 16)
    res = dg.transport_loop(sl.discretize(rot, None, None), loop, 50, save_every=10)
    assert res.max_area_deviation < 1e-13 and res.n_inserted == 0
    th = 0.3 * 50
    rotated = torch.stack(
        [
            math.cos(th) * loop[:, 0] + math.sin(th) * loop[:, 1],
            -math.sin(th) * loop[:, 0] + math.cos(th) * loop[:, 1],
        ],
        -1,
    )
    assert torch.allclose(res.loops[-1], rotated, atol=1e-12)
    with pytest.raises(sl.SymplearnError, match="built for dt=0.3"):
        dg.transport_loop(sl.discretize(rot, None, 0.1), loop, 5)


# -- symplecticity of a step -------------------------------------------------------------------
def test_map_symplecticity_verlet_is_symplectic_euler_has_the_exact_det(dtype):
    pend = sl.get_system("pendulum")
    z = pend.sample(16, seed=3, dtype=dtype)
    dt = 0.1
    ver = dg.map_symplecticity(sl.discretize(pend, sl.get_integrator("verlet"), dt), z)
    assert ver.defect.shape == (16,) and ver.max_defect < tol(dtype, 1e-12, 1e-5)
    eul = dg.map_symplecticity(sl.discretize(pend, sl.get_integrator("euler"), dt), z)
    exact_det = 1 + dt**2 * (pend.g / pend.L) * torch.cos(z[:, 0])  # det [[1, h], [-h g/L cos q, 1]]
    assert torch.allclose(eul.det, exact_det, atol=tol(dtype, 1e-13, 1e-5), rtol=0)
    # one degree of freedom: A^T J A = det(A) J, so the defect is sqrt(2) |det A - 1|
    assert torch.allclose(eul.defect, math.sqrt(2) * (exact_det - 1).abs(), atol=tol(dtype, 1e-13, 1e-5))
    assert eul.method == "autograd"


def test_map_symplecticity_of_gauss_legendre_on_the_double_pendulum_and_of_a_flow_map():
    dp = sl.get_system("double-pendulum")
    r = dg.map_symplecticity(
        sl.discretize(dp, sl.get_integrator("gauss-legendre-6"), 0.05), dp.sample(4, seed=0)
    )
    assert r.max_defect < 1e-11 and r.max_det_error < 1e-11
    r = dg.map_symplecticity(RotationMap(0.7), torch.randn(5, 2, dtype=F64))
    assert r.max_defect < 1e-15


def test_map_symplecticity_falls_back_to_finite_differences_when_autograd_cannot_see_the_field():
    z = torch.randn(6, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    rk4 = sl.get_integrator("rk4")
    fd = dg.map_symplecticity(sl.discretize(NetField(create_graph=False), rk4, 0.3), z)
    ad = dg.map_symplecticity(sl.discretize(NetField(create_graph=True), rk4, 0.3), z)
    assert fd.method == "finite-difference" and ad.method == "autograd"
    assert torch.allclose(fd.det, ad.det, atol=1e-8)
    assert ad.max_det_error > 1e-6  # RK4 is not volume preserving here: the check has teeth


# -- divergence and the loop integral ----------------------------------------------------------
def test_divergence_stats_and_grid(dtype):
    lin = Linear(0.3, -0.5)
    z = torch.randn(50, 2, dtype=dtype, generator=torch.Generator().manual_seed(0))
    s = dg.divergence_stats(lin, z)
    assert s.mean == pytest.approx(-0.2, abs=tol(dtype, 1e-14, 1e-6)) and s.n_points == 50
    assert dg.divergence_stats(sl.get_system("pendulum"), z).max_abs < tol(dtype, 1e-14, 1e-6)
    net = dg.divergence_stats(NetField(), z.double())  # autograd cannot see it: finite differences
    assert net.method == "finite-difference" and net.max_abs < 1e-8
    grid = dg.divergence_grid(lin, ((-1, 1), (-2, 2)), 7)
    assert grid.div.shape == (7, 7) and torch.allclose(grid.div, torch.full((7, 7), -0.2, dtype=F64))
    assert torch.allclose(grid.Q[0], torch.linspace(-1, 1, 7, dtype=F64))
    assert torch.allclose(grid.P[:, 0], torch.linspace(-2, 2, 7, dtype=F64))
    dp_grid = dg.divergence_grid(sl.get_system("double-pendulum"), ((-1, 1), (-1, 1)), 5, plane=1)
    assert dp_grid.div.abs().max() < 1e-12


def test_loop_integral_vanishes_for_symplectic_gradient_fields_to_the_stated_quadrature_bound():
    pend = sl.get_system("pendulum")
    w2 = pend.g / pend.L
    # a coarse irregular heptagon (no mirror symmetry that would cancel the errors) with 1 Gauss
    # point per edge: along an edge |d^2/ds^2 (dH/ds)| <= w2 |dq|^3 (the p^2/2 part is
    # integrated exactly), so the midpoint rule errs by at most sum w2 |dq|^3 / 24
    th = 2 * math.pi * torch.arange(7, dtype=F64) / 7 + 0.3
    rad = 1.0 + 0.3 * torch.sin(3 * th)
    loop = torch.stack([0.4 + rad * torch.cos(th), 0.2 + rad * torch.sin(th)], -1)
    dq = (loop.roll(-1, 0) - loop)[:, 0].abs()
    one = dg.loop_integral(pend, loop, nodes=1)
    assert 1e-6 < abs(one.gap) <= float((w2 * dq**3 / 24).sum())
    # 3 Gauss points: error <= sum w2 |dq|^7 (3!)^4 / (7 (6!)^3), plus round-off
    three = dg.loop_integral(pend, loop, nodes=3)
    bound3 = float((w2 * dq**7 * 6**4 / (7 * 720**3)).sum()) + 1e-14 * three.scale
    assert abs(three.gap) <= bound3 and abs(three.gap) < abs(one.gap) / 100
    # an untrained HNN-like field J grad H_theta on a fine circle: zero to round-off
    fine = dg.circle_loop(torch.tensor([0.5, 0.3], dtype=F64), 0.8, 64)
    net = dg.loop_integral(NetField(seed=2), fine)
    assert net.relative < 1e-12 and net.scale > 0.1


def test_loop_integral_of_linear_field_is_divergence_times_area(dtype):
    a, b = 0.3, -0.1
    lin = Linear(a, b)
    for loop in (
        dg.square_loop(torch.tensor([0.5, 0.3], dtype=dtype), 0.5, 8),
        dg.circle_loop(torch.tensor([-0.2, 0.1], dtype=dtype), 0.7, 40),
    ):
        r = dg.loop_integral(lin, loop)
        area = float(dg.polygon_area(loop))
        assert r.gap == pytest.approx((a + b) * area, rel=tol(dtype, 1e-12, 1e-5))
        assert r.enclosed_area == pytest.approx(area, rel=tol(dtype, 1e-12, 1e-5))
        assert r.divergence_estimate == pytest.approx(a + b, rel=tol(dtype, 1e-12, 1e-5))
        cw = dg.loop_integral(lin, loop.flip(0))  # clockwise: both signs flip
        assert cw.gap == pytest.approx(-r.gap, rel=tol(dtype, 1e-12, 1e-5))
        assert cw.divergence_estimate == pytest.approx(a + b, rel=tol(dtype, 1e-12, 1e-5))
    # two degrees of freedom, loop in the (q2, p2) plane: only the in-plane divergence counts
    lin2 = Linear([0.7, 0.3], [0.2, -0.1])
    sq = dg.square_loop(torch.zeros(4, dtype=dtype), 0.4, 8, plane=1)
    r2 = dg.loop_integral(lin2, sq)
    assert r2.gap == pytest.approx(0.2 * 0.16, rel=tol(dtype, 1e-12, 1e-5))


def test_loop_integral_equals_the_divergence_integrated_over_the_square_for_a_generic_field():
    # Green's theorem for a non-Hamiltonian field (a random MLP field, as a vanilla model learns):
    # oint alpha = iint div X dq dp, the right side by 24 x 24 Gauss-Legendre points on the square
    gen = torch.Generator().manual_seed(5)
    W1, b1 = torch.randn(16, 2, generator=gen, dtype=F64), torch.randn(16, generator=gen, dtype=F64)
    W2 = torch.randn(2, 16, generator=gen, dtype=F64) / 4

    def field(z):
        return torch.tanh(z @ W1.T + b1) @ W2.T

    lo, side = torch.tensor([-0.3, 0.1], dtype=F64), 0.8
    square = dg.square_loop(lo + side / 2, side, 64)
    x, w = np.polynomial.legendre.leggauss(24)
    nodes = torch.as_tensor((x + 1) / 2 * side, dtype=F64)
    Q, P = torch.meshgrid(lo[0] + nodes, lo[1] + nodes, indexing="ij")
    A, method = dg.field_jacobian(field, torch.stack([Q, P], -1))
    div = A[..., 0, 0] + A[..., 1, 1]
    ww = torch.as_tensor(np.outer(w, w) * (side / 2) ** 2, dtype=F64)
    green = float((div * ww).sum())
    r = dg.loop_integral(field, square)
    assert method == "autograd" and abs(green) > 1e-2  # a real gap, far from round-off
    assert r.gap == pytest.approx(green, rel=1e-9)
    assert r.divergence_estimate == pytest.approx(green / side**2, rel=1e-9)


# -- Poisson brackets and Noether --------------------------------------------------------------
def angular_momentum(z):
    return z[..., 0] * z[..., 3] - z[..., 1] * z[..., 2]


def test_angular_momentum_bracket_zero_with_kepler_nonzero_with_a_perturbed_energy():
    kep = sl.get_system("kepler")
    z = kep.sample(64, seed=0)
    assert dg.bracket_with_energy(angular_momentum, kep, z).abs().max() < 1e-14
    eps = 0.1

    def perturbed(z):  # breaks rotation invariance: V += eps x^2 / 2
        return kep.hamiltonian(z) + 0.5 * eps * z[..., 0] ** 2

    raw = dg.bracket_with_energy(angular_momentum, perturbed, z, normalised=False)
    assert torch.allclose(raw, eps * z[:, 0] * z[:, 1], atol=1e-14)  # {L, eps x^2/2} = eps x y
    assert dg.bracket_with_energy(angular_momentum, perturbed, z).abs().max() > 1e-2


def test_oscillator_energy_has_zero_bracket_and_position_does_not(dtype):
    osc = sl.get_system("oscillator", omega=2.0)
    z = osc.sample(32, seed=1, dtype=dtype)
    assert dg.bracket_with_energy(osc.hamiltonian, osc, z).abs().max() < tol(dtype, 1e-14, 1e-6)
    # {q, H} = dH/dp = p; normalised by |grad q| |grad H| = |(omega^2 q, p)|
    expected = z[:, 1] / torch.stack([4.0 * z[:, 0], z[:, 1]], -1).norm(dim=-1)
    got = dg.bracket_with_energy(lambda s: s[..., 0], osc, z)
    assert torch.allclose(got, expected, atol=tol(dtype, 1e-14, 1e-6))
    assert got.abs().max() > 0.5


# -- Lyapunov exponents ------------------------------------------------------------------------
def test_lyapunov_of_the_linear_saddle_is_lambda():
    lam = 0.7
    res = dg.lyapunov_exponent(
        sl.discretize(Saddle(lam), sl.get_integrator("rk4"), 0.01),
        torch.zeros(3, 2, dtype=F64),
        1000,
        transient=1000,
    )
    assert res.exponent.shape == (3,) and res.running.shape == (100, 3) and float(res.t[0]) > 0
    assert (res.exponent - lam).abs().max() < 1e-3
    assert res.mean == pytest.approx(lam, abs=1e-3)


def test_lyapunov_jvp_and_finite_difference_tangents_agree():
    pend = sl.get_system("pendulum")
    z0 = torch.tensor([[3.0, 0.0], [1.0, 1.0]], dtype=F64)
    kw = dict(renorm_every=5, seed=3)
    flow = sl.discretize(pend, sl.get_integrator("verlet"), 0.05)
    fd = dg.lyapunov_exponent(flow, z0, 40, **kw)
    ad = dg.lyapunov_exponent(flow, z0, 40, tangent="jvp", **kw)
    assert fd.method == "finite-difference" and ad.method == "jvp"
    assert torch.allclose(fd.running, ad.running, atol=1e-8)


def test_lyapunov_of_the_oscillator_goes_to_zero_like_one_over_t():
    # the tangent map of H = (p^2 + w^2 q^2)/2 maps the unit circle to ellipses with axes in
    # [1/w, w]: |log |v(t)|| <= log w, so |estimate| <= log(w) / t
    osc = sl.get_system("oscillator", omega=2.0)
    res = dg.lyapunov_exponent(
        sl.discretize(osc, sl.get_integrator("verlet"), 0.05), osc.sample(4, seed=0), 4000
    )
    bound = math.log(2.0) * 1.02  # Verlet's tangent map preserves a slightly modified ellipse
    assert (res.running.abs() * res.t[:, None]).max() <= bound
    assert res.exponent.abs().max() <= bound / 200.0
    assert res.running[:5].abs().max() > 0.05  # early estimates are far from 0: it decays


def test_lyapunov_of_the_double_pendulum_at_high_energy_is_positive_and_consistent():
    dp = sl.get_system("double-pendulum")
    gen = torch.Generator().manual_seed(0)
    z0 = torch.tensor([[2.0, 2.0, 0.0, 0.0]], dtype=F64) + 0.05 * torch.randn(8, 4, generator=gen, dtype=F64)
    assert float(dp.hamiltonian(z0).min()) > 35.0  # both arms well above horizontal
    T = 25.0
    means = {}
    for name, dt in [("rk4", 0.02), ("rk4", 0.01), ("gauss-legendre-4", 0.04)]:
        integ = sl.get_integrator(name, **({"tol": 1e-12} if name.startswith("gauss") else {}))
        res = dg.lyapunov_exponent(sl.discretize(dp, integ, dt), z0, round(T / dt), transient=round(2.0 / dt))
        means[(name, dt)] = res.mean
    vals = list(means.values())
    assert min(vals) > 0.7, means  # clearly chaotic (finite-time exponents of ~1.2 per unit time)
    assert max(vals) / min(vals) < 1.25, means  # 8 trajectories each: a statistical agreement


# -- Poincare sections -------------------------------------------------------------------------
def test_poincare_oscillator_crossings_at_exact_times():
    w = 1.7
    osc = sl.get_system("oscillator", omega=w)
    z0 = torch.tensor([[1.0, 0.0]], dtype=F64)  # q = cos(w t): q = 0 at w t = (k + 1/2) pi
    gl6 = sl.get_integrator("gauss-legendre-6")
    both = dg.poincare_section(sl.discretize(osc, gl6, 0.05), z0, 400, index=0, value=0.0, direction=0)
    k = torch.arange(len(both), dtype=F64)
    assert len(both) == math.floor(20.0 * w / math.pi - 0.5) + 1
    assert (both.t - (k + 0.5) * math.pi / w).abs().max() < 1e-8
    assert both.z[:, 0].abs().max() < 1e-14 and (both.traj == 0).all()
    down = dg.poincare_section(sl.discretize(osc, gl6, 0.05), z0, 400, direction=-1)  # q decreasing: even k
    assert torch.allclose(down.t, both.t[::2]) and (down.z[:, 1] < 0).all()
    up = dg.poincare_section(sl.discretize(osc, gl6, 0.05), z0, 400, direction=1)
    assert torch.allclose(up.t, both.t[1::2]) and (up.z[:, 1] > 0).all()


@pytest.mark.parametrize("name", list(INTEGRATORS))
def test_poincare_crossings_with_every_integrator_are_on_the_section_and_as_accurate_as_it(name):
    osc = sl.get_system("oscillator")
    integ = sl.get_integrator(name)
    dt = 0.001 if integ.order == 1 else 0.01
    z0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    n = round(5.0 / dt)
    sec = dg.poincare_section(sl.discretize(osc, integ, dt), z0, n, index=1, value=0.2, direction=0)
    assert sec.z[:, 1].sub(0.2).abs().max() < 1e-12
    traj = sl.integrate(sl.discretize(osc, integ, dt), z0, n)
    global_err = float((traj.z - osc.exact_solution(z0, traj.t)).norm(dim=-1).max())
    # exact crossings of p = 0.2 for q = cos(t - phi): p = -sin(t - phi)
    for b, phi in ((0, 0.0), (1, math.pi / 2)):
        t = sec.t[sec.traj == b]
        k = 2 * math.pi * np.arange(-1, 3)
        exact = np.sort(
            np.concatenate([phi + math.pi + math.asin(0.2) + k, phi + 2 * math.pi - math.asin(0.2) + k])
        )
        exact = exact[(exact > 0) & (exact < 5.0)]
        assert len(t) == len(exact)
        assert np.abs(t.numpy() - exact).max() <= 2.0 * global_err / math.sqrt(1 - 0.04) + 1e-12


def test_poincare_of_a_flow_map_interpolates_with_at_least_fourth_order_accuracy():
    errs = []
    for dt in (0.2, 0.1):
        sec = dg.poincare_section(
            sl.discretize(RotationMap(dt), None, None),
            torch.tensor([[1.0, 0.0]], dtype=F64),
            round(20 / dt),
            direction=0,
        )
        k = torch.arange(len(sec), dtype=F64)
        errs.append(float((sec.t - (k + 0.5) * math.pi).abs().max()))
    assert sec.method == "cubic-interpolation" and errs[1] < 1e-6
    # O(dt^4) in general; here d^4q/dt^4 = cos(t) vanishes at q = 0, so the leading term drops
    assert math.log2(errs[0] / errs[1]) > 3.5, errs


def test_henon_heiles_section_at_energy_one_twelfth():
    hh = sl.get_system("henon-heiles")
    E = 1.0 / 12.0
    y = torch.tensor([-0.25, -0.1, 0.05, 0.2, 0.35, 0.45], dtype=F64)
    V = 0.5 * y**2 - y**3 / 3
    z0 = torch.stack([torch.zeros_like(y), y, torch.sqrt(2 * (E - V)), torch.zeros_like(y)], -1)
    sec = dg.poincare_section(
        sl.discretize(hh, sl.get_integrator("gauss-legendre-6"), 0.2), z0, 750, index=0, direction=1
    )
    assert len(sec) > 6 * 20
    assert sec.z[:, 0].abs().max() < 1e-12 and (sec.z[:, 2] > 0).all()  # on x = 0, p_x > 0
    assert (hh.hamiltonian(sec.z) - E).abs().max() < 1e-8
    pts = sec.points()  # (y, p_y)
    # inside the zero-velocity curve p_y^2/2 + y^2/2 - y^3/3 <= E: -0.366 < y < 0.5, |p_y| < 0.41
    assert pts[:, 0].min() > -0.367 and pts[:, 0].max() < 0.5 and pts[:, 1].abs().max() < 0.409
    # the regular orbit from y = 0.35 lies on a closed curve around its island (y ~ 0.25, p_y = 0):
    # seen from the centroid, its points cover all directions and the radius varies smoothly
    reg = sec.of_trajectory(4).points()
    c = reg.mean(0)
    ang = torch.atan2(reg[:, 1] - c[1], reg[:, 0] - c[0])
    order = ang.argsort()
    rad = (reg - c).norm(dim=-1)[order]
    gaps = torch.diff(torch.cat([ang[order], ang[order][:1] + 2 * math.pi]))
    assert gaps.max() < math.pi / 3
    assert (rad - rad.roll(1)).abs().max() < 0.25 * rad.mean()
    # and agrees with an independent RK4 reference at a smaller step (measured 5e-8; a linear
    # interpolation of the crossing would be off by ~1e-3)
    ref = dg.poincare_section(
        sl.discretize(hh, sl.get_integrator("rk4"), 0.02), z0[4:5], 3000, index=0, direction=1
    )
    m = len(ref)
    assert m >= 8
    assert (ref.t - sec.of_trajectory(4).t[:m]).abs().max() < 1e-6
    assert (ref.z - sec.of_trajectory(4).z[:m]).abs().max() < 1e-6


def test_summaries_are_json_serialisable():
    import json

    pend = sl.get_system("pendulum")
    z0 = pend.sample(2, seed=0)
    verlet = sl.get_integrator("verlet")
    loop = dg.square_loop(torch.tensor([1.0, 0.0], dtype=F64), 0.2, 16)
    out = {
        "energy": dg.energy_error(pend, sl.integrate(sl.discretize(pend, verlet, 0.1), z0, 50)).as_dict(),
        "area": dg.transport_loop(sl.discretize(pend, verlet, 0.1), loop, 20, save_every=10).as_dict(),
        "loop": dg.loop_integral(pend, loop).as_dict(),
        "div": dg.divergence_stats(pend, z0).as_dict(),
        "lyap": dg.lyapunov_exponent(sl.discretize(pend, verlet, 0.1), z0, 20).as_dict(),
        "section": dg.poincare_section(sl.discretize(pend, verlet, 0.1), z0, 50).as_dict(),
    }
    sym = dg.map_symplecticity(sl.discretize(pend, verlet, 0.1), z0)
    out["symplecticity"] = sym.as_dict()
    assert json.loads(json.dumps(out)) == out


# -- invariant-measure distance ----------------------------------------------------------------
def test_wasserstein_1d_matches_scipy_and_known_shifts():
    gen = np.random.default_rng(0)
    a, b = gen.normal(size=1000), gen.normal(0.3, 1.5, size=713)
    assert dg.wasserstein_1d(a, b) == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-12)
    assert dg.wasserstein_1d(torch.tensor(a), torch.tensor(a) + 0.25) == pytest.approx(0.25, rel=1e-12)
    assert dg.wasserstein_1d([0.0, 1.0], [0.0, 1.0, 1.0]) == pytest.approx(1.0 / 6.0, rel=1e-12)
    with pytest.raises(sl.NonFiniteError):
        dg.wasserstein_1d([0.0, float("nan")], [1.0])


# -- assertion helpers -------------------------------------------------------------------------
def test_assertion_helpers_pass_on_structure_and_report_the_measured_defect():
    pend = sl.get_system("pendulum")
    z = pend.sample(8, seed=0)
    dg.assert_symplectic(sl.discretize(pend, sl.get_integrator("verlet"), 0.1), z)
    eul = dg.map_symplecticity(sl.discretize(pend, sl.get_integrator("euler"), 0.1), z)
    with pytest.raises(AssertionError, match=f"{eul.max_defect:.3e}"):
        dg.assert_symplectic(sl.discretize(pend, sl.get_integrator("euler"), 0.1), z)

    osc = sl.get_system("oscillator")
    z0 = osc.sample(4, seed=0)
    dg.assert_conserves(
        osc, sl.integrate(sl.discretize(osc, sl.get_integrator("gauss-legendre-4"), 0.1), z0, 200)
    )
    verlet = sl.integrate(sl.discretize(osc, sl.get_integrator("verlet"), 0.1), z0, 200)
    res = dg.energy_error(osc, verlet)
    with pytest.raises(AssertionError, match=f"max relative error {res.max:.3e} > tol 1.0e-10"):
        dg.assert_conserves(osc, verlet)
    dg.assert_conserves(osc, verlet, tol=1e-2, require_bounded=True)
    dg.assert_conserves(lambda s: s.pow(2).sum(-1), verlet, tol=1e-2)  # a callable invariant

    dg.assert_divergence_free(pend, z)
    with pytest.raises(AssertionError, match=r"max \|div X\| = 2\.000e-01"):
        dg.assert_divergence_free(Linear(0.3, -0.1), z)


def test_float32_default_tolerances():
    pend = sl.get_system("pendulum")
    z = pend.sample(8, seed=0, dtype=torch.float32)
    dg.assert_symplectic(sl.discretize(pend, sl.get_integrator("verlet"), 0.1), z)
    with pytest.raises(AssertionError, match="tol 1.0e-04"):
        dg.assert_symplectic(sl.discretize(pend, sl.get_integrator("euler"), 0.1), z)


# -- bad input -------------------------------------------------------------------------------
def test_clear_errors_for_bad_loops_planes_and_observables():
    pend = sl.get_system("pendulum")
    arc = dg.circle_loop(torch.zeros(2, dtype=F64), 1.0, 64)[:33]  # half a circle: not closed
    with pytest.raises(sl.SymplearnError, match="does not look closed"):
        dg.loop_integral(pend, arc)
    with pytest.raises(sl.SymplearnError, match="at least 3"):
        dg.transport_loop(
            sl.discretize(pend, sl.get_integrator("verlet"), 0.1),
            torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=F64),
            1,
        )
    with pytest.raises(sl.SymplearnError, match=r"plane must be an integer in \[0, 1\)"):
        dg.square_loop(torch.zeros(2), 0.1, plane=1)
    with pytest.raises(sl.SymplearnError, match=r"plane must be an integer in \[0, 2\)"):
        dg.polygon_area(torch.zeros(5, 4), plane=2)
    with pytest.raises(sl.SymplearnError, match="multiple of 4"):
        dg.square_loop(torch.zeros(2), 0.1, n_points=10)
    with pytest.raises(sl.SymplearnError, match="phase space has 2"):
        dg.loop_integral(pend, dg.square_loop(torch.zeros(4, dtype=F64), 0.1))
    z = pend.sample(4)
    with pytest.raises(sl.SymplearnError, match="could not be evaluated on states of shape"):
        dg.bracket_with_energy(angular_momentum, pend, z)  # needs 4 coordinates
    with pytest.raises(sl.SymplearnError, match=r"must return shape \(4,\), got \(4, 1\)"):
        dg.bracket_with_energy(lambda s: s[..., :1], pend, z)
    with pytest.raises(sl.SymplearnError, match="has no energy"):
        dg.energy_error(Linear(0.1, 0.2), torch.zeros(5, 2, dtype=F64))
    with pytest.raises(sl.SymplearnError, match="direction must be"):
        dg.poincare_section(sl.discretize(pend, sl.get_integrator("verlet"), 0.1), z, 5, direction=2)
    with pytest.raises(sl.SymplearnError, match=r"index must be an integer in \[0, 2\)"):
        dg.poincare_section(sl.discretize(pend, sl.get_integrator("verlet"), 0.1), z, 5, index=2)
    with pytest.raises(sl.SymplearnError, match="valid: finite-difference, jvp"):
        dg.lyapunov_exponent(sl.discretize(pend, sl.get_integrator("verlet"), 0.1), z, 5, tangent="exact")
    with pytest.raises(sl.SymplearnError, match="needs a flow map.*discretize"):
        dg.lyapunov_exponent(pend, z, 5)
    with pytest.raises(sl.NonFiniteError, match="from sample 3"):
        dg.invariant_error(torch.tensor([1.0, 1.0, 1.0, float("inf")]))


# --------------------------------------------------------------------------------------------
# finite-difference tangents at large |z|; signed areas (issue 8)
# --------------------------------------------------------------------------------------------
class _StandardMap(sl.FlowMap):
    """Chirikov's standard map lifted to the plane (not wrapped): p' = p + K sin q, q' = q + p'."""

    n_dof = 1
    dt = 1.0

    def __init__(self, K: float):
        self.K = K

    def step(self, t, z):
        q, p = z[..., 0], z[..., 1]
        p = p + self.K * torch.sin(q)
        return torch.stack([q + p, p], -1)


def test_lyapunov_finite_difference_tangent_at_large_coordinates_on_the_standard_map():
    """For large K the standard map's exponent is ln(K/2) (Chirikov; the correction is O(1/K^2),
    about 1e-3 at K = 20). Started at |z| ~ 1e5 (and growing: the lifted orbit drifts to |q| ~ 1e8),
    the finite-difference tangent must still see it: the step used to be eps^(1/3) |z| = 0.6,
    which smeared sin q over a whole radian and read 0.85. Tolerance 0.03: three times the
    statistical error of the mean over 16 orbits of 2000 steps (the finite-time exponents spread
    by std 0.02, so the mean's error is ~0.005; 0.03 also covers the O(1/K^2) correction). The
    exact tangent (forward-mode AD of the map) on the same orbits agrees to 1e-5 over 500 steps
    (the difference tangent's relative error, (eps |z|)^(2/3) <= 1e-5 per step at |z| <= 1e8,
    is a bias of that size at most in each log-growth; it averages out in the exponent)."""
    K = 20.0
    flow = _StandardMap(K)
    gen = torch.Generator().manual_seed(0)
    z0 = torch.tensor([1.0e5, 3.0e4], dtype=torch.float64) + torch.rand(
        16, 2, generator=gen, dtype=torch.float64
    )
    fd = dg.lyapunov_exponent(flow, z0, 2000, transient=50)
    assert abs(fd.mean - math.log(K / 2)) < 0.03, fd.mean
    fd = dg.lyapunov_exponent(flow, z0[:4], 500, transient=50)
    ad = dg.lyapunov_exponent(flow, z0[:4], 500, transient=50, tangent="jvp")
    assert float((fd.exponent - ad.exponent).abs().max()) < 1e-5


def test_an_orientation_reversing_area_preserving_map_has_area_ratio_minus_one():
    """(q, p) -> (p, q) preserves areas and reverses orientation: det = -1. After one step the
    transported area is -A (signed: reported as it is, not as |A|); after two, +A."""

    class Swap(sl.FlowMap):
        n_dof = 1
        dt = 1.0

        def step(self, t, z):
            return z.flip(-1)

    loop = dg.square_loop(torch.tensor([0.3, -0.2], dtype=torch.float64), 0.5, 16)
    one = dg.transport_loop(Swap(), loop, 1)
    two = dg.transport_loop(Swap(), loop, 2)
    assert one.area_ratio == -1.0 and two.area_ratio == 1.0
    assert abs(float(one.areas[0]) - 0.25) < 1e-15
    assert one.as_dict()["area_ratio"] == -1.0


def test_wasserstein_circle_uses_the_short_way_round():
    """Closed forms: two point masses an arc d apart are d apart (d <= pi), across the cut at
    +-pi too, where the interval metric of wrapped angles says 2 pi - d; and for samples away
    from the cut it equals the interval W1 (scipy) when the mass does not go round."""
    from scipy.stats import wasserstein_distance

    from symplearn.diagnostics.statistics import wasserstein_1d, wasserstein_circle

    a, b = np.full(50, math.pi - 0.05), np.full(70, -math.pi + 0.05)
    assert wasserstein_circle(a, b) == pytest.approx(0.1, abs=1e-12)
    assert wasserstein_1d(a, b) == pytest.approx(2 * math.pi - 0.1, abs=1e-12)
    assert wasserstein_circle(np.full(3, 1.0), np.full(4, 2.5)) == pytest.approx(1.5, abs=1e-12)
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.0, 0.3, 400), rng.normal(0.2, 0.4, 300)
    assert wasserstein_circle(x, y) == pytest.approx(wasserstein_distance(x, y), rel=1e-9)
    # uniform against a half-circle: W1 = pi/4 (F - G is a tent of depth 1/2, its values uniform
    # on [-1/2, 0]; the best shift is their median -1/4, the mean |D + 1/4| is 1/8, times 2 pi)
    u = np.linspace(-math.pi, math.pi, 20001)[:-1]
    h = np.linspace(0.0, math.pi, 10001)[:-1]
    assert wasserstein_circle(u, h) == pytest.approx(math.pi / 4, rel=1e-3)
