"""Base class of ground-truth Hamiltonian systems."""

from __future__ import annotations

import functools
import math
import numbers

import torch
from torch import Tensor

from .._errors import SymplearnError, check_names
from .._validate import check_int, check_state
from ..dynamics import HamiltonianDynamics, split


class System(HamiltonianDynamics):
    """A ground-truth Hamiltonian system.

    Separable systems also derive from :class:`~symplearn.dynamics.SeparableHamiltonian`
    (``class Pendulum(System, SeparableHamiltonian)``). Subclasses declare ``name``
    (command-line name), ``n_dof``, ``PARAMS`` (parameter names as in
    the formulas, with defaults), ``ENERGY_RANGE`` (default sampling range) and ``Q_BOX`` (the
    box ``[-Q_BOX, Q_BOX]^n`` that positions are sampled from), and implement
    :meth:`hamiltonian`. They override :meth:`vector_field` with the analytic field, and
    :meth:`grad_T`/:meth:`grad_V`, :meth:`lagrangian` (with the Legendre map :meth:`momenta` /
    :meth:`velocities` and the Euler-Lagrange :meth:`acceleration`), :meth:`exact_solution`,
    :meth:`conserved_quantities` where those exist. ``ENERGY_RANGE`` and ``Q_BOX`` may be
    properties when they scale with the parameters.
    """

    name: str = "system"
    n_dof: int = 1
    has_lagrangian: bool = False
    has_exact_solution: bool = False
    PARAMS: dict[str, float] = {}
    ENERGY_RANGE: tuple[float, float] = (0.1, 1.0)
    Q_BOX: float = math.pi

    def __init_subclass__(cls, **kwargs):
        """Every system's ``hamiltonian`` refuses states of the wrong last dimension (an energy of
        a wrongly shaped state would otherwise be silently computed from whatever coordinates
        the formula picks)."""
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("hamiltonian")
        if fn is not None and not getattr(fn, "_checks_shape", False):

            @functools.wraps(fn)
            def hamiltonian(self, z, _fn=fn):
                check_state(z, 2 * self.n_dof, owner=self.name, floating=False, finite=False)
                return _fn(self, z)

            hamiltonian._checks_shape = True
            cls.hamiltonian = hamiltonian

    def __init__(self, **params: float):
        check_names(params, self.PARAMS, f"parameter of {self.name}")
        values = dict(self.PARAMS)
        for k, v in params.items():
            try:
                values[k] = float(v)
            except (TypeError, ValueError):
                raise SymplearnError(f"parameter {k} of {self.name} must be a number, got {v!r}") from None
        for k, v in values.items():
            if not math.isfinite(v):
                raise SymplearnError(f"parameter {k} of {self.name} must be finite, got {v}")
        self.params = values
        for k, v in values.items():
            setattr(self, k, v)
        self._validate()

    def _validate(self) -> None:
        """Check parameter values (override to add constraints)."""

    def __repr__(self) -> str:
        args = format_params(self.params)
        return f"{type(self).__name__}({args})"

    # -- the dynamics ---------------------------------------------------------------------
    def conserved_quantities(self, z: Tensor) -> dict[str, Tensor]:
        """Named conserved quantities at ``z: (..., 2n)``, each ``(...)`` (or ``(..., k)`` for vectors)."""
        return {"energy": self.hamiltonian(z)}

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        """``L(q, q_dot)``. Args: q, qdot: ``(..., n)``. Returns ``(...)``."""
        raise NotImplementedError(f"{self.name} has no Lagrangian here")

    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        """Analytic Euler-Lagrange accelerations ``q_ddot(q, q_dot)``.

        Args:
            q, qdot: ``(..., n)``.

        Returns:
            ``(..., n)``.
        """
        raise NotImplementedError(f"{self.name} has no Lagrangian here")

    def momenta(self, q: Tensor, qdot: Tensor) -> Tensor:
        """Legendre map ``p = dL/d(q_dot)``. Args: q, qdot: ``(..., n)``. Returns ``(..., n)``."""
        raise NotImplementedError(f"{self.name} has no Lagrangian here")

    def velocities(self, q: Tensor, p: Tensor) -> Tensor:
        """Inverse Legendre map ``q_dot = dH/dp``. Args: q, p: ``(..., n)``. Returns ``(..., n)``."""
        raise NotImplementedError(f"{self.name} has no Lagrangian here")

    def exact_solution(self, z0: Tensor, t: Tensor) -> Tensor:
        """Exact flow. Args: z0: ``(..., 2n)``, t: ``(T,)``. Returns ``(T, ..., 2n)``."""
        raise NotImplementedError(f"{self.name} has no closed-form solution")

    # -- sampling -------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        *,
        energy_range: tuple[float, float] | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """Sample ``n`` initial states with energies uniform in ``energy_range`` (seeded).

        The generic sampler assumes a kinetic energy quadratic in p: it draws E, a position q
        with V(q) < E uniformly from the box ``[-Q_BOX, Q_BOX]^n`` (restricted to the region
        that :meth:`_admissible` accepts), a uniformly random momentum direction, and scales p
        so that ``H(q, p) = E``.

        Args:
            n: number of states.
            energy_range: ``(low, high)``; ``None`` uses the system's ``ENERGY_RANGE``.
            seed: seed of the private random generator (the global torch state is untouched).
            dtype: dtype of the result (sampling itself is done in float64).

        Returns:
            ``(n, 2n)`` in ``dtype``.

        Raises:
            SymplearnError: ``n`` not a positive integer, a seed that is not an integer in
                ``[0, 2^63)``, an invalid or unreachable energy range.
        """
        n = check_int("the number of states", n)
        lo, hi = self._energy_range(energy_range)
        gen = seeded_generator(seed)
        d = self.n_dof
        out = torch.empty(n, 2 * d, dtype=torch.float64)
        E = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
        todo = torch.arange(n)
        for _ in range(1000):
            m = len(todo)
            q = self.Q_BOX * (2 * torch.rand(m, d, generator=gen, dtype=torch.float64) - 1)
            pdir = torch.randn(m, d, generator=gen, dtype=torch.float64)
            pdir = pdir / pdir.norm(dim=-1, keepdim=True)
            zero = torch.zeros_like(q)
            V = self.hamiltonian(torch.cat([q, zero], -1))
            T = self.hamiltonian(torch.cat([q, pdir], -1)) - V
            ok = (V < E[todo]) & (T > 0) & self._admissible(q)
            s = torch.sqrt(torch.clamp(E[todo] - V, min=0) / torch.where(T > 0, T, torch.ones_like(T)))
            z = torch.cat([q, s[:, None] * pdir], -1)
            out[todo[ok]] = z[ok]
            todo = todo[~ok]
            if len(todo) == 0:
                return out.to(dtype)
        raise SymplearnError(
            f"could not sample states of {self.name} with energy in {(lo, hi)}: is the range reachable?"
        )

    def _energy_range(self, energy_range: tuple[float, float] | None) -> tuple[float, float]:
        """Validate ``energy_range`` (``None``: the default) and return it as floats."""
        rng = energy_range if energy_range is not None else self.ENERGY_RANGE
        try:
            lo, hi = (float(x) for x in rng)
        except (TypeError, ValueError):
            raise SymplearnError(
                f"energy_range must be a pair (low, high) of numbers, got {energy_range!r}"
            ) from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise SymplearnError(f"energy_range must be (low, high) with low <= high, got {(lo, hi)}")
        return lo, hi

    def _admissible(self, q: Tensor) -> Tensor:
        """Mask ``(m,)`` of sampled positions ``q: (m, n)`` the sampler may keep (default: all)."""
        return torch.ones(q.shape[:-1], dtype=torch.bool, device=q.device)


def format_params(params: dict) -> str:
    """``"g=9.81, L=1"``: numbers in ``%g``, other values (a cutoff treatment's name) as they are."""
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k}={v}"
        for k, v in params.items()
    )


def seeded_generator(seed) -> torch.Generator:
    """A private CPU generator seeded with ``seed`` (an integer in ``[0, 2^63)``)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
        raise SymplearnError(f"seed must be an integer in [0, 2^63), got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def kinetic_potential(system: System, z: Tensor) -> tuple[Tensor, Tensor]:
    """``(T, V)`` at ``z`` for a system whose potential is ``H(q, 0)``."""
    q, p = split(z)
    V = system.hamiltonian(torch.cat([q, torch.zeros_like(p)], -1))
    return system.hamiltonian(z) - V, V
