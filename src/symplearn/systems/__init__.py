"""Ground-truth Hamiltonian systems."""

from __future__ import annotations

from .._errors import lookup
from .base import System
from .double_pendulum import DoublePendulum
from .henon_heiles import HenonHeiles
from .kepler import Kepler, KeplerPolar, cartesian_to_polar, polar_to_cartesian, solve_kepler
from .oscillator import HarmonicOscillator
from .particles import LennardJones
from .pendulum import Pendulum

#: canonical command-line name -> system class
SYSTEMS: dict[str, type[System]] = {
    "oscillator": HarmonicOscillator,
    "pendulum": Pendulum,
    "double-pendulum": DoublePendulum,
    "kepler": Kepler,
    "kepler-polar": KeplerPolar,
    "henon-heiles": HenonHeiles,
    "lennard-jones": LennardJones,
}


def get_system(name: str, **params: float) -> System:
    """Build a system from its canonical name and parameters (names as in the formulas).

    Args:
        name: one of ``SYSTEMS`` (``oscillator``, ``pendulum``, ``double-pendulum``, ``kepler``,
            ``kepler-polar``, ``henon-heiles``).
        **params: parameter values; the others keep their defaults (``System.PARAMS``).

    Returns:
        The system instance.

    Raises:
        SymplearnError: an unknown system or parameter name (the message lists the valid ones),
            or an invalid parameter value.
    """
    return lookup(name, SYSTEMS, "system")(**params)


__all__ = [
    "SYSTEMS",
    "DoublePendulum",
    "HarmonicOscillator",
    "HenonHeiles",
    "Kepler",
    "KeplerPolar",
    "LennardJones",
    "Pendulum",
    "System",
    "cartesian_to_polar",
    "get_system",
    "polar_to_cartesian",
    "solve_kepler",
]
