"""D-HNN, PHNN and the time-input MLP: structure by construction (R positive semi-definite,
divergence-free conservative part, curl-free dissipative part, the energy balance identity),
config round trips; the Helmholtz decomposition on fields with known parts."""

import json

import numpy as np
import pytest
import torch

from symplearn._errors import SymplearnError
from symplearn.diagnostics.helmholtz import energy_balance_residual, helmholtz_decomposition
from symplearn.geometry import batch_jacobian
from symplearn.models import DHNN, PHNN, TimeMLPField, build_model
from symplearn.systems import get_port_system

F64 = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


def jac_trace_and_asym(fn, z):
    Jf = batch_jacobian(fn, z)  # (B, 2n, 2n)
    return Jf.diagonal(dim1=-2, dim2=-1).sum(-1), Jf - Jf.mT


@pytest.mark.parametrize("n_dof", [1, 2])
def test_dhnn_parts_are_divergence_free_and_curl_free(n_dof):
    torch.manual_seed(0)
    m = DHNN(n_dof, width=16).to(F64)
    z = randn(32, 2 * n_dof, seed=1)
    div_rot, _ = jac_trace_and_asym(m.conservative_field, z)
    assert float(div_rot.abs().max()) < 1e-13  # J grad H: divergence-free to round-off
    _, asym = jac_trace_and_asym(m.dissipative_field, z)
    assert float(asym.abs().max()) < 1e-13  # grad D: symmetric Jacobian (curl-free)
    div_d, _ = jac_trace_and_asym(m.dissipative_field, z)
    assert float(div_d.abs().max()) > 1e-3  # ... and not vacuously zero
    assert torch.allclose(m.vector_field(0.0, z), m.conservative_field(z) + m.dissipative_field(z))


@pytest.mark.parametrize("dissipation", ["diagonal", "diagonal-p", "full", "none"])
def test_phnn_R_is_psd_for_any_weights_and_energy_balance_is_an_identity(dissipation):
    torch.manual_seed(0)
    m = PHNN(2, width=16, dissipation=dissipation).to(F64)
    with torch.no_grad():  # arbitrary weights, including negative raw parameters
        for p in m.parameters():
            p.copy_(randn(*p.shape, seed=p.numel()))
    R = m.dissipation_constant()
    assert torch.equal(R, R.mT)
    assert float(torch.linalg.eigvalsh(R.detach()).min()) >= -1e-14
    z, t = randn(16, 4, seed=3), randn(16, seed=4).abs() * 5
    # dH/dt along the field = -dissipated + forcing power, pointwise
    dHdt = (m.grad_hamiltonian(z) * m.vector_field(t, z)).sum(-1)
    assert torch.allclose(dHdt, m.energy_rate(t, z), atol=1e-12)
    assert bool((m.dissipated_power(t, z) >= -1e-14).all())
    if dissipation == "diagonal-p":
        assert torch.equal(R[:2], torch.zeros(2, 4, dtype=F64))


def test_phnn_forcing_depends_on_time_only_and_acts_on_momenta():
    torch.manual_seed(0)
    m = PHNN(1, width=8).to(F64)
    t = torch.linspace(0, 5, 7, dtype=F64)
    F = m.forcing(t)
    assert F.shape == (7, 2) and torch.equal(F[:, 0], torch.zeros(7, dtype=F64))
    z = randn(7, 2, seed=5)
    without = PHNN(1, width=8, forcing="none").to(F64)
    without.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("forcing_net")})
    assert torch.allclose(m.vector_field(t, z) - without.vector_field(t, z), F)


@pytest.mark.parametrize(
    ("cls", "kw"),
    [(DHNN, {}), (PHNN, {"dissipation": "full", "forcing": "mlp", "forcing_width": 8}), (TimeMLPField, {})],
)
def test_config_rebuilds_the_model(cls, kw):
    torch.manual_seed(0)
    m = cls(1, width=8, **kw).to(F64)
    cfg = json.loads(json.dumps(m.config))
    copy = build_model(**cfg).to(F64)
    copy.load_state_dict(m.state_dict())
    z, t = randn(5, 2, seed=6), torch.tensor(0.7, dtype=F64)
    assert torch.equal(m.vector_field(t, z), copy.vector_field(t, z))


def test_bad_arguments_say_what_would_work():
    with pytest.raises(SymplearnError, match="unknown dissipation 'diag'; valid: diagonal"):
        PHNN(1, dissipation="diag")
    with pytest.raises(SymplearnError, match="unknown forcing"):
        PHNN(1, forcing="fourier")
    with pytest.raises(SymplearnError, match=r"states have shape \(\.\.\., 2\)"):
        DHNN(1).vector_field(0.0, torch.zeros(3, 3))


