"""Detectors of non-conservative forces on exact fields, LJ, learned models and ASE calculators."""

from __future__ import annotations

import argparse
import math

import pytest
import torch

from symplearn.diagnostics.forces import (
    CurlCalculator,
    _orthonormal_pair,
    ase_force_fn,
    jacobian_asymmetry,
    loop_work,
    nve_audit,
    system_force_fn,
)
from symplearn.models import build_model
from symplearn.runs import check_forces as cf
from symplearn.systems.particles import LennardJones

N = 108


@pytest.fixture(scope="module")
def lj():
    return LennardJones(N, density=0.8442, cutoff_treatment="switched")


@pytest.fixture(scope="module")
def state(lj):
    z = lj.sample(1, temperature=1.0, seed=5)[0]
    g = torch.Generator().manual_seed(5)
    q = z[: lj.n_dof] + 0.08 * torch.randn(lj.n_dof, generator=g, dtype=torch.float64)
    return torch.cat([q, z[lj.n_dof :]])


def _linear_field(A):
    def fn(q):
        return q @ A.T

    fn.differentiable = True
    return fn


def test_exact_linear_fields():
    """F = A q: the trapezoid rule is exact on the loop's trigonometric integrand, so the work is
    0 for symmetric A and 2 pi a^2 v.A u != 0 for antisymmetric A; lambda = ||A_anti||/||A||
    on the block, exactly, by autograd and by finite differences."""
    g = torch.Generator().manual_seed(0)
    n = 12
    M = torch.randn(n, n, generator=g, dtype=torch.float64)
    S, K = M + M.T, M - M.T
    q0 = torch.randn(n, generator=g, dtype=torch.float64)
    w_sym = loop_work(_linear_field(S), q0, n_loops=3, n_points=16)
    assert w_sym.max_abs < 1e-12 * max(w_sym.scale)
    assert w_sym.verdict == "conservative"
    w_anti = loop_work(_linear_field(K), q0, n_loops=3, n_points=16, amplitude=0.05, seed=0)
    gen = torch.Generator().manual_seed(0)
    a2 = 0.05**2 * n
    for w in w_anti.work:  # W = pi a^2 (v.K u - u.K v) for the loop q0 + a (cos u + sin v)
        u, v = _orthonormal_pair(n, gen)
        assert abs(w - math.pi * a2 * float(v @ K @ u - u @ K @ v)) < 1e-12 * max(w_anti.scale)
    assert max(w_anti.quadrature_error) < 1e-12 * max(w_anti.scale)
    assert w_anti.verdict == "non-conservative"
    A = S + 0.3 * K
    for method in ("autograd", "finite-differences"):
        ja = jacobian_asymmetry(_linear_field(A), q0, n_atoms=n // 3, method=method)
        S_ = torch.argsort((q0.reshape(-1, 3) - q0.reshape(-1, 3)[0]).norm(dim=-1))
        cols = (3 * S_[:, None] + torch.arange(3)).reshape(-1)
        B = A[cols][:, cols]
        expected = float((0.5 * (B - B.T)).norm() / B.norm())
        assert abs(ja.max - expected) < (1e-14 if method == "autograd" else 1e-9)


def test_true_lj_and_learned_conservative(lj, state):
    q = state[: lj.n_dof]
    for sys_ in (lj, build_model("symmetry-function", n_particles=N, box_length=lj.box_length).double()):
        if hasattr(sys_, "fit_scales"):
            sys_.fit_scales(q[None])
        fn = system_force_fn(sys_)
        ja = jacobian_asymmetry(fn, q, n_atoms=4, box=lj.box_length)
        assert ja.method == "autograd" and ja.max < 1e-13 and ja.verdict == "symmetric"
        lw = loop_work(fn, q, n_loops=2, n_points=64, amplitude=0.02)
        # |W| within 10 x its stated quadrature error (the LJ switch makes the integrand only C^1)
        assert lw.verdict == "conservative"


def test_direct_force_model_is_caught(lj, state):
    """An untrained direct-force model at seed 0: lambda and loop work far above round-off."""
    q = state[: lj.n_dof]
    torch.manual_seed(0)
    m = build_model("direct-force", n_particles=N, box_length=lj.box_length).double()
    m.fit_scales(q[None])
    fn = system_force_fn(m)
    ja = jacobian_asymmetry(fn, q, n_atoms=4, box=lj.box_length)
    assert ja.max > 1e-3 and ja.verdict == "asymmetric"
    lw = loop_work(fn, q, n_loops=2, n_points=64, amplitude=0.02)
    assert lw.verdict == "non-conservative" and lw.relative > 1e-4


def test_ase_lennard_jones_and_curl(lj, state):
    """ASE's smooth LennardJones passes (finite-difference lambda < 1e-6); the same calculator
    wrapped with a curl of strength 0.5 fails both tests."""
    from ase.calculators.lj import LennardJones as AseLJ

    from symplearn.ase import to_atoms

    atoms = to_atoms(lj, state)
    q = state[: lj.n_dof]
    base = AseLJ(sigma=1.0, epsilon=1.0, rc=2.5, ro=2.0, smooth=True)
    fn = ase_force_fn(base, atoms)
    ja = jacobian_asymmetry(fn, q, n_atoms=3, box=lj.box_length)
    assert ja.method == "finite-differences" and ja.max < 1e-6
    lw = loop_work(fn, q, n_loops=2, n_points=32, amplitude=0.02)
    assert lw.verdict == "conservative"
    fn_c = ase_force_fn(CurlCalculator(0.5, base=base), atoms)
    ja_c = jacobian_asymmetry(fn_c, q, n_atoms=3, box=lj.box_length)
    assert ja_c.max > 1e-4 and ja_c.verdict == "asymmetric"
    lw_c = loop_work(fn_c, q, n_loops=2, n_points=32, amplitude=0.02)
    assert lw_c.verdict == "non-conservative"


def test_nve_audit_true_lj(lj, state):
    a = nve_audit(lj, state, dt=0.005, n_steps=200, save_every=5)
    assert a.verdict == "bounded" and a.energy_std_over_ke_std < 0.05
    assert math.isfinite(a.temperature_end)


def test_check_forces_command(tmp_path, lj, state):
    """The run module on a saved model folder and on ASE calculators by import path."""
    from symplearn.modelio import save_model

    cfg = dict(equilibration_steps=20, nve_steps=20, n_loops=2, loop_points=32)
    for kind, verdict in (("symmetry-function", "conservative"), ("direct-force", "non-conservative")):
        torch.manual_seed(0)
        m = build_model(kind, n_particles=N, box_length=lj.box_length, n_basis=8, width=16).double()
        m.fit_scales(state[None, : lj.n_dof])
        save_model(m, tmp_path / kind)
        check = cf.run(cf.Config(target=str(tmp_path / kind), **cfg), tmp_path / f"out_{kind}")
        assert check.verdict == verdict
        assert (tmp_path / f"out_{kind}" / "check_forces.json").exists()
    ap = argparse.ArgumentParser()
    cf.add_parser(ap.add_subparsers())
    args = ap.parse_args(
        ["check-forces", "symplearn.diagnostics.forces:CurlCalculator", "--kwargs", '{"strength": 0.5}',
         "--nve-steps", "0", "--equilibrate", "10", "--loops", "2", "--loop-points", "16", "--quiet"]
    )  # fmt: skip
    assert args.func(args) == 1
    with pytest.raises(ValueError, match="JSON object"):
        cf.run(cf.Config(target="ase.calculators.lj:LennardJones", kwargs="[1]"))


def test_jacobian_floor_is_measured_and_a_graded_curl_is_caught_above_it(lj, state):
    """ASE's LennardJones (plain cutoff, as ASE ships it) plus curls of graded strength: the floor
    is measured from the calculator (steps eps and eps/2); every curl whose antisymmetric
    Jacobian exceeds the reported detection limit is flagged, the pure gradient is not."""
    from ase.calculators.lj import LennardJones as AseLJ

    from symplearn.ase import to_atoms
    from symplearn.diagnostics.forces import _cluster

    atoms = to_atoms(lj, state)
    q = state[: lj.n_dof]
    base = AseLJ(sigma=1.0, epsilon=1.0, rc=2.5)
    pure = jacobian_asymmetry(ase_force_fn(base, atoms), q, n_atoms=4, box=lj.box_length)
    assert pure.verdict == "symmetric" and pure.max <= pure.floor
    # the measured floor sits on the calculator's round-off (about 8e-10 here), not at a fixed 1e-6
    assert 1e-12 <= pure.floor < 1e-8
    # ||J_anti|| of the added field s (sin k y, sin k z, sin k x) on the cluster, in closed form
    k = 2 * math.pi / lj.box_length
    x = q.reshape(-1, 3)[_cluster(q, 4, lj.box_length)]
    unit = math.sqrt(float((k**2 * torch.cos(k * x) ** 2).sum()) / 2)
    caught = []
    for s in (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 5e-4, 1e-2):
        ja = jacobian_asymmetry(
            ase_force_fn(CurlCalculator(s, base=base), atoms), q, n_atoms=4, box=lj.box_length
        )
        if s * unit > 2 * ja.detection_limit:
            assert ja.verdict == "asymmetric", (s, ja.max, ja.floor)
            caught.append(s)
    # the audit's 5e-4 eps/sigma (called conservative at the old fixed floor 1e-6) and weaker
    assert {1e-5, 1e-4, 5e-4, 1e-2} <= set(caught)
