"""The angle-embedded HNN: exact periodicity, closed-form gradient, Hamiltonian field."""

from __future__ import annotations

import math

import pytest
import torch

from symplearn import SymplearnError
from symplearn.models.angles import AngleHNN


@pytest.mark.parametrize("angles", [None, (1,)])
def test_gradient_matches_autograd_and_energy_is_periodic(angles):
    torch.manual_seed(0)
    m = AngleHNN(2, 16, 2, angles=angles).double()
    z = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    g = torch.autograd.grad(m.hamiltonian(z).sum(), z)[0]
    assert torch.allclose(m.grad_hamiltonian(z), g, atol=1e-13, rtol=0)
    shifted = z.detach().clone()
    for a in angles or (0, 1):
        shifted[:, a] += 2 * math.pi * 3
    assert torch.allclose(m.hamiltonian(shifted), m.hamiltonian(z.detach()), atol=1e-12, rtol=0)
    # dH/dt = grad H . J grad H = 0 exactly
    with torch.no_grad():
        f = m.vector_field(0.0, z)
        assert float((m.grad_hamiltonian(z) * f).sum(-1).abs().max()) < 1e-12


def test_bad_angle_index():
    with pytest.raises(SymplearnError, match="angles"):
        AngleHNN(2, 8, 1, angles=(2,))