# -- Helmholtz decomposition -------------------------------------------------------------------
def _bumps(N, L=3.0):
    q = np.linspace(-L, L, N)
    Q, P = np.meshgrid(q, q, indexing="ij")
    s = 0.5
    phi = np.exp(-((Q - 0.4) ** 2 + (P - 0.2) ** 2) / (2 * s * s))
    psi = 1.5 * np.exp(-((Q + 0.3) ** 2 + (P + 0.5) ** 2) / (2 * s * s))
    gphi = np.stack([-(Q - 0.4) / s**2 * phi, -(P - 0.2) / s**2 * phi], -1)
    gpsi = np.stack([-(Q + 0.3) / s**2 * psi, -(P + 0.5) / s**2 * psi], -1)
    return q, gphi, np.stack([gpsi[..., 1], -gpsi[..., 0]], -1)


def test_helmholtz_recovers_known_parts_at_second_order():
    """v = grad phi + J grad psi with Gaussian potentials: both parts recovered, the error falls
    as h^2 (measured slope), the harmonic remainder vanishes with it."""
    errs = []
    for N in (64, 128, 256):
        q, g, r = _bumps(N)
        d = helmholtz_decomposition(g + r, q, q)
        eg = np.sqrt(((d.gradient - g) ** 2).sum() / (g**2).sum())
        er = np.sqrt(((d.rotational - r) ** 2).sum() / (r**2).sum())
        errs.append(max(eg, er))
    slope = np.polyfit(np.log([64, 128, 256]), np.log(errs), 1)[0]
    assert -2.3 < slope < -1.7, errs
    assert errs[-1] < 3e-3
    q, g, r = _bumps(128)
    d = helmholtz_decomposition(g + r, q, q)
    truth = (g**2).sum() / ((g + r) ** 2).sum()
    assert abs(d.shares["gradient"] - truth) < 0.01


def test_helmholtz_of_hamiltonian_fields_has_no_gradient_part():
    """A divergence-free field (the oscillator; an HNN) has grad phi = 0 to round-off; the damped
    oscillator's gradient part has divergence -gamma everywhere."""
    q = np.linspace(-2, 2, 65)
    sysd = get_port_system("damped-oscillator")
    osc = get_port_system("damped-oscillator", gamma_p=0.0)
    d0 = helmholtz_decomposition(lambda z: osc.vector_field(0.0, z), q, q)
    assert np.abs(d0.gradient).max() < 1e-13 and d0.shares["gradient"] < 1e-28
    d1 = helmholtz_decomposition(lambda z: sysd.vector_field(0.0, z), q, q)
    div = np.gradient(d1.gradient[..., 0], q, axis=0) + np.gradient(d1.gradient[..., 1], q, axis=1)
    assert np.abs(div[2:-2, 2:-2] + 0.3).max() < 1e-2
    # a nonlinear divergence-free field (a network's J grad H): the gradient part is the finite
    # differences' truncation only, its share falling as h^4 (amplitude h^2)
    torch.manual_seed(0)
    hnn = DHNN(1, width=16).to(F64)
    shares = [
        helmholtz_decomposition(lambda z: hnn.conservative_field(z), x, x).shares["gradient"]
        for x in (np.linspace(-2, 2, 65), np.linspace(-2, 2, 129))
    ]
    assert shares[0] < 1e-6 and shares[1] < shares[0] / 8, shares


def test_helmholtz_rejects_bad_grids():
    q = np.linspace(-1, 1, 9)
    with pytest.raises(SymplearnError, match="uniformly spaced"):
        helmholtz_decomposition(np.zeros((9, 9, 2)), q**3, q)
    with pytest.raises(SymplearnError, match="shape"):
        helmholtz_decomposition(np.zeros((9, 8, 2)), q, q)


def test_energy_balance_residual_is_quadrature_error_on_the_exact_solution():
    s = get_port_system("forced-oscillator", gamma_p=0.2)
    z0 = randn(4, 2, seed=7)
    errs = []
    for n in (1001, 2001):  # the cumulative Simpson rule: fourth order in the spacing
        t = torch.linspace(0, 10, n, dtype=F64)
        r = energy_balance_residual(t, s.exact_solution(z0, t), s.energy, s.energy_rate)
        assert r.shape == (n, 4)
        errs.append(float(r.abs().max()))
    assert errs[1] < errs[0] / 10 and errs[1] < 1e-8, errs
    # a model that ignores the ports (the undamped, unforced oscillator's flow) violates it
    z_wrong = get_port_system("linear-oscillator").exact_solution(z0, t)
    assert float(energy_balance_residual(t, z_wrong, s.energy, s.energy_rate).abs().max()) > 0.1
