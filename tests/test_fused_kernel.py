"""The fused C force kernel of the descriptor potentials (symplearn.models._fused) against the
eager torch path: the same forces to a few ulps, still -grad E, taken exactly where it applies."""

from __future__ import annotations

import pytest
import torch

from symplearn.integrators import integrate
from symplearn.integrators.discretize import discretize
from symplearn.models import _fused, build_model
from symplearn.models.potentials import RadialBasis
from symplearn.systems.particles import LennardJones

# without any C compiler the eager path is all there is; with one, a kernel that does not build
# is a failure (test_the_kernel_builds), not a skip
pytestmark = pytest.mark.skipif(_fused.compiler() is None, reason="no C compiler: the eager path only")


def test_the_kernel_builds():
    assert _fused.status() == "available"


KINDS = ("symmetry-function", "direct-force")


def _setup(kind, n, neighbor, replicas=2, seed=0):
    lj = LennardJones(n, density=0.8442)
    z = lj.sample(replicas, temperature=1.0, seed=seed)
    g = torch.Generator().manual_seed(seed)
    q = z[:, : lj.n_dof] + 0.06 * torch.randn(replicas, lj.n_dof, generator=g, dtype=torch.float64)
    # unwrapped positions: whole boxes added to some particles (the kernel takes minimum images)
    q = q + lj.box_length * torch.randint(-2, 3, q.shape, generator=g).to(q.dtype)
    torch.manual_seed(seed)
    m = build_model(kind, n_particles=n, box_length=lj.box_length, neighbor=neighbor, n_basis=10, width=16)
    m = m.double()
    m.fit_scales(q)
    return m, q


