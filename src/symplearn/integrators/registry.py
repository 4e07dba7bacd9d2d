"""The integrator registry: canonical command-line name -> factory, and :func:`get_integrator`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from .._errors import lookup
from .base import Integrator
from .explicit import RK4, Euler
from .implicit import GaussLegendre, ImplicitMidpoint
from .splitting import SymplecticEuler, Verlet, Yoshida4

__all__ = ["INTEGRATORS", "get_integrator", "integrator_class"]

#: canonical command-line name -> factory of an integrator instance (a class, or a
#: ``functools.partial`` of one, so what a name builds can be read without building it)
INTEGRATORS: dict[str, Callable[..., Integrator]] = {
    "euler": Euler,
    "rk4": RK4,
    "symplectic-euler": SymplecticEuler,
    "verlet": Verlet,
    "yoshida4": Yoshida4,
    "implicit-midpoint": ImplicitMidpoint,
    "gauss-legendre-4": functools.partial(GaussLegendre, 2),
    "gauss-legendre-6": functools.partial(GaussLegendre, 3),
}


def get_integrator(name: str, **kwargs) -> Integrator:
    """Build an integrator from its canonical name (see ``INTEGRATORS``): the CLI/config edge.

    Implicit methods accept ``tol``, ``max_iter``, ``solver`` (``"auto"``, ``"newton"``,
    ``"fixed-point"``) and ``jacobian`` (``"auto"``, ``"finite-difference"``, ``"autodiff"``).
    Unknown names raise an error that lists the valid ones.
    """
    return lookup(name, INTEGRATORS, "integrator")(**kwargs)


def integrator_class(factory: Callable[..., Integrator]) -> type | None:
    """The :class:`Integrator` subclass a registry factory builds (a class or a
    ``functools.partial`` of one), read without building it; ``None`` when it cannot be told."""
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory if inspect.isclass(factory) and issubclass(factory, Integrator) else None
