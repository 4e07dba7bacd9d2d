"""Ground truth where the geometry runs out: damped, forced (non-autonomous) systems.

Every system here is port-Hamiltonian,

    dz/dt = (J - R(z)) grad H0(z) + F(t),

with a conservative energy ``H0`` (autonomous), a positive semi-definite dissipation matrix ``R``
and a forcing ``F(t)`` on the momenta. Along every exact trajectory the energy balance

    dH0/dt = -grad H0^T R grad H0 + grad H0 . F(t) = -(dissipated power) + (forcing power)

holds identically (``grad H0^T J grad H0 = 0``). None of them is a
:class:`~symplearn.dynamics.Dynamics` with conserved energy: ``conserved_quantities`` is empty.

Systems (``name``: equation; defaults from the papers that benchmark them):

* ``damped-oscillator``: ``q'' = -q - gamma q'``, gamma = 0.3 (Desai et al. 2021, "damped");
* ``forced-oscillator``: ``H = q^2/2 + p^2/2 - q sin(3t)``, i.e. ``q'' = -q + sin(3t)``
  (Desai et al. 2021, "forced mass-spring", type 1);
* ``dhnn-spring``: the damped spring of Sosanya and Greydanus 2022 (D-HNN), ``H = q^2 + p^2``,
  ``dq/dt = 2p - rho q``, ``dp/dt = -2q``, rho = 2 (damping on the position, as in their code);
* ``duffing``: ``q'' = -alpha q - beta q^3 - gamma q' + f sin(omega t + phase)``, defaults
  alpha = -1, beta = 1, gamma = 0.3, f = 0.2, omega = 1.2 (Desai et al., Duffing type 1);
* ``duffing-chaotic``: the same with gamma = 0.1, f = 0.39, omega = 1.4, phase = pi/2 (forcing
  ``0.39 cos(1.4 t)``: Desai et al.'s chaotic Duffing, type 3).

The three linear ones share :class:`LinearOscillator` (``H0 = k q^2/2 + p^2/(2m)``,
``R = diag(gamma_q, gamma_p)``), whose exact solution is the matrix exponential of the
homogeneous part plus the closed-form periodic particular solution.

Time: ``vector_field(t, z)`` takes ``t`` as a float, a 0-d tensor, or a tensor broadcastable
against ``z.shape[:-1]`` (one time per state).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._errors import SymplearnError, lookup
from ..dynamics import Dynamics, join, split
from .base import System


def as_time(t, z: Tensor) -> Tensor:
    """``t`` (float, 0-d tensor or tensor broadcastable against ``z.shape[:-1]``) as a tensor of
    ``z``'s dtype and device."""
    if isinstance(t, Tensor):
        return t.to(dtype=z.dtype, device=z.device)
    try:
        return torch.tensor(float(t), dtype=z.dtype, device=z.device)
    except (TypeError, ValueError):
        raise SymplearnError(f"t must be a number or a tensor of times, got {t!r}") from None


class PortHamiltonianDynamics(Dynamics):
    """``dz/dt = (J - R(z)) grad H(z) + F(t)``: energy ``H``, dissipation ``R`` (positive
    semi-definite) and forcing ``F``.

    Subclasses implement :meth:`hamiltonian`, :meth:`grad_hamiltonian`,
    :meth:`dissipation_matrix` and :meth:`forcing`; :meth:`vector_field` and the power terms
    follow. The energy balance ``dH/dt = -dissipated_power + forcing_power`` is then an identity.
    """

    default_integrator = "rk4"

    def hamiltonian(self, z: Tensor) -> Tensor:
        """The conservative energy ``H(z)``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        raise NotImplementedError

    def grad_hamiltonian(self, z: Tensor) -> Tensor:
        """``grad H(z)``. Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        raise NotImplementedError

    def dissipation_matrix(self, z: Tensor) -> Tensor:
        """``R(z)``, symmetric positive semi-definite. Args: z: ``(..., 2n)``. Returns: ``(..., 2n, 2n)``."""
        raise NotImplementedError

    def forcing(self, t) -> Tensor:
        """The forcing ``F(t)``, zero on the positions. Args: t: float or ``(...)``. Returns ``(..., 2n)``."""
        raise NotImplementedError

    def energy(self, z: Tensor) -> Tensor:
        """Same as :meth:`hamiltonian`: the energy whose balance the ports describe."""
        return self.hamiltonian(z)

    def dissipated_power(self, t, z: Tensor) -> Tensor:
        """``grad H^T R grad H >= 0``. Args: t: time(s), z: ``(..., 2n)``. Returns: ``(...)``."""
        g = self.grad_hamiltonian(z)
        return torch.einsum("...i,...ij,...j->...", g, self.dissipation_matrix(z), g)

    def forcing_power(self, t, z: Tensor) -> Tensor:
        """``grad H . F(t)``. Args: t: time(s), z: ``(..., 2n)``. Returns: ``(...)``."""
        return (self.grad_hamiltonian(z) * self.forcing(as_time(t, z))).sum(-1)

    def energy_rate(self, t, z: Tensor) -> Tensor:
        """``dH/dt`` predicted by the ports: ``-dissipated_power + forcing_power``. Returns ``(...)``."""
        return self.forcing_power(t, z) - self.dissipated_power(t, z)

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``(J - R) grad H + F(t)``. Args: t: time(s), z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        g = self.grad_hamiltonian(z)
        gq, gp = split(g)
        rg = torch.einsum("...ij,...j->...i", self.dissipation_matrix(z), g)
        return join(gp, -gq) - rg + self.forcing(as_time(t, z))


