"""Learnable dynamics, all ``torch.nn.Module``s that answer the same questions as the
ground-truth systems.

Continuous-time (:class:`~symplearn.dynamics.Dynamics`, ``vector_field(t, z)``):

* ``mlp`` :class:`MLPField`: the unstructured baseline ``dz/dt = f_theta(z)``; ``mlp-t``
  :class:`TimeMLPField` takes the time as an input too;
* ``hnn`` :class:`HNN`: ``dz/dt = J grad H_theta(z)``;
* ``hnn-separable`` :class:`SeparableHNN`: ``H_theta = T_theta(p) + V_theta(q)``;
* ``hnn-translation``, ``hnn-translation-separable``, ``hnn-rotation``,
  ``hnn-rotation-separable`` (:mod:`~symplearn.models.symmetric`): energies that see only
  invariant features, so the matching Noether charge is conserved exactly;
* ``hnn-angles`` :class:`AngleHNN`: an HNN whose energy sees ``(cos q, sin q, p)``, exactly
  periodic in the angles (a double pendulum whose angles wrap);
* ``lnn`` :class:`LNN`: ``L_theta(q, q_dot)`` with Euler-Lagrange accelerations, on Lagrangian
  states ``(q, q_dot)`` (``state_kind = "lagrangian"``); ``lnn-structured`` :class:`StructuredLNN`:
  ``L = q_dot^T M(q) q_dot / 2 - V(q)`` with ``M`` positive definite by construction (DeLaN);
* ``dhnn`` :class:`DHNN` (``J grad H + grad D``) and ``phnn`` :class:`PHNN`
  (``(J - R) grad H + F(t)``): dissipation and forcing.

Discrete-time flow maps for a fixed ``dt`` (:class:`~symplearn.dynamics.FlowMap`,
``step(t, z)``, exact ``inverse(z)``), symplectic by construction:

* ``sympnet-la`` :class:`LASympNet`, ``sympnet-g`` :class:`GSympNet`,
  ``sympnet-grad`` :class:`GradientSympNet` (up/low shears), ``sympnet-p`` :class:`PSympNet`
  (ridge flows along learned phase-space directions: for non-separable flows).

Every model has ``model.config`` (its constructor arguments plus ``"kind"``), and
``build_model(**model.config)`` rebuilds the same architecture.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from .._errors import SymplearnError, lookup
from .activations import ACTIVATIONS, SMOOTH_ACTIVATIONS, get_activation
from .angles import AngleHNN
from .delan import StructuredLNN
from .dissipative import DHNN, PHNN, TimeMLPField
from .hnn import HNN, SeparableHNN
from .lnn import LNN, lagrangian_acceleration
from .mlp import MLPField
from .potentials import DirectForceModel, LearnedPairPotential, SymmetryFunctionPotential
from .symmetric import RotationHNN, SeparableRotationHNN, SeparableTranslationHNN, TranslationHNN
from .sympnet import GradientSympNet, GSympNet, LASympNet, PSympNet

__all__ = [
    "ACTIVATIONS",
    "AngleHNN",
    "DHNN",
    "MODELS",
    "SMOOTH_ACTIVATIONS",
    "GSympNet",
    "GradientSympNet",
    "HNN",
    "DirectForceModel",
    "LASympNet",
    "LearnedPairPotential",
    "SymmetryFunctionPotential",
    "LNN",
    "MLPField",
    "PHNN",
    "PSympNet",
    "SeparableHNN",
    "StructuredLNN",
    "TimeMLPField",
    "RotationHNN",
    "SeparableRotationHNN",
    "SeparableTranslationHNN",
    "TranslationHNN",
    "build_model",
    "get_activation",
    "lagrangian_acceleration",
]

#: model kind (``model.config["kind"]``, the ``--model`` option) -> class
MODELS: dict[str, type[nn.Module]] = {
    cls.kind: cls
    for cls in (
        MLPField,
        HNN,
        SeparableHNN,
        LNN,
        StructuredLNN,
        LASympNet,
        GSympNet,
        GradientSympNet,
        PSympNet,
        DHNN,
        PHNN,
        TimeMLPField,
    )
}
MODELS.update(
    {cls.kind: cls for cls in (TranslationHNN, SeparableTranslationHNN, RotationHNN, SeparableRotationHNN)}
)
MODELS[AngleHNN.kind] = AngleHNN
MODELS.update({c.kind: c for c in (LearnedPairPotential, SymmetryFunctionPotential, DirectForceModel)})


class _ModelArgumentError(SymplearnError, TypeError):
    """Arguments that the model's constructor does not take (also a TypeError, like Python's
    own complaint about an unexpected keyword argument)."""


def build_model(kind: str, *, ignore_unused: bool = False, **kwargs: Any) -> nn.Module:
    """Build a model by kind: ``build_model(**model.config)`` rebuilds ``model``'s architecture
    (fresh weights).

    With ``ignore_unused=True``, arguments the kind does not take (and ``None`` values) are
    dropped, so one set of sizes (``width``, ``depth``, ``layers``, ``dt``, ``activation``) can
    build any kind, e.g. from a command line.

    Args:
        kind: one of :data:`MODELS` (``mlp``, ``hnn``, ``hnn-separable``, the symmetric HNNs,
            ``lnn``, ``lnn-structured``, ``dhnn``, ``phnn``,
            ``sympnet-la``, ``sympnet-g``, ``sympnet-grad``, ``sympnet-p``).
        **kwargs: constructor arguments of that class (e.g. ``n_dof=1, width=64``; SympNets
            also need ``dt``).

    Returns:
        The model (float32 parameters, as torch creates them; ``.to(torch.float64)`` for double).

    Raises:
        SymplearnError: an unknown kind (the message lists the valid ones), arguments the class
            does not take or required ones missing (the message lists the accepted ones), or
            invalid values.
    """
    cls = lookup(kind, MODELS, "model kind")
    params = inspect.signature(cls.__init__).parameters
    accepted = [name for name in params if name != "self"]
    if ignore_unused:
        kwargs = {k: v for k, v in kwargs.items() if k in accepted and v is not None}
    unknown = sorted(set(kwargs) - set(accepted))
    required = [
        name
        for name, p in params.items()
        if name != "self" and p.default is inspect.Parameter.empty and name not in kwargs
    ]
    if unknown or required:
        parts = []
        if unknown:
            parts.append(f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
        if required:
            parts.append(f"missing required argument{'s' if len(required) > 1 else ''} {', '.join(required)}")
        sig = ", ".join(
            name if p.default is inspect.Parameter.empty else f"{name}={p.default!r}"
            for name, p in params.items()
            if name != "self"
        )
        raise _ModelArgumentError(
            f"model kind {kind!r} ({cls.__name__}): {'; '.join(parts)}; accepted arguments: {sig}"
        )
    return cls(**kwargs)
