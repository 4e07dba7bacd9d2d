"""Models: structural properties that hold for any weights (divergence-free HNN fields, conserved
learned energies, symplectic and exactly invertible SympNet steps), the Euler-Lagrange solver
against the systems' analytic accelerations, the closed-form input gradients against autograd,
and clear errors (non-smooth activations, singular Hessians, unknown kinds and arguments)."""

import functools
import json

import numpy as np
import pytest
import torch
from conftest import tol

import symplearn as sl
from symplearn.geometry import (
    as_state_map,
    batch_jacobian,
    divergence,
    gradient,
    symplectic_gradient,
    symplecticity_defect,
)
from symplearn.models import (
    HNN,
    LNN,
    MODELS,
    GradientSympNet,
    GSympNet,
    LASympNet,
    MLPField,
    PSympNet,
    SeparableHNN,
    build_model,
    lagrangian_acceleration,
)
from symplearn.models._common import ScalarMLP
from symplearn.models.activations import ACTIVATIONS, get_activation
from symplearn.systems import SYSTEMS
from symplearn.systems.particles import ParticleSystem

# torch loads its forward-mode decompositions lazily through torch.jit.script, which warns
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

F64 = torch.float64
SYMPNETS = [
    pytest.param(LASympNet, id="la"),
    pytest.param(GSympNet, id="g"),
    pytest.param(functools.partial(GSympNet, scale="free"), id="g-free"),
    pytest.param(GradientSympNet, id="grad"),
    pytest.param(functools.partial(PSympNet, layers=2), id="p"),
]


def randomize_(model, std=0.5, seed=0):
    """Re-draw every parameter from N(0, std^2): weights far from any special initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
    return model


def randn(*shape, seed=1, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# -- closed-form input gradients ------------------------------------------------------------
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_scalar_mlp_closed_form_gradient_matches_autograd(act):
    torch.manual_seed(0)
    net = ScalarMLP(3, 16, 3, get_activation(act)).to(F64)
    x = randn(50, 3) * 2
    val, g = net.value_and_grad(x)
    assert torch.equal(val, net(x))
    ref = gradient(net, x)
    assert torch.allclose(g, ref, rtol=0, atol=1e-13), float((g - ref).abs().max())
    # unbatched input, and the gradient is itself differentiable (smooth activations)
    assert torch.allclose(net.gradient(x[0]), g[0], rtol=0, atol=1e-15)
    if get_activation(act).smooth:
        xx = x[:4].clone().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda y: net.gradient(y), (xx,))


# -- HNN ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [HNN, SeparableHNN])
def test_hnn_field_is_divergence_free_and_conserves_its_energy(cls):
    model = randomize_(cls(2, width=16, depth=2).to(F64), std=0.5)
    z = randn(64, 4) * 1.5
    f = model.vector_field(0.0, z)
    # the closed-form field is the symplectic gradient of the network's own energy
    ref = symplectic_gradient(model.hamiltonian, z)
    assert torch.allclose(f, ref, rtol=0, atol=1e-12)
    assert f.abs().mean() > 0.1  # a non-trivial field
    div = divergence(model, z)
    assert div.abs().max() < 1e-10, float(div.abs().max())
    dHdt = (gradient(model.hamiltonian, z) * f).sum(-1)
    assert dHdt.abs().max() < 1e-10, float(dHdt.abs().max())


def test_mlp_field_is_not_divergence_free():
    """Control for the test above: an unstructured field of the same size has divergence."""
    model = randomize_(MLPField(2, width=16, depth=2).to(F64), std=0.5)
    div = divergence(model, randn(64, 4) * 1.5)
    assert div.abs().mean() > 1e-2


def test_separable_hnn_gradients_and_verlet_energy_band():
    """grad_T / grad_V are the derivatives of T_theta / V_theta, and Verlet (which needs them)
    keeps the model's own energy in a band, where explicit Euler drifts."""
    model = randomize_(SeparableHNN(1, width=16).to(F64), std=0.5, seed=3)
    q = randn(10, 1, seed=2)
    assert torch.allclose(model.grad_V(q), gradient(model.potential, q), atol=1e-13)
    assert torch.allclose(model.grad_T(q), gradient(model.kinetic, q), atol=1e-13)
    z0 = randn(8, 2, seed=4)
    errors = {}
    with torch.no_grad():
        for name in ("verlet", "euler"):
            traj = sl.integrate(sl.discretize(model, sl.get_integrator(name), 0.05), z0, 2000, save_every=10)
            err = (model.hamiltonian(traj.z) - model.hamiltonian(z0)).abs().max(-1).values
            half = err.shape[0] // 2
            errors[name] = (float(err[:half].max()), float(err[half:].max()))
    (v1, v2), (e1, e2) = errors["verlet"], errors["euler"]
    assert v2 < 1e-3 and v2 <= 1.1 * v1  # bounded: the second half no worse than the first
    assert e2 > 1.3 * e1 and e1 > 100 * v1  # Euler: larger, and growing