class _PortSystem(PortHamiltonianDynamics):
    """A ground-truth port-Hamiltonian system, with the bookkeeping of
    :class:`~symplearn.systems.base.System` (named parameters with defaults, validation,
    seeded sampling on shells of ``H0``) but not its kind: it is no
    :class:`~symplearn.dynamics.HamiltonianDynamics` (``dz/dt != J grad H``)."""

    name: str = "system"
    n_dof: int = 1
    has_lagrangian: bool = False
    has_exact_solution: bool = False
    PARAMS: dict[str, float] = {}
    ENERGY_RANGE: tuple[float, float] = (0.1, 1.0)
    Q_BOX: float = math.pi

    # the parameter handling and the sampler of System, shared rather than copied
    __init__ = System.__init__
    _validate = System._validate
    __repr__ = System.__repr__
    sample = System.sample
    _energy_range = System._energy_range
    _admissible = System._admissible

    def conserved_quantities(self, z: Tensor) -> dict[str, Tensor]:
        """None: energy is dissipated and injected. Returns ``{}``."""
        return {}

    def rayleigh_potential(self, z: Tensor) -> Tensor:
        """``D(z)`` with ``grad D = -R grad H`` where ``R grad H`` is a gradient field (the D-HNN
        convention: the dissipative part of the field is ``+grad D``, so ``D <= 0`` here).
        Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        raise NotImplementedError(f"{self.name} declares no Rayleigh potential")


class LinearOscillator(_PortSystem):
    """Damped, driven linear oscillator, port-Hamiltonian form.

    ``H0 = k q^2/2 + p^2/(2m)``, ``R = diag(gamma_q, gamma_p)``,
    ``F(t) = (0, f sin(Omega t + phase))``:

        dq/dt = p/m - gamma_q k q,    dp/dt = -k q - gamma_p p/m + f sin(Omega t + phase).

    With ``m = 1``, ``gamma_q = 0`` this is ``q'' = -k q - gamma_p q' + f sin(Omega t + phase)``.
    Exact solution: ``z(t) = z_p(t) + expm(A (t - t0)) (z0 - z_p(t0))`` with the periodic
    particular solution ``z_p = a sin(Omega t + phase) + c cos(Omega t + phase)`` (solved from
    a 4x4 linear system; refused at exact resonance).
    """

    name = "linear-oscillator"
    n_dof = 1
    has_exact_solution = True
    PARAMS = {"k": 1.0, "m": 1.0, "gamma_q": 0.0, "gamma_p": 0.0, "f": 0.0, "Omega": 3.0, "phase": 0.0}
    ENERGY_RANGE = (0.2, 1.0)
    Q_BOX = 2.0

    def _validate(self) -> None:
        if self.k <= 0 or self.m <= 0:
            raise SymplearnError(f"{self.name}: k and m must be > 0, got k={self.k}, m={self.m}")
        if self.gamma_q < 0 or self.gamma_p < 0:
            raise SymplearnError(
                f"{self.name}: damping must be >= 0 (R positive semi-definite), got "
                f"gamma_q={self.gamma_q}, gamma_p={self.gamma_p}"
            )

    def hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        return (0.5 * self.k * q**2 + 0.5 * p**2 / self.m).sum(-1)

    def grad_hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        return join(self.k * q, p / self.m)

    def dissipation_matrix(self, z: Tensor) -> Tensor:
        R = torch.diag(torch.tensor([self.gamma_q, self.gamma_p], dtype=z.dtype, device=z.device))
        return R.expand(*z.shape[:-1], 2, 2)

    def forcing(self, t) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64) if not isinstance(t, Tensor) else t
        s = self.f * torch.sin(self.Omega * t + self.phase)
        return torch.stack([torch.zeros_like(s), s], -1)

    def rayleigh_potential(self, z: Tensor) -> Tensor:
        q, p = split(z)
        return -(0.5 * self.gamma_q * self.k * q**2 + 0.5 * self.gamma_p * p**2 / self.m).sum(-1)

    def vector_field(self, t, z: Tensor) -> Tensor:
        q, p = split(z)
        dq = p / self.m - self.gamma_q * self.k * q
        dp = -self.k * q - self.gamma_p * p / self.m
        if self.f != 0.0:
            dp = dp + self.f * torch.sin(self.Omega * as_time(t, z) + self.phase)[..., None]
        return join(dq, dp)

    def system_matrix(self, dtype=torch.float64) -> Tensor:
        """``A`` of the homogeneous part ``dz/dt = A z``. Returns ``(2, 2)``."""
        return torch.tensor(
            [[-self.gamma_q * self.k, 1.0 / self.m], [-self.k, -self.gamma_p / self.m]], dtype=dtype
        )

    def _particular(self, dtype) -> tuple[Tensor, Tensor]:
        """Vectors ``a, c (2,)`` of ``z_p = a sin(Omega t + phase) + c cos(Omega t + phase)``."""
        A = self.system_matrix(torch.float64)
        W = self.Omega * torch.eye(2, dtype=torch.float64)
        M = torch.cat([torch.cat([A, W], 1), torch.cat([-W, A], 1)], 0)
        rhs = torch.tensor([0.0, -self.f, 0.0, 0.0], dtype=torch.float64)
        if float(torch.linalg.svdvals(M).min()) < 1e-12 * float(torch.linalg.svdvals(M).max()):
            raise SymplearnError(
                f"{self.name}: exact resonance (undamped, Omega = sqrt(k/m)); the forced solution "
                f"grows linearly and has no periodic particular part; change Omega or add damping"
            )
        sol = torch.linalg.solve(M, rhs)
        return sol[:2].to(dtype), sol[2:].to(dtype)

    def exact_solution(self, z0: Tensor, t: Tensor, t0: float = 0.0) -> Tensor:
        """Exact flow from ``z0`` at time ``t0``. Args: z0: ``(..., 2)``, t: ``(T,)`` absolute
        times. Returns: ``(T, ..., 2)``."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        A = self.system_matrix(torch.float64)
        E = torch.linalg.matrix_exp(A[None] * (t - t0)[:, None, None])  # (T, 2, 2)
        z0d = z0.to(torch.float64)
        if self.f != 0.0:
            a, c = self._particular(torch.float64)
            ph0 = self.Omega * t0 + self.phase
            zp0 = a * math.sin(ph0) + c * math.cos(ph0)
            ph = (self.Omega * t + self.phase)[:, None]
            zp = a * torch.sin(ph) + c * torch.cos(ph)  # (T, 2)
        else:
            zp0 = torch.zeros(2, dtype=torch.float64)
            zp = torch.zeros(len(t), 2, dtype=torch.float64)
        hom = torch.einsum("tij,...j->t...i", E, z0d - zp0)
        zp = zp.reshape(len(t), *([1] * (z0.ndim - 1)), 2)
        return (hom + zp).to(z0.dtype)


