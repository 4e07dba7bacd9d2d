"""Activation functions with their derivatives, shared by every model.

Models that differentiate a network with respect to its input (HNN, SeparableHNN, LNN,
GradientSympNet) compute the input gradient in closed form and need ``sigma'``; training then
differentiates that gradient once more, so they also need ``sigma`` to be twice differentiable.
Those models accept only the :data:`SMOOTH_ACTIVATIONS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .._errors import SymplearnError, lookup

__all__ = ["ACTIVATIONS", "SMOOTH_ACTIVATIONS", "Activation", "get_activation"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``sigma`` and its derivative.

    Attributes:
        name: canonical name (``"tanh"``, ``"softplus"``, ...).
        fn: ``sigma(x)``, elementwise.
        deriv: ``(x, y) -> sigma'(x)`` where ``y = sigma(x)`` (passed so that ``tanh`` and
            ``sigmoid`` reuse their output); elementwise, differentiable again by autograd.
        smooth: True when ``sigma`` is infinitely differentiable (needed by models whose field is
            a gradient of a network and whose training differentiates that gradient again).
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    deriv: Callable[[Tensor, Tensor], Tensor]
    smooth: bool = True
    fused_backprop: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None

    def __call__(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def backprop(self, g: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """``g * sigma'(x)`` (one chain-rule step), with ``y = sigma(x)``.

        Uses torch's fused backward kernel where one exists (tanh, sigmoid, softplus: one
        elementwise pass instead of three; they are differentiable again). ``g`` may broadcast
        against ``x``.
        """
        if self.fused_backprop is not None:
            return self.fused_backprop(g, x, y)
        return g * self.deriv(x, y)


def _tanh_deriv(x: Tensor, y: Tensor) -> Tensor:
    return 1.0 - y * y


def _sigmoid_deriv(x: Tensor, y: Tensor) -> Tensor:
    return y * (1.0 - y)


def _softplus_deriv(x: Tensor, y: Tensor) -> Tensor:
    return torch.sigmoid(x)


def _sin_deriv(x: Tensor, y: Tensor) -> Tensor:
    return torch.cos(x)


def _gelu_deriv(x: Tensor, y: Tensor) -> Tensor:
    # gelu(x) = x Phi(x)  =>  gelu'(x) = Phi(x) + x phi(x)
    cdf = 0.5 * (1.0 + torch.erf(x * _INV_SQRT2))
    return cdf + x * torch.exp(-0.5 * x * x) * _INV_SQRT2PI


def _silu_deriv(x: Tensor, y: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _tanh_backprop(g: Tensor, x: Tensor, y: Tensor) -> Tensor:
    return torch.ops.aten.tanh_backward(g, y)


def _sigmoid_backprop(g: Tensor, x: Tensor, y: Tensor) -> Tensor:
    return torch.ops.aten.sigmoid_backward(g, y)


def _softplus_backprop(g: Tensor, x: Tensor, y: Tensor) -> Tensor:
    # same beta=1, threshold=20 as F.softplus's defaults
    return torch.ops.aten.softplus_backward(g, x, 1.0, 20.0)


def _relu_deriv(x: Tensor, y: Tensor) -> Tensor:
    return (x > 0).to(x.dtype)


#: canonical name -> activation
ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", torch.tanh, _tanh_deriv, fused_backprop=_tanh_backprop),
    "softplus": Activation("softplus", F.softplus, _softplus_deriv, fused_backprop=_softplus_backprop),
    "sigmoid": Activation("sigmoid", torch.sigmoid, _sigmoid_deriv, fused_backprop=_sigmoid_backprop),
    "sin": Activation("sin", torch.sin, _sin_deriv),
    "gelu": Activation("gelu", F.gelu, _gelu_deriv),
    "silu": Activation("silu", F.silu, _silu_deriv),
    "relu": Activation("relu", F.relu, _relu_deriv, smooth=False),
}

#: names of the activations accepted by models whose field is the gradient of a network
SMOOTH_ACTIVATIONS: tuple[str, ...] = tuple(k for k, a in ACTIVATIONS.items() if a.smooth)


def get_activation(
    name: str, *, smooth: bool = False, model: str | None = None, reason: str | None = None
) -> Activation:
    """Look up an activation by name.

    Args:
        name: one of :data:`ACTIVATIONS` (``tanh``, ``softplus``, ``sigmoid``, ``sin``, ``gelu``,
            ``silu``, ``relu``).
        smooth: require a smooth activation (models that differentiate a network with respect
            to its input, then train through that derivative).
        model: the model asking, named in the error message.
        reason: why that model needs a smooth activation (default: its field is the gradient of
            a network), said in the error message.

    Returns:
        The :class:`Activation`.

    Raises:
        SymplearnError: unknown name (the message lists the valid ones), or a non-smooth
            activation where ``smooth=True`` (the message says why and lists the smooth ones).
    """
    if not isinstance(name, str):
        raise SymplearnError(f"activation must be a name (str), got {type(name).__name__} {name!r}")
    act = lookup(name, ACTIVATIONS, "activation")
    if smooth and not act.smooth:
        who = model or "this model"
        why = reason or (
            f"its field is the gradient of a network, and with {name}' a step function (its "
            f"second derivative vanishes almost everywhere) the learned field would be piecewise "
            f"constant in the state and training through it would get no curvature signal"
        )
        raise SymplearnError(
            f"{who} cannot use activation {name!r}: the activation must be smooth ({why}); "
            f"valid smooth activations: {', '.join(SMOOTH_ACTIVATIONS)}"
        )
    return act
