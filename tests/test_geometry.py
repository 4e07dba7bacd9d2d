"""Phase-space core: J, symplectic gradients, Poisson brackets, Jacobians, divergence."""

import pytest
import torch
from conftest import tol

import symplearn as sl
from symplearn.geometry import apply_J, gradient


@pytest.mark.parametrize("n", [1, 2, 5])
def test_canonical_J_properties(n, dtype):
    J = sl.canonical_J(n, dtype=dtype)
    eye = torch.eye(2 * n, dtype=dtype)
    assert torch.equal(J.T, -J)
    assert torch.equal(J @ J, -eye)
    v = torch.randn(7, 2 * n, dtype=dtype)
    assert torch.allclose(apply_J(v), v @ J.T)


def test_canonical_J_rejects_bad_n():
    with pytest.raises(sl.SymplearnError, match="positive integer"):
        sl.canonical_J(0)


def test_symplectic_gradient_gives_hamiltons_equations(dtype):
    """H = p^2/2 + w^2 q^2/2 + q1 q2 p1 (2 dof) against the hand-derived field."""
    w = 1.7

    def H(z):
        q1, q2, p1, p2 = z.unbind(-1)
        return 0.5 * (p1**2 + p2**2) + 0.5 * w**2 * (q1**2 + q2**2) + q1 * q2 * p1

    z = torch.randn(5, 3, 4, dtype=dtype)
    X = sl.symplectic_gradient(H, z)
    q1, q2, p1, p2 = z.unbind(-1)
    expected = torch.stack([p1 + q1 * q2, p2, -(w**2 * q1 + q2 * p1), -(w**2 * q2 + q1 * p1)], -1)
    assert X.shape == z.shape
    assert torch.allclose(X, expected, atol=tol(dtype, 1e-12, 1e-5))


def test_gradient_rejects_non_scalar_functions():
    with pytest.raises(sl.SymplearnError, match="scalar function"):
        gradient(lambda z: z, torch.randn(3, 2))


def test_poisson_bracket_canonical_relations_and_lie_algebra():
    z = torch.randn(64, 4, dtype=torch.float64)
    coord = [lambda z, i=i: z[..., i] for i in range(4)]
    # {q_i, p_j} = delta_ij, {q_i, q_j} = {p_i, p_j} = 0
    for i in range(2):
        for j in range(2):
            qp = sl.poisson_bracket(coord[i], coord[2 + j], z)
            assert torch.allclose(qp, torch.full_like(qp, float(i == j)))
            assert float(sl.poisson_bracket(coord[i], coord[j], z).abs().max()) == 0.0
    f = lambda z: torch.sin(z[..., 0]) * z[..., 3] ** 2  # noqa: E731
    g = lambda z: z[..., 1] * z[..., 2] + z[..., 0] ** 3  # noqa: E731
    h = lambda z: torch.cos(z[..., 2] + z[..., 1])  # noqa: E731
    assert torch.allclose(sl.poisson_bracket(f, g, z), -sl.poisson_bracket(g, f, z), atol=1e-12)

    # Jacobi identity {f,{g,h}} + {g,{h,f}} + {h,{f,g}} = 0 (brackets of brackets by autograd)
    with torch.enable_grad():

        def pb(a, b, x):
            ga = torch.autograd.grad(a(x).sum(), x, create_graph=True)[0]
            gb = torch.autograd.grad(b(x).sum(), x, create_graph=True)[0]
            return (ga * apply_J(gb)).sum(-1)

        x = z.clone().requires_grad_(True)
        jac = (
            pb(f, lambda y: pb(g, h, y), x)
            + pb(g, lambda y: pb(h, f, y), x)
            + pb(h, lambda y: pb(f, g, y), x)
        )
    assert float(jac.detach().abs().max()) < 1e-12


def test_batch_jacobian_matches_jacrev(dtype):
    W = torch.randn(4, 4, dtype=dtype)

    def fn(z):
        return torch.tanh(z @ W.T) * z[..., :1]

    z = torch.randn(6, 4, dtype=dtype)
    A = sl.batch_jacobian(fn, z)
    ref = torch.func.vmap(torch.func.jacrev(fn))(z)
    assert A.shape == (6, 4, 4)
    assert torch.allclose(A, ref, atol=tol(dtype, 1e-12, 1e-5))


def test_symplecticity_defect_tells_symplectic_from_not(dtype):
    th = torch.tensor(0.7, dtype=dtype)
    R = torch.stack([torch.stack([th.cos(), th.sin()]), torch.stack([-th.sin(), th.cos()])])
    shear = torch.tensor([[1.0, 0.3], [0.0, 1.0]], dtype=dtype)
    squeeze = torch.diag(torch.tensor([2.0, 0.5], dtype=dtype))  # area-preserving in 1 dof
    scale = torch.diag(torch.tensor([1.1, 1.0], dtype=dtype))
    A = torch.stack([R, shear, squeeze, scale])
    d = sl.symplecticity_defect(A)
    assert float(d[:3].max()) < tol(dtype, 1e-14, 1e-6)
    assert abs(float(d[3]) - 0.1 * 2**0.5) < 1e-6
    # in 2 dof, independent area scaling of the two planes is volume-preserving but not symplectic
    B = torch.diag(torch.tensor([2.0, 0.5, 1.0, 1.0], dtype=dtype))  # (q1,q2,p1,p2): q1x2, q2x0.5
    assert abs(float(torch.linalg.det(B)) - 1) < 1e-6 and float(sl.symplecticity_defect(B)) > 0.5
    with pytest.raises(sl.SymplearnError, match="square Jacobians of even size"):
        sl.symplecticity_defect(torch.eye(3))


def test_divergence_of_linear_and_hamiltonian_fields(dtype):
    M = torch.randn(4, 4, dtype=dtype)
    z = torch.randn(10, 4, dtype=dtype)
    div = sl.divergence(lambda x: x @ M.T, z)
    assert torch.allclose(div, torch.trace(M).expand(10), atol=tol(dtype, 1e-12, 1e-5))
    pend = sl.get_system("pendulum")
    z2 = pend.sample(10, dtype=dtype)
    assert float(sl.divergence(pend, z2).abs().max()) < tol(dtype, 1e-12, 1e-5)