class DampedOscillator(LinearOscillator):
    """``q'' = -q - gamma q'`` with gamma = 0.3 (Desai et al. 2021): ``H0 = (q^2 + p^2)/2``,
    ``R = diag(0, gamma)``, no forcing. Parameters as :class:`LinearOscillator`."""

    name = "damped-oscillator"
    PARAMS = {**LinearOscillator.PARAMS, "gamma_p": 0.3}


class ForcedOscillator(LinearOscillator):
    """Desai et al.'s forced spring ``H = q^2/2 + p^2/2 - q sin(3t)``: ``H0 = (q^2 + p^2)/2``
    and ``F = (0, sin(3t))``, no damping (``q'' = -q + sin(3t)``). Parameters as
    :class:`LinearOscillator`."""

    name = "forced-oscillator"
    PARAMS = {**LinearOscillator.PARAMS, "f": 1.0, "Omega": 3.0}


class DHNNSpring(LinearOscillator):
    """The damped spring of Sosanya and Greydanus (2022): ``H0 = q^2 + p^2`` (k = 2, m = 1/2)
    and the dissipative field ``(-rho q, 0)`` with rho = 2, i.e. ``R = diag(rho/2, 0)``:
    ``dq/dt = 2p - 2q``, ``dp/dt = -2q`` (their code damps the position coordinate)."""

    name = "dhnn-spring"
    PARAMS = {**LinearOscillator.PARAMS, "k": 2.0, "m": 0.5, "gamma_q": 1.0}
    Q_BOX = 1.2


