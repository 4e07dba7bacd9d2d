"""Ground-truth Hamiltonian systems."""

from __future__ import annotations

from .._errors import lookup
from .base import System
from .oscillator import HarmonicOscillator
from .pendulum import Pendulum

#: canonical command-line name -> system class
SYSTEMS: dict[str, type[System]] = {
    "oscillator": HarmonicOscillator,
    "pendulum": Pendulum,
}


def get_system(name: str, **params: float) -> System:
    """Build a system from its canonical name and parameters (names as in the formulas).

    Unknown names (of systems or parameters) raise an error that lists the valid ones.
    """
    return lookup(name, SYSTEMS, "system")(**params)


__all__ = ["SYSTEMS", "HarmonicOscillator", "Pendulum", "System", "get_system"]
