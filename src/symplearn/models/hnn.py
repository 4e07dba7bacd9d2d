"""Hamiltonian neural networks: learn a scalar energy, derive the field ``J grad H``."""

from __future__ import annotations

from torch import Tensor, nn

from ..dynamics import HamiltonianDynamics, SeparableHamiltonian, join, split
from ._common import ModelMixin, ScalarMLP, check_int
from .activations import get_activation


class HNN(ModelMixin, nn.Module, HamiltonianDynamics):
    """Hamiltonian neural network (Greydanus et al. 2019): ``dz/dt = J grad H_theta(z)``.

    ``H_theta`` is an MLP ``R^2n -> R``. Its input gradient is computed in closed form (see
    :class:`~symplearn.models._common.ScalarMLP`), so the field costs about two forward passes,
    needs no ``torch.enable_grad`` under ``torch.no_grad`` (rollout evaluation), and a training
    loss on the field backpropagates with one ordinary backward pass.

    Whatever the weights, the field is divergence-free and ``dH_theta/dt = 0`` along it.

    Args:
        n_dof: number of degrees of freedom n (state ``z = (q, p)``, shape ``(..., 2n)``).
        width: units per hidden layer.
        depth: number of hidden layers.
        activation: a smooth activation (``tanh``, ``softplus``, ``sigmoid``, ``sin``, ``gelu``,
            ``silu``); ``relu`` is refused.

    Raises:
        SymplearnError: non-positive sizes, an unknown or non-smooth activation.
    """

    kind = "hnn"

    def __init__(self, n_dof: int, width: int = 64, depth: int = 2, activation: str = "tanh"):
        super().__init__()
        self.n_dof = check_int("n_dof", n_dof)
        width = check_int("width", width)
        depth = check_int("depth", depth)
        act = get_activation(activation, smooth=True, model="HNN")
        self._set_config(n_dof=self.n_dof, width=width, depth=depth, activation=activation)
        self.energy_net = ScalarMLP(2 * self.n_dof, width, depth, act)

    def hamiltonian(self, z: Tensor) -> Tensor:
        """``H_theta(z)``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        self._check_state(z)
        return self.energy_net(z)

    def grad_hamiltonian(self, z: Tensor) -> Tensor:
        """``grad H_theta(z)`` in closed form. Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        self._check_state(z)
        return self.energy_net.gradient(z)

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`vector_field` (so the model is a ``func(t, y)`` for ODE solvers)."""
        return self.vector_field(t, z)


class SeparableHNN(ModelMixin, nn.Module, SeparableHamiltonian):
    """HNN with a separable energy ``H_theta(q, p) = T_theta(p) + V_theta(q)``.

    Two scalar MLPs ``R^n -> R``; separable, so explicit symplectic integrators (symplectic
    Euler, Verlet, Yoshida) can integrate it through :meth:`grad_T` and :meth:`grad_V`.

    Args:
        n_dof: number of degrees of freedom n (state ``z = (q, p)``, shape ``(..., 2n)``).
        width: units per hidden layer (of each network).
        depth: number of hidden layers (of each network).
        activation: a smooth activation; ``relu`` is refused.

    Raises:
        SymplearnError: non-positive sizes, an unknown or non-smooth activation.
    """

    kind = "hnn-separable"

    def __init__(self, n_dof: int, width: int = 64, depth: int = 2, activation: str = "tanh"):
        super().__init__()
        self.n_dof = check_int("n_dof", n_dof)
        width = check_int("width", width)
        depth = check_int("depth", depth)
        act = get_activation(activation, smooth=True, model="SeparableHNN")
        self._set_config(n_dof=self.n_dof, width=width, depth=depth, activation=activation)
        self.kinetic_net = ScalarMLP(self.n_dof, width, depth, act)
        self.potential_net = ScalarMLP(self.n_dof, width, depth, act)

    def kinetic(self, p: Tensor) -> Tensor:
        """``T_theta(p)``. Args: p: ``(..., n)``. Returns: ``(...)``."""
        return self.kinetic_net(p)

    def potential(self, q: Tensor) -> Tensor:
        """``V_theta(q)``. Args: q: ``(..., n)``. Returns: ``(...)``."""
        return self.potential_net(q)

    def hamiltonian(self, z: Tensor) -> Tensor:
        """``T_theta(p) + V_theta(q)``. Args: z: ``(..., 2n)``. Returns: ``(...)``."""
        self._check_state(z)
        q, p = split(z)
        return self.kinetic_net(p) + self.potential_net(q)

    def grad_T(self, p: Tensor) -> Tensor:
        """``dT_theta/dp`` (closed form). Args: p: ``(..., n)``. Returns: ``(..., n)``."""
        return self.kinetic_net.gradient(p)

    def grad_V(self, q: Tensor) -> Tensor:
        """``dV_theta/dq`` (closed form). Args: q: ``(..., n)``. Returns: ``(..., n)``."""
        return self.potential_net.gradient(q)

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``(dT/dp, -dV/dq)`` (autonomous). Args: z: ``(..., 2n)``. Returns: ``(..., 2n)``."""
        self._check_state(z)
        q, p = split(z)
        return join(self.grad_T(p), -self.grad_V(q))

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`vector_field` (so the model is a ``func(t, y)`` for ODE solvers)."""
        return self.vector_field(t, z)


__all__ = ["HNN", "SeparableHNN"]