# -- SympNets -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", SYMPNETS)
def test_sympnet_step_is_symplectic_for_random_weights(cls, dtype):
    model = randomize_(cls(2, dt=1.0).to(dtype), std=0.5, seed=5)
    z = randn(32, 4, seed=6, dtype=dtype) * 1.5
    A = batch_jacobian(model, z)
    eye = torch.eye(4, dtype=dtype)
    # the map is far from the identity at most states (otherwise the check would be empty)...
    assert (A - eye).flatten(1).norm(dim=1).median() > 0.1
    # ...and its Jacobian satisfies A^T J A = J
    defect = symplecticity_defect(A) / (1 + A.flatten(1).norm(dim=1) ** 2)  # relative to |A|^2
    assert defect.max() < tol(dtype, 1e-10, 1e-5), float(defect.max())


@pytest.mark.parametrize("cls", SYMPNETS)
def test_sympnet_inverse_undoes_step(cls, dtype):
    model = randomize_(cls(3, dt=0.7).to(dtype), std=0.5, seed=7)
    z = randn(100, 6, seed=8, dtype=dtype)
    with torch.no_grad():
        w = model.step(0.0, z)
        assert (w - z).abs().max() > 0.1
        back = model.inverse(w)
        fwd = model.step(0.0, model.inverse(z))
    limit = tol(dtype, 1e-12, 1e-5)
    assert (back - z).abs().max() < limit, float((back - z).abs().max())
    assert (fwd - z).abs().max() < limit


@pytest.mark.parametrize("cls", SYMPNETS)
def test_sympnet_increment_scales_with_dt(cls):
    """The same weights with a 10x smaller dt move states 10x less (to first order): the map is
    the identity plus O(dt)."""
    z = randn(50, 2, seed=9)
    moves = []
    for dt in (1e-3, 1e-4):
        torch.manual_seed(0)
        model = cls(1, dt=dt).to(F64)
        with torch.no_grad():
            moves.append(float((model.step(0.0, z) - z).norm(dim=-1).mean()))
    assert moves[0] > 0
    assert moves[0] / moves[1] == pytest.approx(10.0, rel=1e-2)


def test_gradient_sympnet_is_symplectic_euler_of_its_networks():
    """With one layer the map is one kick-drift symplectic Euler step of H = K + V."""
    model = randomize_(GradientSympNet(2, dt=0.3, layers=1, width=8).to(F64), std=0.5, seed=10)
    (V,), (K,) = model.potentials(), model.kinetics()
    z = randn(20, 4, seed=11)
    q, p = z[:, :2], z[:, 2:]
    p1 = p - 0.3 * gradient(V, q)
    q1 = q + 0.3 * gradient(K, p1)
    with torch.no_grad():
        assert torch.allclose(model.step(0.0, z), torch.cat([q1, p1], -1), rtol=0, atol=1e-14)


