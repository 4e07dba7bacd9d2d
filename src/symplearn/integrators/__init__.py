"""Integrators: explicit Euler, RK4, symplectic Euler, Verlet, Yoshida, implicit midpoint and
Gauss-Legendre; and :func:`integrate`, the one entry point that advances any flow map
(``integrate(discretize(dynamics, integrator, dt), z0, n_steps)``)."""

from __future__ import annotations

from collections.abc import Callable

from .._errors import lookup
from .base import Integrator
from .explicit import RK4, Euler
from .implicit import GaussLegendre, ImplicitMidpoint, gauss_legendre_tableau
from .integrate import TracedFlow, Trajectory, integrate, reference_trajectory, trace_flow
from .splitting import SymplecticEuler, Verlet, Yoshida4

#: canonical command-line name -> factory of an integrator instance
INTEGRATORS: dict[str, Callable[..., Integrator]] = {
    "euler": Euler,
    "rk4": RK4,
    "symplectic-euler": SymplecticEuler,
    "verlet": Verlet,
    "yoshida4": Yoshida4,
    "implicit-midpoint": ImplicitMidpoint,
    "gauss-legendre-4": lambda **kw: GaussLegendre(2, **kw),
    "gauss-legendre-6": lambda **kw: GaussLegendre(3, **kw),
}


def get_integrator(name: str, **kwargs) -> Integrator:
    """Build an integrator from its canonical name (see ``INTEGRATORS``): the CLI/config edge.

    Implicit methods accept ``tol``, ``max_iter``, ``solver`` (``"auto"``, ``"newton"``,
    ``"fixed-point"``) and ``jacobian`` (``"auto"``, ``"finite-difference"``, ``"autodiff"``).
    Unknown names raise an error that lists the valid ones.
    """
    return lookup(name, INTEGRATORS, "integrator")(**kwargs)


__all__ = [
    "INTEGRATORS",
    "RK4",
    "Euler",
    "GaussLegendre",
    "ImplicitMidpoint",
    "Integrator",
    "SymplecticEuler",
    "Trajectory",
    "Verlet",
    "Yoshida4",
    "gauss_legendre_tableau",
    "get_integrator",
    "integrate",
    "reference_trajectory",
    "TracedFlow",
    "trace_flow",
]
