"""The small set of questions every dynamics answers, declared by type.

Ground-truth systems and learned models share these interfaces, so every integrator,
diagnostic and plot works on both without special cases:

* :class:`Dynamics`: continuous time, ``dz/dt = vector_field(t, z)`` (autonomous dynamics ignore
  ``t``). Its call ``dynamics(t, z)`` is the vector field, so any dynamics is a ``func(t, y)`` for
  ``torchdiffeq.odeint``.
* :class:`HamiltonianDynamics`: ``dz/dt = J grad H(z)`` with an energy ``hamiltonian(z)``.
* :class:`SeparableHamiltonian`: ``H = T(p) + V(q)`` with ``grad_T(p)`` and ``grad_V(q)``, which
  explicit symplectic integrators (Verlet, Yoshida) need.
* :class:`FlowMap`: discrete time, ``z_{k+1} = step(t_k, z_k)`` for a fixed declared ``dt``. A
  continuous dynamics discretised by an integrator
  (:func:`symplearn.integrators.discretize.discretize`) is one; a SympNet is one.
  ``integrate``, the rollout loss, ``fit``, the diagnostics and the command line consume flow maps.

Each kind declares its own defaults as class attributes (``state_kind``,
``default_integrator``), so no table elsewhere decides for it.

State convention: ``z = (q, p)`` of shape ``(..., 2n)``, positions first
(``q = z[..., :n]``, ``p = z[..., n:]``). Lagrangian dynamics (an LNN) use ``(q, q_dot)``
instead: they are :class:`LagrangianDynamics` (whose ``state_kind`` is ``"lagrangian"``); a
flow map of such states (a discretised LNN) carries its dynamics' ``state_kind``.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor

from ._errors import SymplearnError

__all__ = [
    "Dynamics",
    "FlowMap",
    "HamiltonianDynamics",
    "LagrangianDynamics",
    "SeparableHamiltonian",
    "batch_time",
    "join",
    "split",
]

STATE_KINDS = ("canonical", "lagrangian")


class Dynamics(abc.ABC):
    """Continuous-time dynamics ``dz/dt = vector_field(t, z)``.

    Subclasses set ``n_dof`` (n; the state has 2n entries) and implement :meth:`vector_field`.

    Class attributes (each kind's own defaults):
        state_kind: ``"canonical"`` for ``z = (q, p)``, ``"lagrangian"`` for ``(q, q_dot)``.
        default_integrator: canonical name of the integrator that suits this kind for rollouts
            (``discretize(dynamics, dt=...)`` uses it).
        default_loss: the training loss ``fit(loss="auto")`` uses for a learned dynamics of this
            kind (``"derivative"``; ``"acceleration"`` for Lagrangian states).
        default_grad_clip: the gradient-norm clip ``fit(grad_clip="auto")`` uses (None: none).
    """

    n_dof: int
    state_kind: str = "canonical"
    default_integrator: str = "rk4"
    default_loss: str = "derivative"
    default_grad_clip: float | None = None

    @property
    def dim(self) -> int:
        """Phase-space dimension 2n."""
        return 2 * self.n_dof

    @abc.abstractmethod
    def vector_field(self, t: float | Tensor, z: Tensor) -> Tensor:
        """``dz/dt`` at time ``t`` and state ``z``.

        Args:
            t: time: a float, or a tensor broadcastable to the batch shape ``z.shape[:-1]``
                (implicit Runge-Kutta stages pass one time per stage); autonomous dynamics
                ignore it. :func:`batch_time` gives it the batch shape.
            z: ``(..., 2n)``.

        Returns:
            ``(..., 2n)``.
        """

    def __call__(self, t: float | Tensor, z: Tensor) -> Tensor:
        """``vector_field(t, z)``: the ``func(t, y)`` that ODE solvers such as torchdiffeq call."""
        return self.vector_field(t, z)


class LagrangianDynamics(Dynamics):
    """Dynamics on Lagrangian states ``x = (q, q_dot)``: ``dx/dt = (q_dot, q_ddot)``.

    The state kind is this type (``state_kind = "lagrangian"`` follows from it): a learned
    Lagrangian (an LNN) trains on accelerations and is compared with a canonical system through
    its Legendre map (:mod:`symplearn.runs._states`).
    """

    state_kind = "lagrangian"
    default_loss = "acceleration"


class HamiltonianDynamics(Dynamics):
    """``dz/dt = J grad H(z)`` for an energy ``H``; symplectic implicit methods suit any such H.

    The vector field is derived here, once, from :meth:`grad_hamiltonian` (by autograd of
    :meth:`hamiltonian` unless a subclass gives the gradient in closed form); a subclass
    overrides :meth:`vector_field` only for an analytic field that is faster.
    """

    default_integrator = "implicit-midpoint"

    @abc.abstractmethod
    def hamiltonian(self, z: Tensor) -> Tensor:
        """The energy ``H(z)``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""

    def grad_hamiltonian(self, z: Tensor) -> Tensor:
        """``grad H(z)`` by autograd, keeping the graph when gradients are on (so integrators and
        training can differentiate through it). Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        return scalar_gradient(self.hamiltonian, z, create_graph=torch.is_grad_enabled())

    def vector_field(self, t: float | Tensor, z: Tensor) -> Tensor:
        """``J grad H(z) = (dH/dp, -dH/dq)`` (autonomous). Args: z: ``(..., 2n)``.
        Returns: ``(..., 2n)``."""
        g = self.grad_hamiltonian(z)
        n = g.shape[-1] // 2
        return torch.cat([g[..., n:], -g[..., :n]], dim=-1)


class SeparableHamiltonian(HamiltonianDynamics):
    """``H = T(p) + V(q)``: explicit symplectic splitting methods (Verlet) apply."""

    default_integrator = "verlet"

    @abc.abstractmethod
    def grad_T(self, p: Tensor) -> Tensor:
        """``dT/dp``. Args: p: ``(..., n)``. Returns: ``(..., n)``."""

    @abc.abstractmethod
    def grad_V(self, q: Tensor) -> Tensor:
        """``dV/dq``. Args: q: ``(..., n)``. Returns: ``(..., n)``."""


class FlowMap(abc.ABC):
    """Discrete-time dynamics: ``z_{k+1} = step(t_k, z_k)`` for a fixed, declared step ``dt``.

    Subclasses set ``n_dof`` and ``dt`` and implement :meth:`step`.
    """

    n_dof: int
    dt: float
    state_kind: str = "canonical"
    default_loss: str = "rollout"
    default_grad_clip: float | None = None

    @property
    def dim(self) -> int:
        """Phase-space dimension 2n."""
        return 2 * self.n_dof

    @abc.abstractmethod
    def step(self, t: float | Tensor, z: Tensor) -> Tensor:
        """One step of the map from time ``t``. Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""


def batch_time(t: float | Tensor, z: Tensor) -> Tensor:
    """The time argument of a vector field as a tensor of the batch shape ``z.shape[:-1]``
    (dtype and device of ``z``): what a non-autonomous field multiplies its forcing by."""
    return torch.as_tensor(t, dtype=z.dtype, device=z.device).expand(z.shape[:-1])


def split(z: Tensor) -> tuple[Tensor, Tensor]:
    """Split ``z: (..., 2n)`` into ``q, p: (..., n)``."""
    n = z.shape[-1] // 2
    return z[..., :n], z[..., n:]


def join(q: Tensor, p: Tensor) -> Tensor:
    """Join ``q, p: (..., n)`` into ``z: (..., 2n)``."""
    return torch.cat([q, p], dim=-1)


def scalar_gradient(f, z: Tensor, *, create_graph: bool = False) -> Tensor:
    """Batched gradient ``(..., d)`` of a scalar function ``f: (..., d) -> (...)`` at ``z`` by
    autograd (each output depending only on its own row); ``create_graph`` keeps the graph so
    the result can be differentiated again. Works under ``torch.no_grad`` (not in inference
    mode). :func:`symplearn.geometry.gradient` is this function."""
    with torch.enable_grad():
        x = z if z.requires_grad else z.detach().requires_grad_(True)
        val = f(x)
        if val.shape != x.shape[:-1]:
            raise SymplearnError(
                f"expected a scalar function with output shape {tuple(x.shape[:-1])}, "
                f"got output shape {tuple(val.shape)}"
            )
        (g,) = torch.autograd.grad(val.sum(), x, create_graph=create_graph)
    return g
