"""symplearn: learning physical dynamics with structure-preserving neural networks.

State convention everywhere: ``z = (q, p)`` of shape ``(..., 2n)``, positions first.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._errors import ConvergenceError, NonFiniteError, SymplearnError
from .dynamics import Dynamics, FlowMap
from .geometry import (
    batch_jacobian,
    canonical_J,
    divergence,
    poisson_bracket,
    symplectic_gradient,
    symplecticity_defect,
)
from .integrators import INTEGRATORS, Trajectory, get_integrator, integrate
from .systems import SYSTEMS, get_system

__all__ = [
    "INTEGRATORS",
    "SYSTEMS",
    "ConvergenceError",
    "Dynamics",
    "FlowMap",
    "NonFiniteError",
    "SymplearnError",
    "Trajectory",
    "__version__",
    "batch_jacobian",
    "canonical_J",
    "divergence",
    "get_integrator",
    "get_system",
    "integrate",
    "poisson_bracket",
    "symplectic_gradient",
    "symplecticity_defect",
]