def test_p_sympnet_layer_is_the_exact_flow_of_its_ridge_hamiltonian():
    """One layer of width 3 is the time-dt flow of H(z) = F(w . z) with
    F(s) = sum_j a_j log cosh(c_j s + b_j) / c_j (F' = sum_j a_j tanh(c_j s + b_j)): compared with
    scipy's DOP853 on z' = J grad H, grad H by autograd of that F (not the layer's formula). The
    direction w mixes q and p, so H is not separable."""
    from scipy.integrate import solve_ivp

    model = randomize_(PSympNet(2, dt=0.4, layers=1, width=3).to(F64), std=0.7, seed=21)
    (layer,) = model.blocks
    assert layer.w[:2].abs().min() > 0.05 and layer.w[2:].abs().min() > 0.05  # mixes q and p

    def H(z):
        s = z @ layer.w
        return (layer.a / layer.c * torch.log(torch.cosh(layer.c * s + layer.b))).sum()

    def field(t, y):
        z = torch.tensor(y, requires_grad=True)
        (g,) = torch.autograd.grad(H(z), z)
        return torch.cat([g[2:], -g[:2]]).detach().numpy()

    z0 = randn(5, 4, seed=22)
    with torch.no_grad():
        mine = model.step(0.0, z0)
    assert (mine - z0).norm(dim=-1).mean() > 0.1
    for k in range(5):
        ref = solve_ivp(field, (0.0, 0.4), z0[k].numpy(), method="DOP853", rtol=1e-12, atol=1e-12).y[:, -1]
        assert np.allclose(mine[k].numpy(), ref, atol=1e-9), (mine[k], ref)


def test_g_sympnet_free_scale_starts_as_the_dt_form_and_refuses_unknown_scales():
    """The fixed-step form with amplitudes a = dt a_rate is the same map as the dt form; a fresh
    one starts at the dt form's initial map (float32 draws, rounded after the dt factor)."""
    z = randn(20, 4, seed=23)
    models = []
    for scale in ("dt", "free"):
        torch.manual_seed(3)
        models.append(GSympNet(2, dt=0.05, scale=scale).to(F64))
    rate, free = models
    with torch.no_grad():
        fresh = free.step(0.0, z)
        for br, bf in zip(rate.blocks, free.blocks):
            bf.a.copy_(0.05 * br.a)
        assert (rate.step(0.0, z) - z).abs().max() > 1e-5
        assert torch.allclose(rate.step(0.0, z), free.step(0.0, z), rtol=0, atol=1e-14)
        assert torch.allclose(rate.step(0.0, z), fresh, rtol=0, atol=1e-8)
    with pytest.raises(sl.SymplearnError, match="scale must be 'dt'.*or 'free'"):
        GSympNet(2, dt=0.05, scale="fixed")


def test_la_sympnet_with_one_layer_is_a_linear_symplectic_map():
    model = randomize_(LASympNet(2, dt=0.5, layers=1, sublayers=4).to(F64), seed=12)
    z = randn(10, 4, seed=13)
    A = batch_jacobian(model, z)
    assert torch.allclose(A, A[0].expand_as(A), atol=1e-14)  # affine
    assert symplecticity_defect(A[:1]).max() < 1e-12


def test_sympnets_integrate_as_flow_maps():
    model = GSympNet(1, dt=0.1).to(F64)
    z0 = randn(3, 2, seed=14)
    with torch.no_grad():
        traj = sl.integrate(sl.discretize(model, None, 0.1), z0, 5)
        z = z0
        for _ in range(5):
            z = model.step(0.0, z)
    assert torch.equal(traj.z[-1], z)
    with pytest.raises(sl.SymplearnError, match="built for dt=0.1"):
        sl.integrate(sl.discretize(model, None, 0.2), z0, 5)


# -- Lagrangian: the Euler-Lagrange solver --------------------------------------------------
LAGRANGIAN_SYSTEMS = [name for name, cls in SYSTEMS.items() if cls.has_lagrangian]


@pytest.mark.parametrize("name", LAGRANGIAN_SYSTEMS)
def test_lagrangian_acceleration_reproduces_true_accelerations(name):
    assert {"pendulum", "double-pendulum"} <= set(LAGRANGIAN_SYSTEMS)
    system = sl.get_system(name)
    z = system.sample(64, seed=0, dtype=F64)
    q, p = z[..., : system.n_dof], z[..., system.n_dof :]
    qdot = system.velocities(q, p)
    qddot = lagrangian_acceleration(system.lagrangian, q, qdot)
    true = system.acceleration(q, qdot)
    assert true.abs().max() > 0.1
    assert torch.allclose(qddot, true, rtol=0, atol=1e-10), float((qddot - true).abs().max())


