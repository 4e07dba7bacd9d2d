"""Pairing a continuous dynamics with an integrator and a step: :func:`discretize`, the one place
that checks the pair, and :class:`DiscretizedDynamics`, the flow map it builds."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from .._errors import SymplearnError
from .._validate import check_positive, describe
from ..dynamics import Dynamics, FlowMap, SeparableHamiltonian
from .base import Integrator, SplittingIntegrator
from .registry import INTEGRATORS, get_integrator, integrator_class

__all__ = ["DiscretizedDynamics", "check_compatible", "discretize"]


class DiscretizedDynamics(FlowMap):
    """A continuous dynamics advanced by a one-step integrator at a fixed step: built by
    :func:`discretize`, which checks the pair once.

    Attributes:
        dynamics: the continuous dynamics.
        integrator: the :class:`~symplearn.integrators.Integrator`.
        dt: the step.
    """

    def __init__(self, dynamics: Dynamics, integrator: Integrator, dt: float):
        self.dynamics = dynamics
        self.integrator = integrator
        self.dt = dt
        self.n_dof = dynamics.n_dof
        self.state_kind = dynamics.state_kind

    def step(self, t: float | Tensor, z: Tensor) -> Tensor:
        return self.integrator.step(self.dynamics, t, z, self.dt)

    def partial_step(self, t: float | Tensor, z: Tensor, tau: float | Tensor) -> Tensor:
        """One integrator step of another size ``tau`` (a float or a tensor broadcastable to
        ``z``): what event location (Poincare sections) and loop refinement use."""
        return self.integrator.step(self.dynamics, t, z, tau)

    def __repr__(self) -> str:
        return f"discretize({describe(self.dynamics)}, {self.integrator.name!r}, dt={self.dt:g})"


def check_compatible(integrator: Integrator, dynamics: Any) -> None:
    """Raise a clear error if ``integrator`` cannot integrate ``dynamics``: the one place where
    an integrator's requirements on the dynamics are checked (a splitting method needs a
    :class:`~symplearn.dynamics.SeparableHamiltonian`), then the integrator's own
    :meth:`~symplearn.integrators.Integrator.check` for anything further.

    Raises:
        SymplearnError: naming what the integrator needs and, for a non-separable dynamics, the
            registered integrators that work.
    """
    if not isinstance(dynamics, Dynamics):
        raise SymplearnError(
            f"integrator {integrator.name!r} integrates continuous-time dynamics (a symplearn Dynamics), "
            f"got {type(dynamics).__name__}"
        )
    if isinstance(integrator, SplittingIntegrator) and not isinstance(dynamics, SeparableHamiltonian):
        ok = [
            name
            for name, make in INTEGRATORS.items()
            if (cls := integrator_class(make)) is not None and not issubclass(cls, SplittingIntegrator)
        ]
        raise SymplearnError(
            f"integrator {integrator.name!r} needs a separable Hamiltonian H = T(p) + V(q), and "
            f"{describe(dynamics)} is not separable; integrators that work: {', '.join(ok)}"
        )
    integrator.check(dynamics)


def discretize(dynamics: Any, integrator: Any = None, dt: Any = None) -> FlowMap:
    """The one place that pairs a dynamics with an integrator and a step: returns a flow map.

    Args:
        dynamics: a continuous :class:`~symplearn.dynamics.Dynamics` (system or learned model),
            or a :class:`~symplearn.dynamics.FlowMap` (a SympNet), which is returned as it is.
        integrator: an :class:`~symplearn.integrators.Integrator` or its canonical name;
            ``None`` uses the dynamics' ``default_integrator``. Must be ``None`` for a flow map.
        dt: the step (> 0); required for continuous dynamics; for a flow map, ``None`` or its
            own ``dt``.

    Returns:
        A :class:`~symplearn.dynamics.FlowMap` with ``step(t, z)``.

    Raises:
        SymplearnError: an integrator that cannot integrate this dynamics (e.g. Verlet on a
            non-separable H: the message lists those that can), a missing or non-positive dt, a
            dt other than a flow map's own, or an object that is neither kind.
    """
    if isinstance(dynamics, FlowMap):
        if integrator is not None:
            raise SymplearnError(
                f"{describe(dynamics)} is a flow map with its own step; pass integrator=None "
                f"(got {getattr(integrator, 'name', integrator)!r})"
            )
        if dt is not None and not math.isclose(check_positive("dt", dt), float(dynamics.dt), rel_tol=1e-9):
            raise SymplearnError(
                f"{describe(dynamics)} was built for dt={float(dynamics.dt):g}; got dt={float(dt):g} "
                f"(pass dt=None or the map's own dt)"
            )
        return dynamics
    if not isinstance(dynamics, Dynamics):
        raise SymplearnError(
            f"discretize needs a symplearn Dynamics (a system or a learned model) or a FlowMap, got "
            f"{type(dynamics).__name__}"
        )
    if dt is None:
        raise SymplearnError(f"discretize needs a step dt for the continuous dynamics {describe(dynamics)}")
    dt = check_positive("dt", dt)
    if integrator is None:
        integrator = dynamics.default_integrator
    if isinstance(integrator, str):
        integrator = get_integrator(integrator)
    if not isinstance(integrator, Integrator):
        raise SymplearnError(
            f"integrator must be an Integrator or a canonical name (see `symplearn integrators`), got "
            f"{type(integrator).__name__}"
        )
    check_compatible(integrator, dynamics)
    return DiscretizedDynamics(dynamics, integrator, dt)
