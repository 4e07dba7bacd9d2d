"""Ground-truth Hamiltonian systems."""

from __future__ import annotations

from .._errors import lookup
from .base import System
from .dissipative import PORT_SYSTEMS, PortHamiltonianDynamics, get_port_system  # damped/forced
from .double_pendulum import DoublePendulum
from .henon_heiles import HenonHeiles
from .kepler import Kepler, KeplerPolar, cartesian_to_polar, polar_to_cartesian, solve_kepler
from .oscillator import HarmonicOscillator
from .particles import LennardJones
from .pendulum import Pendulum
from .two_body_spring import TwoBodySpring

#: canonical command-line name -> system class
SYSTEMS: dict[str, type[System]] = {
    "oscillator": HarmonicOscillator,
    "pendulum": Pendulum,
    "double-pendulum": DoublePendulum,
    "kepler": Kepler,
    "kepler-polar": KeplerPolar,
    "henon-heiles": HenonHeiles,
    "two-body-spring": TwoBodySpring,
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
    "PORT_SYSTEMS",
    "SYSTEMS",
    "DoublePendulum",
    "HarmonicOscillator",
    "HenonHeiles",
    "Kepler",
    "KeplerPolar",
    "LennardJones",
    "Pendulum",
    "PortHamiltonianDynamics",
    "System",
    "TwoBodySpring",
    "cartesian_to_polar",
    "get_port_system",
    "get_system",
    "polar_to_cartesian",
    "solve_kepler",
]