def test_lagrangian_acceleration_double_pendulum_other_parameters_and_batch_shapes():
    system = sl.get_system("double-pendulum", m1=2.0, m2=0.5, l1=0.7, l2=1.3, g=3.0)
    q, qdot = randn(3, 5, 2, seed=15) * 2, randn(3, 5, 2, seed=16) * 2
    qddot = lagrangian_acceleration(system.lagrangian, q, qdot)
    assert qddot.shape == (3, 5, 2)
    assert torch.allclose(qddot, system.acceleration(q, qdot), rtol=0, atol=1e-10)
    single = lagrangian_acceleration(system.lagrangian, q[1, 2], qdot[1, 2])
    assert single.shape == (2,)
    assert torch.allclose(single, qddot[1, 2], rtol=0, atol=1e-14)


def test_lagrangian_acceleration_is_differentiable_through_the_solve():
    """L = m |q_dot|^2 / 2 - k |q|^2 / 2 gives q_ddot = -k q / m; the gradients with respect to
    the parameters (through the second derivatives and the solve) and to the state are exact."""
    m = torch.tensor(2.0, dtype=F64, requires_grad=True)
    k = torch.tensor(3.0, dtype=F64, requires_grad=True)

    def L(q, qd):
        return 0.5 * m * (qd * qd).sum() - 0.5 * k * (q * q).sum()

    q, qdot = randn(7, 2, seed=17), randn(7, 2, seed=18)
    qddot = lagrangian_acceleration(L, q, qdot)
    assert torch.allclose(qddot, -1.5 * q, atol=1e-14)
    gm, gk = torch.autograd.grad(qddot.sum(), (m, k))
    assert float(gm) == pytest.approx(float(3.0 * q.sum() / 4.0), abs=1e-12)  # k q / m^2
    assert float(gk) == pytest.approx(float(-q.sum() / 2.0), abs=1e-12)  # -q / m
    system = sl.get_system("double-pendulum")
    qq = (randn(3, 2, seed=19)).requires_grad_(True)
    vv = (randn(3, 2, seed=20)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: lagrangian_acceleration(system.lagrangian, a, b), (qq, vv))


def test_singular_hessian_is_reported_and_regularization_solves():
    """L = q . q_dot - |q|^2 / 2 is linear in q_dot: d2L/dq_dot2 = 0, the Euler-Lagrange equation
    does not determine q_ddot. With d2L/dq_dot2 + eps I the solution is (dL/dq - C q_dot)/eps =
    -q/eps."""

    def L(q, qd):
        return (q * qd).sum() - 0.5 * (q * q).sum()

    q, qdot = randn(7, 2, seed=21), randn(7, 2, seed=22)
    with pytest.raises(sl.SymplearnError, match=r"singular or ill-conditioned at 7 of 7 samples") as err:
        lagrangian_acceleration(L, q, qdot)
    assert "regularization" in str(err.value)
    qddot = lagrangian_acceleration(L, q, qdot, regularization=1e-3)
    assert bool(torch.isfinite(qddot).all())
    assert torch.allclose(qddot, -q / 1e-3, rtol=1e-12, atol=0)


def test_ill_conditioned_hessian_names_the_condition_number():
    def L(q, qd):  # masses 1 and 1e-12 (only for samples with q_0 > 0)
        w = torch.where(q[0] > 0, 1e-12, 1.0)
        return 0.5 * qd[0] ** 2 + 0.5 * w * qd[1] ** 2

    q = randn(20, 2, seed=23)
    n_bad = int((q[:, 0] > 0).sum())
    assert 0 < n_bad < 20
    with pytest.raises(sl.SymplearnError, match=rf"at {n_bad} of 20 samples \(worst condition number 1e\+12"):
        lagrangian_acceleration(L, q, randn(20, 2, seed=24))
    # a looser limit accepts it
    assert bool(torch.isfinite(lagrangian_acceleration(L, q, randn(20, 2), max_cond=1e13)).all())


