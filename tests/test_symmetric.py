"""Symmetric HNNs and the Noether checks: for any weights, the energy is invariant, the bracket of
the generator with it vanishes to round-off, the field is equivariant, and the charge is kept
to round-off by the integrators that should keep it (and not by RK4 where it should not); the
closed-form gradients against autograd; the two-body spring against its exact solution."""

import math

import pytest
import torch

import symplearn as sl
from symplearn.diagnostics.symmetry import (
    angular_momentum,
    assert_equivariant,
    assert_invariant,
    assert_noether_charge,
    noether_charge_bracket,
    rotation,
    total_momentum,
    translation,
)
from symplearn.geometry import gradient
from symplearn.models import (
    HNN,
    RotationHNN,
    SeparableHNN,
    SeparableRotationHNN,
    SeparableTranslationHNN,
    TranslationHNN,
    build_model,
)
from symplearn.systems import Kepler, TwoBodySpring, get_system

F64 = torch.float64
TRANSLATION = [TranslationHNN, SeparableTranslationHNN]
ROTATION = [RotationHNN, SeparableRotationHNN]


def randomize_(model, std=0.5, seed=0):
    """Re-draw every parameter from N(0, std^2): generic weights, far from the initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def make(cls, seed=0, **kw):
    torch.manual_seed(seed)
    return randomize_(cls(**kw, width=16).to(F64), seed=seed)


def states(n, dim, seed, scale=1.0):
    return scale * torch.randn(n, dim, dtype=F64, generator=torch.Generator().manual_seed(seed))


# -- generators and actions ---------------------------------------------------------------------
def test_generators_and_actions_on_known_states():
    z = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], dtype=F64)  # 3 particles on a line
    assert float(total_momentum(z)) == 15.0
    z2 = torch.tensor([[1.0, 0.0, 0.0, 2.0]], dtype=F64)  # q = (1, 0), p = (0, 2): L = 2
    assert float(angular_momentum(z2)) == 2.0
    r = rotation(math.pi / 2).act(z2)
    assert torch.allclose(r, torch.tensor([[0.0, 1.0, -2.0, 0.0]], dtype=F64), atol=1e-15)
    s = translation([1.0, -2.0], spatial_dim=2).act(torch.zeros(1, 8, dtype=F64))
    assert s.tolist() == [[1.0, -2.0, 1.0, -2.0, 0, 0, 0, 0]]
    with pytest.raises(sl.SymplearnError, match="shift must be 1 finite number"):
        translation([1.0, 2.0])
    with pytest.raises(sl.SymplearnError, match="planar bodies"):
        angular_momentum(torch.zeros(2, 6, dtype=F64))
    with pytest.raises(sl.SymplearnError, match="must be a symplearn.diagnostics.symmetry.Symmetry"):
        assert_equivariant(HNN(2).double(), lambda z: z, states(4, 4, 0))


def test_true_systems_pass_the_noether_checks():
    kep, spring = Kepler(), TwoBodySpring()
    zk = kep.sample(64, seed=1)
    assert assert_noether_charge(angular_momentum, kep, zk) < 1e-13
    assert_equivariant(kep, rotation(0.7), zk)
    zs = spring.sample(64, seed=2)
    assert assert_noether_charge(total_momentum, spring, zs) < 1e-13
    assert_equivariant(spring, translation(100.0), zs)
    # a charge that is not conserved: the bracket is far from zero (the check is not vacuous)
    assert float(noether_charge_bracket(lambda z: z[..., 0], spring, zs).abs().max()) > 0.1


# -- invariance by construction, any weights ---------------------------------------------------
@pytest.mark.parametrize("cls", TRANSLATION)
@pytest.mark.parametrize("n_dof,spatial_dim", [(2, 1), (3, 1), (6, 2)])
def test_translation_hnn_is_invariant_and_conserves_total_momentum(cls, n_dof, spatial_dim):
    model = make(cls, n_dof=n_dof, spatial_dim=spatial_dim)
    z = states(64, 2 * n_dof, seed=3)
    for shift in (0.5, 10.0, 1000.0):
        g = translation([shift] * spatial_dim, spatial_dim=spatial_dim)
        # a shift by s changes the features by round-off ~ eps * s
        assert assert_invariant(model.hamiltonian, g, z, tol=1e-15 * shift * 20) >= 0
        assert_equivariant(model, g, z, tol=1e-15 * shift * 20)
    for axis in range(spatial_dim):
        charge = lambda z, a=axis: total_momentum(z, spatial_dim=spatial_dim, axis=a)  # noqa: E731
        assert assert_noether_charge(charge, model, z) < 1e-13
        # the learned forces sum to zero: round-off
        with torch.no_grad():
            force = model.vector_field(0.0, z)[..., n_dof + axis :: spatial_dim].sum(-1)
        assert float(force.abs().max()) < 1e-13


@pytest.mark.parametrize("cls", ROTATION)
def test_rotation_hnn_is_invariant_and_conserves_angular_momentum(cls):
    model = make(cls)
    z = states(64, 4, seed=4)
    for angle in (0.3, 2.0, -5.0):
        g = rotation(angle)
        assert_invariant(model.hamiltonian, g, z, tol=1e-13)
        assert_equivariant(model, g, z, tol=1e-13)
    assert assert_noether_charge(angular_momentum, model, z) < 1e-13
    # dL/dt along the learned field, in closed form: zero to round-off
    q, p = z[..., :2], z[..., 2:]
    with torch.no_grad():
        f = model.vector_field(0.0, z)
    dL = q[..., 0] * f[..., 3] - q[..., 1] * f[..., 2] + f[..., 0] * p[..., 1] - f[..., 1] * p[..., 0]
    assert float(dL.abs().max()) < 1e-12 * float(f.abs().max())


@pytest.mark.parametrize("kind", ["hnn", "hnn-separable"])
def test_plain_hnns_fail_the_same_checks(kind):
    """The control: an unconstrained energy has a bracket with L and P far from zero."""
    model = make(HNN if kind == "hnn" else SeparableHNN, n_dof=2)
    z = states(64, 4, seed=5)
    assert float(noether_charge_bracket(angular_momentum, model, z).abs().max()) > 1e-2
    assert float(noether_charge_bracket(total_momentum, model, z).abs().max()) > 1e-2
    with pytest.raises(AssertionError, match="not equivariant under rotation"):
        assert_equivariant(model, rotation(1.0), z)
    with pytest.raises(AssertionError, match="not invariant under translation by 10"):
        assert_invariant(model.hamiltonian, translation(10.0), z)


# -- closed-form gradients --------------------------------------------------------------------
@pytest.mark.parametrize("cls", TRANSLATION + ROTATION)
def test_closed_form_gradients_match_autograd(cls):
    kw = {"n_dof": 3} if cls in TRANSLATION else {}
    model = make(cls, **kw)
    z = states(32, 2 * model.n_dof, seed=6)
    dH = gradient(model.hamiltonian, z)
    n = model.n_dof
    if isinstance(model, sl.SeparableHamiltonian):
        got = torch.cat([model.grad_V(z[..., :n]), model.grad_T(z[..., n:])], -1)
    else:
        got = model.grad_hamiltonian(z)
    assert float((got - dH).detach().abs().max()) < 1e-12 * (1 + float(dH.abs().max()))
    # and the field is J grad H
    assert torch.allclose(model.vector_field(0.0, z), torch.cat([dH[..., n:], -dH[..., :n]], -1), atol=1e-12)
    # a loss on the field trains every parameter with one ordinary backward pass
    model.zero_grad()
    model.vector_field(0.0, z).pow(2).sum().backward()
    # (all but the output biases: an energy's constant never moves the field)
    for name, p in model.named_parameters():
        assert name.endswith("out.bias") or float(p.grad.abs().max()) > 0, name


# -- the charge along integrated trajectories ----------------------------------------------------
def rel_drift(Q):
    return float(((Q - Q[0]) / Q[0].abs()).abs().max())


def test_angular_momentum_kept_to_round_off_by_the_right_integrators():
    """Midpoint keeps L (quadratic invariant) for the non-separable rotation HNN; Verlet keeps it
    for the separable one; RK4 on the exact Kepler energy does not."""
    kep = Kepler()
    z0 = kep.sample(16, eccentricity_range=(0.4, 0.6), seed=7)
    rot = make(RotationHNN)
    rot_sep = make(SeparableRotationHNN)
    with torch.inference_mode():
        a = sl.integrate(sl.discretize(rot, "implicit-midpoint", 0.01), z0, 200)
        b = sl.integrate(sl.discretize(rot_sep, "verlet", 0.01), z0, 200)
        c = sl.integrate(sl.discretize(kep, "rk4", 0.1), z0, 300)
        d = sl.integrate(sl.discretize(kep, "verlet", 0.1), z0, 300)
    for traj in (a, b):
        assert float((traj.z - z0).abs().amax(dim=(0, 2)).min()) > 1e-2  # the states moved
        assert rel_drift(angular_momentum(traj.z)) < 1e-12
    assert rel_drift(angular_momentum(c.z)) > 1e-6  # RK4: a real drift, orders above round-off
    assert rel_drift(angular_momentum(d.z)) < 1e-13


def test_total_momentum_kept_by_any_runge_kutta_method():
    """Total momentum is a linear invariant: RK4 keeps it as well as Verlet does."""
    model, sep = make(TranslationHNN, n_dof=2), make(SeparableTranslationHNN, n_dof=2)
    z0 = TwoBodySpring().sample(16, seed=8) + torch.tensor([100.0, 100.0, 0.0, 0.0], dtype=F64)
    with torch.inference_mode():
        for dyn, integ in ((model, "rk4"), (model, "implicit-midpoint"), (sep, "verlet")):
            traj = sl.integrate(sl.discretize(dyn, integ, 0.01), z0, 200)
            P = total_momentum(traj.z)
            assert float((P - P[0]).abs().max()) < 1e-13, integ


# -- configuration and errors -------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind", ["hnn-translation", "hnn-translation-separable", "hnn-rotation", "hnn-rotation-separable"]
)
def test_build_model_rebuilds_from_config(kind):
    model = build_model(kind, n_dof=2, width=8).to(F64)
    copy = build_model(**model.config).to(F64)
    copy.load_state_dict(model.state_dict())
    z = states(5, 4, seed=9)
    assert torch.equal(model.vector_field(0.0, z), copy.vector_field(0.0, z))


def test_bad_arguments_say_what_would_work():
    with pytest.raises(sl.SymplearnError, match="n_dof must be 2"):
        RotationHNN(n_dof=3)
    with pytest.raises(sl.SymplearnError, match="at least two particles.*n_dof=3, spatial_dim=2"):
        TranslationHNN(n_dof=3, spatial_dim=2)
    with pytest.raises(sl.SymplearnError, match="at least two particles"):
        SeparableTranslationHNN(n_dof=1)
    with pytest.raises(sl.SymplearnError, match="relu"):
        RotationHNN(activation="relu")


# -- the two-body spring -------------------------------------------------------------------------
def test_two_body_spring_exact_solution_matches_gauss_legendre():
    s = get_system("two-body-spring", k=1.7)
    z0 = s.sample(8, seed=10)
    t_end = 3.0
    traj = sl.integrate(sl.discretize(s, "gauss-legendre-6", 0.01), z0, 300, save_every=50)
    exact = s.exact_solution(z0, traj.t)
    assert float((traj.z - exact).abs().max()) < 1e-11
    assert abs(float(traj.t[-1]) - t_end) < 1e-12
    # the separation oscillates with period 2 pi / sqrt(2 k): back where it started
    T = s.period
    back = s.exact_solution(z0, torch.tensor([T], dtype=F64))[0]
    x0, xT = z0[:, 0] - z0[:, 1], back[:, 0] - back[:, 1]
    assert float((xT - x0).abs().max()) < 1e-12
    Q = s.conserved_quantities(traj.z)
    assert float((Q["total_momentum"] - Q["total_momentum"][0]).abs().max()) < 1e-13