def _forces(m, q, fused):
    m.fused = fused
    with torch.no_grad():
        return m.compute(q, energy=False, virial=False)["forces"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n, neighbor", [(108, "all-pairs"), (256, "vesin")])
def test_fused_forces_are_the_eager_forces_in_float64(kind, n, neighbor):
    """Two replicas, unwrapped positions: within 1e-13 of max |F| (the Gaussians by the
    two-exponential recurrence, all sums in pair order)."""
    m, q = _setup(kind, n, neighbor)
    F_eager, F = _forces(m, q, False), _forces(m, q, True)
    assert F.shape == q.shape and F.dtype == torch.float64
    assert float((F - F_eager).abs().max()) <= 1e-13 * float(F_eager.abs().max())


@pytest.mark.parametrize("kind", KINDS)
def test_fused_forces_in_float32_are_float64_forces_rounded(kind):
    """float32 weights and positions: the kernel works in float64 inside, so its forces are the
    float64 eager forces of the same (float32) numbers to the network's float32 round-off
    (1e-5 of max |F|); the eager float32 path is no closer."""
    m, q = _setup(kind, 108, "all-pairs")
    m32, q32 = m.float(), q.float()
    F32 = _forces(m32, q32, True)
    assert F32.dtype == torch.float32
    ref = _forces(m32.double(), q32.double(), False)
    err = float((F32.double() - ref).abs().max())
    assert err <= 1e-5 * float(ref.abs().max())
    err_eager = float((_forces(m32.float(), q32, False).double() - ref).abs().max())
    assert err <= 2 * err_eager


@pytest.mark.parametrize("kind", KINDS)
def test_fused_energy_and_virials_are_the_eager_ones(kind):
    """compute() with energy, virial and virial tensor outside autograd (what the ASE calculator
    and MD's thermo ask): the fused values per replica agree with the eager ones to 1e-13
    relative; the direct-force model's energy is NaN on both paths."""
    m, q = _setup(kind, 256, "vesin")
    outs = []
    for fused in (False, True):
        m.fused = fused
        with torch.no_grad():
            outs.append(m.compute(q, virial=True, virial_tensor=True))
    ref, out = outs
    for key in ("forces", "virial", "virial_tensor"):
        assert out[key].shape == ref[key].shape
        assert float((out[key] - ref[key]).abs().max()) <= 1e-13 * float(ref[key].abs().max())
    assert out["energy"].shape == (2,)
    if kind == "direct-force":
        assert bool(torch.isnan(out["energy"]).all() and torch.isnan(ref["energy"]).all())
    else:
        torch.testing.assert_close(out["energy"], ref["energy"], rtol=1e-13, atol=0)


def test_fused_forces_are_minus_the_gradient_of_the_energy():
    """The fused forces against autograd of the eager energy (float64): 1e-12 of max |F|."""
    m, q = _setup("symmetry-function", 108, "all-pairs", replicas=1)
    F = _forces(m, q, True)
    qg = q.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(m.compute(qg)["energy"].sum(), qg)
    assert float((F + g).abs().max()) <= 1e-12 * float(F.abs().max())


def test_kernel_descriptors_and_forces_at_every_distance():
    """Pairs from r = 0.3 (below the first centre) to beyond rc, 1 and 12 radial functions:
    the kernel's descriptor sums and pair forces against RadialBasis.forward (exact exponentials)
    to 1e-13 relative, and pairs at r >= rc contribute nothing."""
    g = torch.Generator().manual_seed(1)
    L, P = 7.0, 400
    r = torch.linspace(0.3, 2.9, P, dtype=torch.float64)  # rc = 2.5
    u = torch.randn(P, 3, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    x = torch.cat([torch.zeros(P, 3, dtype=torch.float64), r[:, None] * u])  # pair p: (p, P + p)
    x = x + 1.3  # some particles cross the box face: minimum images
    i, j = torch.arange(P), torch.arange(P, 2 * P)
    for K in (1, 12):
        basis = RadialBasis(2.5, K, r_min=0.8).double()
        mu0, h = basis.grid()
        c = torch.randn(2 * P, K, generator=g, dtype=torch.float64)
        seen = {}

        def coefficients(G, c=c, seen=seen):
            seen["G"] = G.clone()
            return c

        F, W = _fused.radial_forces(x, i, j, L, 2.5, basis.mu, h, coefficients, virial_replicas=1)
        b, db = basis(r, derivative=True)
        inside = (r < 2.5)[:, None]
        b, db = b * inside, db * inside
        G_ref = torch.cat([b, b])  # each particle is in one pair
        assert float((seen["G"] - G_ref).abs().max()) <= 1e-13 * float(G_ref.abs().max())
        s = -((c[:P] + c[P:]) * db).sum(-1) / r  # f_ij = s_ij (x_i - x_j)
        f_i = s[:, None] * (-r[:, None] * u)
        torch.testing.assert_close(F[:P], f_i, rtol=0, atol=1e-13 * float(f_i.abs().max()))
        torch.testing.assert_close(F[P:], -f_i, rtol=0, atol=1e-13 * float(f_i.abs().max()))
        assert float(F[P:][r >= 2.5].abs().max()) == 0.0
        d = -r[:, None] * u  # x_i - x_j
        W_ref = torch.einsum("p,pa,pb->ab", s * (r < 2.5), d, d)
        torch.testing.assert_close(W[0], W_ref, rtol=0, atol=1e-13 * float(W_ref.abs().max()))


def test_fused_path_is_taken_where_it_applies(monkeypatch):
    """Calls outside autograd go through the kernel; autograd through q or the weights,
    ``fused = False`` and a basis whose centres were moved off the even grid do not (and still
    give the right forces)."""
    calls = []
    real = _fused.radial_forces

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(_fused, "radial_forces", counting)
    m, q = _setup("symmetry-function", 108, "all-pairs", replicas=1)
    ref = _forces(m, q, False)
    assert not calls
    F = _forces(m, q, True)
    assert len(calls) == 1
    with torch.no_grad():
        m.compute(q)  # energy and virial
    assert len(calls) == 2
    out = m.compute(q, energy=False, virial=False)  # grad mode, weights require grad
    assert len(calls) == 2 and out["forces"].requires_grad
    with torch.no_grad():
        m.basis.mu[3] += 0.01  # no longer an even grid: eager
        moved = m.compute(q, energy=False, virial=False)["forces"]
    assert len(calls) == 2
    assert float((moved - ref).abs().max()) > 1e-6 * float(ref.abs().max())
    with torch.no_grad():
        m.basis.mu[3] -= 0.01
        back = m.compute(q, energy=False, virial=False)["forces"]
    assert len(calls) == 3
    torch.testing.assert_close(back, F, rtol=0, atol=0)


def test_verlet_runs_match_with_and_without_the_kernel():
    """50 NVE Verlet steps at N = 256 (vesin list, rebuilt on the way): fused and eager runs end
    within 1e-10 of each other, the fused run is the same bits when repeated."""
    m, q = _setup("symmetry-function", 256, "vesin", replicas=1)
    p = 0.5 * torch.randn(q.shape, generator=torch.Generator().manual_seed(4), dtype=q.dtype)
    z0 = torch.cat([q, p], -1)
    ends = []
    for fused in (True, True, False):
        m.fused = fused
        m._cache = None
        with torch.no_grad():
            ends.append(integrate(discretize(m, "verlet", 0.005), z0, 50, save_every=50).z[-1])
    assert torch.equal(ends[0], ends[1])
    assert float((ends[0] - ends[2]).abs().max()) < 1e-10
    assert m._nl.builds >= 4  # the list was rebuilt during the runs


def test_no_compiler_means_the_eager_path(monkeypatch):
    """A failing compiler gives a reason, not an error; SYMPLEARN_FUSED=0 disables the kernel."""
    monkeypatch.setenv("CC", "false")
    lib, reason = _fused._build()
    assert lib is None and "could not compile" in reason
    monkeypatch.setenv("SYMPLEARN_FUSED", "0")
    lib, reason = _fused._build()
    assert lib is None and "SYMPLEARN_FUSED=0" in reason
    m, q = _setup("direct-force", 108, "all-pairs", replicas=1)
    ref = _forces(m, q, False)
    monkeypatch.setattr(_fused, "_state", {"lib": None, "reason": reason})
    assert _fused.status() == reason
    torch.testing.assert_close(_forces(m, q, True), ref, rtol=0, atol=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_positions_give_non_finite_forces(bad):
    """A NaN or infinite coordinate: the kernel skips no pair silently; forces, energy and virial
    are NaN as on the eager path (so the integrator's check stops at that step)."""
    m, q = _setup("symmetry-function", 108, "all-pairs", replicas=1)
    q = q.clone()
    q[0, 7] = bad
    with torch.no_grad():
        out = m.compute(q)
    assert not bool(torch.isfinite(out["forces"]).all())
    assert not bool(torch.isfinite(out["energy"]).all()) and not bool(torch.isfinite(out["virial"]).all())


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_stored_in_float32_and_run_in_float64_keeps_the_kernel_exact(kind, tmp_path):
    """``symplearn train`` stores float32 weights, ``symplearn md`` runs float64: the centres are
    float32 numbers about 1e-8 off the even grid. The kernel takes them as stored: it runs
    (``last_force_path``), agrees with the eager path to 1e-13, and its forces are -grad E of
    the eager energy to 1e-12 (a grid rebuilt from mu_0 and h was 1e-8 off)."""
    from symplearn.modelio import load_model, save_model

    m, q = _setup(kind, 108, "all-pairs", replicas=1)
    save_model(m.float(), tmp_path / "m")
    loaded = load_model(tmp_path / "m").double()
    for model in (loaded, m.double()):  # from the folder, and in memory float -> double
        grid = torch.arange(model.basis.mu.shape[0], dtype=torch.float64) * model.basis.grid()[1]
        assert float((model.basis.mu - model.basis.mu[0] - grid).abs().max()) > 1e-9
        F = _forces(model, q, True)
        assert model.last_force_path == "fused C kernel"
        ref = _forces(model, q, False)
        assert float((F - ref).abs().max()) <= 1e-13 * float(ref.abs().max())
        if kind == "symmetry-function":
            qg = q.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(model.compute(qg)["energy"].sum(), qg)
            assert float((F + g).abs().max()) <= 1e-12 * float(F.abs().max())


def test_centres_edited_in_place_are_seen():
    """An edit through ``mu.data`` (no version bump) moves the centres off the grid: the next
    call runs eager with the edited centres, not the kernel with the old ones."""
    m, q = _setup("symmetry-function", 108, "all-pairs", replicas=1)
    _forces(m, q, True)
    m.basis.mu.data[3] += 0.05
    F = _forces(m, q, True)
    assert m.last_force_path.startswith("eager torch")
    torch.testing.assert_close(F, _forces(m, q, False), rtol=0, atol=0)


def test_forward_mode_through_a_frozen_model_takes_the_eager_path():
    """torch.func.jvp of the forces of a frozen model (no weight needs a gradient, q is a dual
    tensor without storage the kernel could read): the eager path, the same tangent as autograd
    double-backward gives."""
    m, q = _setup("symmetry-function", 108, "all-pairs", replicas=1)
    m.requires_grad_(False)
    v = torch.randn(q.shape, generator=torch.Generator().manual_seed(7), dtype=q.dtype)
    _, tangent = torch.func.jvp(lambda x: m.compute(x, energy=False, virial=False)["forces"], (q,), (v,))
    assert m.last_force_path == "eager torch"
    qg = q.clone().requires_grad_(True)
    F = m.compute(qg, energy=False, virial=False)["forces"]
    (ref,) = torch.autograd.grad(F, qg, v)  # H symmetric: J v = J^T v
    torch.testing.assert_close(tangent, ref, rtol=1e-10, atol=1e-10 * float(ref.abs().max()))


def test_the_kernel_inside_torch_compile():
    """A user's torch.compile'd function around the forces: the kernel runs outside the traced
    graph (torch.compiler.disable), so the C writes are seen; traced through, the forces were
    wrong by 10 % of max |F|."""
    m, q = _setup("symmetry-function", 108, "all-pairs", replicas=1)

    @torch.compile(backend="eager")  # dynamo's tracing is what matters, not inductor's code
    def doubled(x):
        return 2.0 * m.compute(x, energy=False, virial=False)["forces"]

    with torch.no_grad():
        out = doubled(q)
        ref = 2.0 * _forces(m, q, False)
    assert float((out - ref).abs().max()) <= 1e-13 * float(ref.abs().max())