def test_lagrangian_acceleration_bad_inputs():
    q = randn(4, 2)
    with pytest.raises(sl.SymplearnError, match="same shape"):
        lagrangian_acceleration(lambda a, b: (b * b).sum(), q, q[:, :1])
    with pytest.raises(sl.SymplearnError, match="to a scalar"):
        lagrangian_acceleration(lambda a, b: b * b, q, q)
    with pytest.raises(sl.SymplearnError, match="regularization"):
        lagrangian_acceleration(lambda a, b: (b * b).sum(), q, q, regularization=-1.0)
    with pytest.raises(sl.NonFiniteError, match="NaN or infinite at 1 of 4"):
        bad = q.clone()
        bad[2, 0] = float("nan")
        lagrangian_acceleration(lambda a, b: (b * b).sum() + (a * a).sum(), bad, q)


# -- LNN ------------------------------------------------------------------------------------
def test_lnn_batched_equals_per_sample_and_generic_solver():
    torch.manual_seed(0)
    model = LNN(2, width=16).to(F64)
    x = randn(40, 4, seed=25)
    q, qdot = x[:, :2], x[:, 2:]
    batched = model.acceleration(q, qdot)
    loop = torch.stack([model.acceleration(q[i], qdot[i]) for i in range(40)])
    assert torch.allclose(batched, loop, rtol=1e-12, atol=1e-12)
    # the closed-form-gradient path against torch.func's autograd of the network itself
    generic = lagrangian_acceleration(lambda a, b: model.lagrangian(a, b), q, qdot)
    assert torch.allclose(batched, generic, rtol=1e-10, atol=1e-10)
    f = model.vector_field(0.0, x)
    assert torch.equal(f[:, :2], qdot) and torch.allclose(f[:, 2:], batched, rtol=0, atol=0)


def test_lnn_energy_is_conserved_along_its_own_field():
    model = randomize_(LNN(2, width=16).to(F64), std=0.5, seed=26)
    x = randn(64, 4, seed=27)
    f = model.vector_field(0.0, x)
    gE = gradient(model.energy, x)
    dEdt = (gE * f).sum(-1)
    scale = gE.norm(dim=-1) * f.norm(dim=-1)
    assert (scale > 1e-3).all()
    assert (dEdt.abs() / scale).max() < 1e-10
    q, qdot = x[:, :2], x[:, 2:]
    E = (qdot * model.momenta(q, qdot)).sum(-1) - model.lagrangian(q, qdot)
    assert torch.allclose(model.energy(x), E, atol=1e-14)
    assert torch.equal(model.hamiltonian(x), model.energy(x))


def test_lnn_trains_through_its_accelerations():
    """Gradients with respect to the weights reach every parameter but the output bias (a
    constant added to L changes nothing) through the second derivatives and the solve, and
    agree with finite differences."""
    torch.manual_seed(1)
    model = LNN(1, width=8).to(F64)
    x = randn(16, 2, seed=28)

    def loss():
        return (model.vector_field(0.0, x)[:, 1:] + x[:, :1]).pow(2).mean()

    params = [p for name, p in model.named_parameters() if name != "lagrangian_net.out.bias"]
    assert len(params) == len(list(model.parameters())) - 1
    grads = torch.autograd.grad(loss(), params)
    assert all(bool(g.abs().sum() > 0) for g in grads)
    w = model.lagrangian_net.hidden[0].weight
    with torch.no_grad():
        w[0, 0] += 1e-6
        up = loss()
        w[0, 0] -= 2e-6
        down = loss()
        w[0, 0] += 1e-6
    assert float(grads[0][0, 0]) == pytest.approx(float((up - down) / 2e-6), rel=1e-5)


# -- activations, construction, configs -----------------------------------------------------
@pytest.mark.parametrize("kind", ["hnn", "hnn-separable", "lnn", "sympnet-grad"])
def test_relu_is_refused_where_second_derivatives_matter(kind):
    kwargs = {"n_dof": 1, "activation": "relu"}
    if kind.startswith("sympnet"):
        kwargs["dt"] = 0.1
    with pytest.raises(
        sl.SymplearnError, match=r"cannot use activation 'relu'.*smooth.*valid smooth activations"
    ):
        build_model(kind, **kwargs)


def test_relu_is_accepted_where_only_first_derivatives_matter():
    assert MLPField(1, activation="relu").config["activation"] == "relu"
    model = randomize_(LASympNet(1, dt=1.0, activation="relu").to(F64))
    z = randn(16, 2, seed=29)
    assert symplecticity_defect(batch_jacobian(model, z)).max() < 1e-12


