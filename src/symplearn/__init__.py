"""symplearn: learning physical dynamics with structure-preserving neural networks.

State convention everywhere: ``z = (q, p)`` of shape ``(..., 2n)``, positions first.
"""

from __future__ import annotations

from ._errors import ConvergenceError, NonFiniteError, SymplearnError
from ._version import __version__
from .datasets import Dataset, TrainingData, generate_dataset
from .dynamics import Dynamics, FlowMap, HamiltonianDynamics, SeparableHamiltonian
from .geometry import (
    batch_jacobian,
    canonical_J,
    divergence,
    poisson_bracket,
    symplectic_gradient,
    symplecticity_defect,
)
from .integrators import (
    INTEGRATORS,
    StopIntegration,
    Trajectory,
    get_integrator,
    integrate,
    reference_trajectory,
)
from .integrators.discretize import discretize
from .modelio import load_model as load
from .modelio import save_model as save
from .systems import SYSTEMS, get_system
from .training import fit

_SUBMODULES = ("diagnostics", "models", "plotting", "experiments", "training", "report")


def __getattr__(name: str):
    """Submodules on first use (``symplearn.diagnostics``, ``symplearn.models``, ...)."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'symplearn' has no attribute {name!r}")


__all__ = [
    "Dataset",
    "TrainingData",
    "fit",
    "generate_dataset",
    "load",
    "save",
    "INTEGRATORS",
    "SYSTEMS",
    "ConvergenceError",
    "Dynamics",
    "FlowMap",
    "HamiltonianDynamics",
    "SeparableHamiltonian",
    "discretize",
    "reference_trajectory",
    "NonFiniteError",
    "SymplearnError",
    "StopIntegration",
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