class Duffing(_PortSystem):
    """Damped, driven Duffing oscillator:
    ``q'' = -alpha q - beta q^3 - gamma q' + f sin(omega t + phase)``.

    ``H0 = p^2/2 + alpha q^2/2 + beta q^4/4``, ``R = diag(0, gamma)``,
    ``F = (0, f sin(omega t + phase))``. Defaults: Desai et al.'s Duffing (alpha = -1, beta = 1:
    a double well; gamma = 0.3, f = 0.2, omega = 1.2). :class:`DuffingChaotic` is their chaotic
    setting.
    """

    name = "duffing"
    n_dof = 1
    PARAMS = {"alpha": -1.0, "beta": 1.0, "gamma": 0.3, "f": 0.2, "omega": 1.2, "phase": 0.0}
    ENERGY_RANGE = (0.0, 1.0)
    Q_BOX = 2.0

    def _validate(self) -> None:
        if self.beta <= 0:
            raise SymplearnError(f"{self.name}: beta must be > 0 (bounded wells), got {self.beta}")
        if self.gamma < 0:
            raise SymplearnError(
                f"{self.name}: gamma must be >= 0 (R positive semi-definite), got {self.gamma}"
            )

    def hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        return (0.5 * p**2 + 0.5 * self.alpha * q**2 + 0.25 * self.beta * q**4).sum(-1)

    def grad_hamiltonian(self, z: Tensor) -> Tensor:
        q, p = split(z)
        return join(self.alpha * q + self.beta * q**3, p)

    def dissipation_matrix(self, z: Tensor) -> Tensor:
        R = torch.diag(torch.tensor([0.0, self.gamma], dtype=z.dtype, device=z.device))
        return R.expand(*z.shape[:-1], 2, 2)

    def forcing(self, t) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64) if not isinstance(t, Tensor) else t
        s = self.f * torch.sin(self.omega * t + self.phase)
        return torch.stack([torch.zeros_like(s), s], -1)

    def rayleigh_potential(self, z: Tensor) -> Tensor:
        _, p = split(z)
        return -(0.5 * self.gamma * p**2).sum(-1)

    def vector_field(self, t, z: Tensor) -> Tensor:
        q, p = split(z)
        dp = -self.alpha * q - self.beta * q**3 - self.gamma * p
        if self.f != 0.0:
            dp = dp + self.f * torch.sin(self.omega * as_time(t, z) + self.phase)[..., None]
        return join(p, dp)


class DuffingChaotic(Duffing):
    """Desai et al.'s chaotic Duffing: ``q'' = q - q^3 - 0.1 q' + 0.39 cos(1.4 t)``."""

    name = "duffing-chaotic"
    PARAMS = {**Duffing.PARAMS, "gamma": 0.1, "f": 0.39, "omega": 1.4, "phase": math.pi / 2}


#: canonical name -> damped/forced system class (kept apart from ``SYSTEMS`` until every
#: command carries time; see the module docstring)
PORT_SYSTEMS: dict[str, type[_PortSystem]] = {
    cls.name: cls
    for cls in (LinearOscillator, DampedOscillator, ForcedOscillator, DHNNSpring, Duffing, DuffingChaotic)
}


#: the dissipation experiment's names of its systems -> the canonical names (``symplearn train
#: --system forced-spring`` trains on the experiment's forced spring)
PORT_ALIASES: dict[str, str] = {
    "forced-spring": "forced-oscillator",
    "damped-spring": "damped-oscillator",
}


def get_port_system(name: str, **params: float) -> _PortSystem:
    """Build a damped/forced system from its name (see ``PORT_SYSTEMS``, or an alias of
    ``PORT_ALIASES``) and parameters.

    Raises:
        SymplearnError: an unknown name or parameter (the message lists the valid ones), or an
            invalid value.
    """
    name = PORT_ALIASES.get(name, name)
    return lookup(name, PORT_SYSTEMS, "damped/forced system")(**params)


__all__ = [
    "DHNNSpring",
    "DampedOscillator",
    "Duffing",
    "DuffingChaotic",
    "ForcedOscillator",
    "LinearOscillator",
    "PortHamiltonianDynamics",
    "PORT_ALIASES",
    "PORT_SYSTEMS",
    "as_time",
    "get_port_system",
]