def _kwargs(kind):
    kw = {"n_dof": 2, "width": 8} if kind not in ("sympnet-la",) else {"n_dof": 2}
    if kind.startswith("sympnet"):
        kw["dt"] = 0.25
    return kw


# models of a few degrees of freedom; the learned interatomic potentials (particles in a box,
# built from n_particles and a box) have their own tests in test_potentials.py
PHASE_SPACE_KINDS = [k for k, cls in MODELS.items() if not issubclass(cls, ParticleSystem)]


@pytest.mark.parametrize("kind", PHASE_SPACE_KINDS)
def test_build_model_round_trip_through_config(kind, tmp_path):
    assert {"mlp", "hnn", "hnn-separable", "lnn", "sympnet-la", "sympnet-g", "sympnet-grad"} <= set(MODELS)
    torch.manual_seed(0)
    model = build_model(kind, **_kwargs(kind)).to(F64)
    config = json.loads(json.dumps(model.config))  # JSON-able
    assert config["kind"] == kind
    torch.manual_seed(1)
    copy = build_model(**config).to(F64)
    copy.load_state_dict(model.state_dict())
    x = randn(5, 4, seed=30)
    out = model.step(0.0, x) if isinstance(model, sl.FlowMap) else model.vector_field(0.0, x)
    out2 = copy.step(0.0, x) if isinstance(copy, sl.FlowMap) else copy.vector_field(0.0, x)
    assert torch.equal(out, out2)
    # and through a model folder (safetensors + config.json)
    from symplearn.modelio import load_model, save_model

    loaded = load_model(save_model(model, tmp_path / kind))
    out3 = loaded.step(0.0, x) if isinstance(loaded, sl.FlowMap) else loaded.vector_field(0.0, x)
    assert torch.equal(out, out3)


def test_build_model_errors_list_the_valid_choices():
    with pytest.raises(
        sl.SymplearnError, match=r"unknown model kind 'hnnn' \(did you mean 'hnn'\?\).*sympnet-g"
    ):
        build_model("hnnn", n_dof=1)
    with pytest.raises(
        sl.SymplearnError, match=r"unknown argument widht; accepted arguments: n_dof, width=64"
    ):
        build_model("hnn", n_dof=1, widht=3)
    with pytest.raises(sl.SymplearnError, match=r"missing required argument dt"):
        build_model("sympnet-g", n_dof=1)
    with pytest.raises(TypeError):  # what modelio catches to name the folder
        build_model("mlp", n_dof=1, dt=0.1)
    with pytest.raises(sl.SymplearnError, match="dt must be a positive finite number"):
        build_model("sympnet-la", n_dof=1, dt=0.0)
    with pytest.raises(sl.SymplearnError, match="width must be an integer >= 1"):
        build_model("lnn", n_dof=1, width=0)
    with pytest.raises(sl.SymplearnError, match="unknown activation 'tahn'"):
        build_model("hnn", n_dof=1, activation="tahn")


@pytest.mark.parametrize("kind", PHASE_SPACE_KINDS)
def test_models_check_state_shape_and_dtype(kind):
    model = build_model(kind, **_kwargs(kind))
    run = as_state_map(model)
    with pytest.raises(sl.SymplearnError, match=r"states have shape \(\.\.\., 4\); got shape \(3, 3\)"):
        run(torch.zeros(3, 3))
    with pytest.raises(sl.SymplearnError, match="float32 parameters but the state is torch.float64"):
        run(torch.zeros(3, 4, dtype=F64))


def test_build_model_ignore_unused_takes_only_what_each_kind_accepts():
    sizes = {"n_dof": 1, "width": 16, "depth": 3, "layers": 2, "dt": 0.1, "activation": None}
    assert build_model("mlp", ignore_unused=True, **sizes).config == {
        "kind": "mlp",
        "n_dof": 1,
        "width": 16,
        "depth": 3,
        "activation": "tanh",
    }
    la = build_model("sympnet-la", ignore_unused=True, **sizes).config
    assert la["layers"] == 2 and la["dt"] == 0.1 and "width" not in la
    with pytest.raises(sl.SymplearnError, match="unknown argument"):
        build_model("mlp", n_dof=1, layers=2)  # without the flag an unused size is still an error
