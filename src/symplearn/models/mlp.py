"""The unstructured baseline: a network that outputs the vector field directly."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..dynamics import Dynamics
from ._common import ModelMixin, check_int
from .activations import get_activation


class MLPField(ModelMixin, nn.Module, Dynamics):
    """``dz/dt = f_theta(z)``: a plain MLP from ``(..., 2n)`` to ``(..., 2n)``.

    No structure: the learned field may have non-zero divergence, so its flow can create or
    destroy phase-space volume and energy. The baseline that the structured models are compared
    with (same width and depth).

    Args:
        n_dof: number of degrees of freedom n (the state has 2n coordinates, q's then p's).
        width: units per hidden layer.
        depth: number of hidden layers.
        activation: any name in :data:`~symplearn.models.activations.ACTIVATIONS`.

    Raises:
        SymplearnError: non-positive sizes or an unknown activation.
    """

    kind = "mlp"

    def __init__(self, n_dof: int, width: int = 64, depth: int = 2, activation: str = "tanh"):
        super().__init__()
        self.n_dof = check_int("n_dof", n_dof)
        width = check_int("width", width)
        depth = check_int("depth", depth)
        act = get_activation(activation, model="MLPField")
        self._set_config(n_dof=self.n_dof, width=width, depth=depth, activation=activation)
        dims = [2 * self.n_dof] + [width] * depth
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), _ActModule(act)]
        layers.append(nn.Linear(width, 2 * self.n_dof))
        self.net = nn.Sequential(*layers)
        self._linears = [m for m in self.net if isinstance(m, nn.Linear)]
        self._act = act

    def vector_field(self, t, z: Tensor) -> Tensor:
        """``dz/dt = f_theta(z)`` (autonomous: ``t`` is ignored). Args: z: ``(..., 2n)``.
        Returns: ``(..., 2n)``."""
        self._check_state(z)
        # the layers called functionally (F.linear), not as modules: a rollout is bound by
        # per-call overhead, and nn.Module.__call__ was a third of an MLP field's time
        *hidden, last = self._linears
        h = z
        for lin in hidden:
            h = self._act.fn(F.linear(h, lin.weight, lin.bias))
        return F.linear(h, last.weight, last.bias)

    def forward(self, t, z: Tensor) -> Tensor:
        """Same as :meth:`vector_field` (so the model is a ``func(t, y)`` for ODE solvers)."""
        return self.vector_field(t, z)


class _ActModule(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        return self.act.fn(x)

    def extra_repr(self) -> str:
        return self.act.name
