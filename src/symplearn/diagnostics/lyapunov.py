"""The largest Lyapunov exponent by Benettin's method: a tangent vector carried along by the
derivative of the one-step map, renormalised periodically; the exponent is the average
logarithmic growth rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError
from ._common import (
    ad_jvp,
    check_int,
    check_states,
    choose_tangent_method,
    dynamics_dim,
    fd_tangent_step,
    stepper,
)

__all__ = ["Lyapunov", "lyapunov_exponent"]


@dataclass(frozen=True)
class Lyapunov:
    """Result of :func:`lyapunov_exponent`.

    Attributes:
        exponent: ``(B,)`` the estimate at the final time (1 / time), per initial state.
        t: ``(R,)`` times of the running estimates, measured from the end of the transient
            (all > 0; ready for :func:`~symplearn.plotting.lyapunov_figure`).
        running: ``(R, B)`` running estimates ``(1/t) sum log(growth)``.
        method: how tangent vectors were propagated: ``"finite-difference"`` (central
            differences of one step) or ``"jvp"`` (forward-mode autodiff of one step).
    """

    exponent: Tensor
    t: Tensor
    running: Tensor
    method: str

    @property
    def mean(self) -> float:
        """Mean exponent over the batch."""
        return float(self.exponent.mean())

    def as_dict(self) -> dict[str, Any]:
        """Summary as plain Python values (JSON-able)."""
        e = self.exponent.reshape(-1)
        return {
            "mean": self.mean,
            "min": float(e.min()),
            "max": float(e.max()),
            "std": float(e.std()) if e.numel() > 1 else 0.0,
            "t_final": float(self.t[-1]),
            "n_trajectories": int(e.numel()),
            "method": self.method,
        }


def lyapunov_exponent(
    flow: Any,
    z0: Any,
    n_steps: int,
    *,
    t0: float = 0.0,
    renorm_every: int = 10,
    seed: int = 0,
    transient: int = 0,
    tangent: str = "finite-difference",
) -> Lyapunov:
    """Largest Lyapunov exponent of a dynamics (or of its discretisation) by Benettin's method.

    A random unit tangent vector ``v`` (seeded) is propagated with the state by the
    Jacobian-vector product of one step, ``v <- D step(z) v``. Every ``renorm_every`` steps
    ``log |v|`` is accumulated and ``v`` rescaled to unit length. After ``k`` steps the estimate
    is ``sum log |v| / (k dt)``; its error decays like ``1 / t`` (the initial direction's
    component along the unstable one), which ``transient`` steps of alignment beforehand remove.

    Two ways to compute ``D step(z) v`` (``tangent``):

    - ``"finite-difference"`` (default): central differences ``(step(z + h u) - step(z - h u))
      / 2h`` along the unit direction ``u``, ``h = (eps max(1, |z|))^(1/3)`` (the step does not
      grow like ``|z|``: a map of angles near 1e5 still varies on unit scales; see
      :func:`~symplearn.diagnostics._common.fd_jvp` for why no digits of the deviation are
      lost), with the three states advanced in one batched call (the classical two-trajectory
      Benettin method in the limit of a tiny separation). Relative error about ``eps^(2/3)``
      per step at ``|z| <= 1`` (1e-11 in float64), ``(eps |z|)^(2/3)`` above (1e-7 at
      ``|z| = 1e5``), far below the statistical error of any exponent; about 1.1x the cost of
      a plain step.
    - ``"jvp"``: exact forward-mode derivative by ``torch.func.jvp`` of the step. On the CPU its
      per-operation overhead makes it 20-50x slower than a plain step for the small batches
      used here; steps that ``torch.func`` cannot transform (a field that calls
      ``torch.autograd.grad`` inside) are refused with an error that suggests
      ``"finite-difference"``.

    Args:
        flow: a :class:`~symplearn.FlowMap`: ``symplearn.discretize(dynamics, integrator, dt)``
            or a learned flow map.
        z0: ``(B, 2n)`` initial states (or ``(2n,)``: then the results have no batch dimension).
        n_steps: steps of the measurement (after the transient).
        t0: initial time.
        renorm_every: steps between renormalisations.
        seed: seed of the initial tangent vectors.
        transient: steps run first (state and tangent vector) and not counted.
        tangent: ``"finite-difference"`` or ``"jvp"`` (see above).

    Returns:
        :class:`Lyapunov` with ``exponent (B,)``, ``t (R,)``, ``running (R, B)``,
        ``R = ceil(n_steps / renorm_every)``.

    Raises:
        SymplearnError: bad arguments.
        NonFiniteError: the state or the tangent vector became NaN/inf (or the tangent vanished).
    """
    flow_step, dt, _ = stepper(flow, "lyapunov_exponent")
    z = check_states(z0, "z0", dynamics_dim(flow))
    clock = [float(t0)]

    def step(x: Tensor) -> Tensor:  # one step from the current time
        return flow_step(clock[0], x)

    single = z.ndim == 1
    if z.ndim > 2:
        raise SymplearnError(f"z0 must have shape (B, 2n) or (2n,), got {tuple(z.shape)}")
    z = z.reshape(-1, z.shape[-1])
    n_steps = check_int("n_steps", n_steps)
    renorm_every = check_int("renorm_every", renorm_every)
    transient = check_int("transient", transient, minimum=0)
    gen = torch.Generator().manual_seed(int(seed))
    v = torch.randn(z.shape, generator=gen, dtype=torch.float64).to(z)
    v = v / v.norm(dim=-1, keepdim=True)

    methods = ("finite-difference", "jvp")
    if tangent not in methods:
        raise SymplearnError(f"unknown tangent method {tangent!r}; valid: {', '.join(methods)}")
    method = tangent
    if method == "jvp" and choose_tangent_method(step, z, v) != "jvp":
        raise SymplearnError(
            "tangent='jvp': torch.func.jvp cannot differentiate this step correctly (e.g. its "
            "vector field calls torch.autograd.grad); use tangent='finite-difference'"
        )

    def tangent_step(z: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if method == "jvp":
            return ad_jvp(step, z, v)
        return fd_tangent_step(step, z, v)

    def renormalise(v: Tensor, when: str) -> tuple[Tensor, Tensor]:
        nrm = v.norm(dim=-1)
        if not bool((torch.isfinite(nrm) & (nrm > 0)).all()):
            raise NonFiniteError(
                f"lyapunov_exponent: the tangent vector became NaN, infinite or zero {when}; try a "
                f"smaller renorm_every or dt"
            )
        return v / nrm[:, None], nrm.to(torch.float64)

    def check_z(z: Tensor, when: str) -> None:
        if not bool(torch.isfinite(z).all()):
            raise NonFiniteError(
                f"lyapunov_exponent: the state became NaN or infinite {when}; try a smaller dt"
            )

    for k in range(1, transient + 1):
        z, v = tangent_step(z, v)
        clock[0] += dt
        if k % renorm_every == 0 or k == transient:
            check_z(z, f"in the transient (step {k})")
            v, _ = renormalise(v, f"in the transient (step {k})")

    log_sum = torch.zeros(z.shape[0], dtype=torch.float64)
    times, running = [], []
    for k in range(1, n_steps + 1):
        z, v = tangent_step(z, v)
        clock[0] += dt
        if k % renorm_every == 0 or k == n_steps:
            when = f"at step {k} (t={k * dt:g} after the transient)"
            check_z(z, when)
            v, nrm = renormalise(v, when)
            log_sum = log_sum + torch.log(nrm)
            times.append(k * dt)
            running.append(log_sum / (k * dt))
    t = torch.tensor(times, dtype=torch.float64)
    run = torch.stack(running, 0)
    if single:
        run = run[:, 0]
    exponent = run[-1]
    return Lyapunov(exponent=exponent, t=t, running=run, method=method)
