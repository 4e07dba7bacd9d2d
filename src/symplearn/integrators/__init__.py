"""Integrators: explicit Euler, RK4, symplectic Euler, Verlet, Yoshida, implicit midpoint and
Gauss-Legendre; and :func:`integrate`, the one entry point that advances any flow map
(``integrate(discretize(dynamics, integrator, dt), z0, n_steps)``)."""

from __future__ import annotations

from .base import ImplicitIntegrator, Integrator, SplittingIntegrator
from .explicit import RK4, Euler
from .implicit import GaussLegendre, ImplicitMidpoint, gauss_legendre_tableau
from .integrate import StopIntegration, TracedFlow, Trajectory, integrate, reference_trajectory, trace_flow
from .langevin import LangevinBAOAB
from .registry import INTEGRATORS, get_integrator
from .splitting import SymplecticEuler, Verlet, Yoshida4

# ``discretize`` lives in :mod:`symplearn.integrators.discretize` (the submodule keeps that
# name here); the function is ``symplearn.discretize``.

__all__ = [
    "INTEGRATORS",
    "RK4",
    "Euler",
    "GaussLegendre",
    "ImplicitIntegrator",
    "ImplicitMidpoint",
    "Integrator",
    "LangevinBAOAB",
    "StopIntegration",
    "SplittingIntegrator",
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
