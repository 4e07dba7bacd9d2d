"""Training losses, one function each. Every loss is the mean over samples of a squared
Euclidean norm (summed over coordinates), as in the formulas of the specification.

* :func:`derivative_loss`: ``(1/N) sum_i ||f_theta(t_i, z_i) - dz_i/dt||^2`` for continuous models
  (MLP field, HNN: ``f_theta = J grad H_theta``).
* :func:`acceleration_loss`: ``(1/N) sum_i ||q_ddot_theta(q_i, q_dot_i) - q_ddot_i||^2`` for
  Lagrangian models (LNN), whose state is ``(q, q_dot)``.
* :func:`rollout_loss`: ``(1/k) sum_{j=1..k} (1/N) sum_i ||Phi^j(z_i) - z_{i+j}||^2`` through a
  flow map: a SympNet's own step, or a continuous model discretised by any integrator
  (e.g. an HNN inside implicit midpoint or, when separable, Verlet). ``k = 1`` is the one-step
  loss; every intermediate state of a k-step rollout is matched.

Every loss takes the samples' times (each point's ``t_i``, each window's start time), so that
time-dependent fields (forcing, PHNN) are evaluated where the data was taken; ``None`` means
t = 0, which autonomous models ignore.
"""

from __future__ import annotations

from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import FlowMap

#: canonical loss names (``fit(loss=...)``; "auto" picks one per model kind)
LOSSES = ("derivative", "acceleration", "rollout")


def _sq_norm_mean(err: Tensor) -> Tensor:
    return err.pow(2).sum(-1).mean()


def derivative_loss(model, z: Tensor, dzdt: Tensor, t: Tensor | float | None = None) -> Tensor:
    """Derivative matching ``mean_i ||vector_field(t_i, z_i) - dzdt_i||^2``.

    Args:
        model: continuous dynamics (``vector_field``).
        z: states ``(N, 2n)``.
        dzdt: observed time derivatives ``(N, 2n)``.
        t: the samples' times ``(N,)`` (or one number); ``None``: t = 0 (autonomous models
            ignore it).

    Returns:
        Scalar tensor.
    """
    return _sq_norm_mean(model.vector_field(0.0 if t is None else t, z) - dzdt)


def acceleration_loss(model, x: Tensor, qddot: Tensor, t: Tensor | float | None = None) -> Tensor:
    """Acceleration matching for Lagrangian models: ``mean_i ||q_ddot_theta(t_i, x_i) - qddot_i||^2``.

    The model's acceleration is the second half of its vector field on the Lagrangian state
    (``vector_field(q, q_dot) = (q_dot, q_ddot)``).

    Args:
        model: Lagrangian dynamics (state ``(q, q_dot)``).
        x: states ``(N, 2n)`` = ``(q, q_dot)``.
        qddot: observed accelerations ``(N, n)``.
        t: the samples' times ``(N,)`` (or one number); ``None``: t = 0.

    Returns:
        Scalar tensor.
    """
    n = x.shape[-1] // 2
    return _sq_norm_mean(model.vector_field(0.0 if t is None else t, x)[..., n:] - qddot)


def rollout_loss(flow, window: Tensor, *, substeps: int = 1, t0: Tensor | float | None = None) -> Tensor:
    """k-step rollout matching ``(1/k) sum_{j=1..k} mean_i ||Phi^j(z_i) - z_{i+j}||^2``.

    Differentiable end to end (the same flow map as inference), so gradients flow through all
    k steps.

    Args:
        flow: a :class:`~symplearn.FlowMap`: a learned flow map (SympNet), or a continuous
            model paired with an integrator, ``symplearn.discretize(model, integrator, dt)``.
        window: consecutive observed states ``(k + 1, N, 2n)``; ``window[0]`` starts the
            rollout and ``window[1:]`` are the targets.
        substeps: flow-map steps per observed step (the data's spacing is ``substeps * dt``).
        t0: the time of ``window[0]``, ``(N,)`` (one per window) or one number; ``None``:
            t = 0. Step ``j`` of the flow map starts at ``t0 + j dt``.

    Returns:
        Scalar tensor.

    Raises:
        SymplearnError: a window shorter than 2 states, or not a flow map.
    """
    if window.ndim < 2 or window.shape[0] < 2:
        raise SymplearnError(
            f"a rollout window needs shape (k + 1, ..., 2n) with k >= 1, got {tuple(window.shape)}"
        )
    if not isinstance(flow, FlowMap):
        raise SymplearnError(
            f"the rollout loss steps a flow map; got {type(flow).__name__}: pass "
            f"symplearn.discretize(model, integrator, dt)"
        )
    z = window[0]
    total = window.new_zeros(())
    k = window.shape[0] - 1
    t = 0.0 if t0 is None else t0  # each window's own start time (autonomous flows ignore it)
    for j in range(1, k + 1):
        for _ in range(substeps):
            z = flow.step(t, z)
            t = t + flow.dt  # (not in place: t0 may be the caller's tensor)
        total = total + _sq_norm_mean(z - window[j])
    return total / k
