"""Pieces shared by the models: argument checks, the config mixin, and :class:`ScalarMLP`,
a scalar network with a closed-form input gradient."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._errors import SymplearnError
from .._validate import check_float, check_int, check_state  # noqa: F401 (the models import them from here)
from .activations import Activation


class ModelMixin:
    """Config bookkeeping and input checks shared by every model.

    Every model stores ``self.config``: its constructor arguments plus ``"kind"`` (its name in
    :data:`symplearn.models.MODELS`), all JSON-able, so that ``build_model(**model.config)``
    rebuilds the same architecture. Training defaults (``default_loss``, ``default_grad_clip``)
    and ``default_integrator`` are declared with the dynamics kind (see
    :mod:`symplearn.dynamics`) and overridden by a model class where it differs (the LNN).
    """

    kind: str
    config: dict[str, Any]

    def _set_config(self, **kwargs: Any) -> None:
        self.config = {"kind": self.kind, **kwargs}

    def extra_repr(self) -> str:  # shown by nn.Module.__repr__
        return ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "kind")

    def _check_state(self, z: Tensor) -> None:
        check_state(z, 2 * self.n_dof, owner=type(self).__name__, floating=False, finite=False)
        # the first parameter, cached outside nn.Module's registry (called once per field
        # evaluation: next(self.parameters()) was a measurable share of a rollout's time);
        # .to() and load_state_dict keep Parameter objects, so the cached one stays current
        p = self.__dict__.get("_first_param")
        if p is None:
            p = next(self.parameters(), None)
            if p is not None:
                self.__dict__["_first_param"] = p
        if p is not None and z.dtype != p.dtype:
            raise SymplearnError(
                f"{type(self).__name__} has {p.dtype} parameters but the state is {z.dtype}; "
                f"convert one of them (model.to({z.dtype}) or z.to({p.dtype}))"
            )


class ScalarMLP(nn.Module):
    """A scalar network ``f: R^d -> R`` with ``depth`` hidden layers of ``width`` units, and its
    input gradient in closed form.

    ``f(x) = w^T sigma(W_k ... sigma(W_1 x + b_1) ... + b_k) + c``. The gradient is backpropagated
    by hand, ``grad f = W_1^T (sigma'(a_1) * W_2^T (... sigma'(a_k) * w))``: two passes of
    ordinary tensor operations, with no autograd call. Under ``torch.no_grad`` it builds no graph;
    with grad mode on it is recorded like any forward pass, so a loss on the gradient (an HNN's
    field) trains with one ordinary backward, never ``create_graph`` double-backward.
    """

    def __init__(self, in_dim: int, width: int, depth: int, activation: Activation):
        super().__init__()
        self.act = activation
        dims = [in_dim] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``f(x)``. Args: x: ``(..., d)``. Returns: ``(...)``."""
        h = x
        for lin in self.hidden:
            h = self.act.fn(lin(h))
        return F.linear(h, self.out.weight, self.out.bias)[..., 0]

    def gradient(self, x: Tensor) -> Tensor:
        """``grad f(x)`` in closed form. Args: x: ``(..., d)``. Returns: ``(..., d)``."""
        return self._value_and_grad(x, need_value=False)[1]

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(f(x), grad f(x))``. Args: x: ``(..., d)``. Returns: ``(...)``, ``(..., d)``."""
        val, g = self._value_and_grad(x, need_value=True)
        return val, g

    def _value_and_grad(self, x: Tensor, need_value: bool) -> tuple[Tensor | None, Tensor]:
        act = self.act
        h = x
        cache = []
        for lin in self.hidden:
            a = F.linear(h, lin.weight, lin.bias)  # not lin(h): no module-call overhead
            h = act.fn(a)
            cache.append((a, h))
        val = F.linear(h, self.out.weight, self.out.bias)[..., 0] if need_value else None
        # backward by hand: g_k = dH/dh_k, then dH/da_k = sigma'(a_k) g_k, g_{k-1} = W_k^T dH/da_k
        g = self.out.weight[0]
        for lin, (a, h) in zip(reversed(self.hidden), reversed(cache)):
            g = _vecmat(act.backprop(g, a, h), lin.weight)
        return val, g


def _vecmat(g: Tensor, W: Tensor) -> Tensor:
    """``g @ W`` for ``g: (..., m)``, ``W: (m, k)``.

    For a skinny result (``k`` much smaller than ``m``: the input layer, ``k = 2n``) CPU BLAS is
    3-8x faster on ``(W^T g^T)^T`` than on ``g @ W`` with ``W`` row-major (measured with torch
    2.13: 512x128 @ 128x4 takes 114 us one way, 14 us the other); for square ``W`` the plain
    product is as fast or faster. Same values either way (up to summation order).
    """
    if g.ndim == 2 and 4 * W.shape[1] <= W.shape[0]:
        return (W.mT @ g.mT).mT
    return g @ W


def small_normal_(t: Tensor, std: float = 0.01) -> Tensor:
    """Fill ``t`` in place from N(0, std^2) (SympNet parameters start near the identity map)."""
    with torch.no_grad():
        return t.normal_(0.0, std)
