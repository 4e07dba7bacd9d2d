"""Diagnostics that make the geometry visible, for ground-truth systems and learned models alike.

- invariants: :func:`invariant_error`, :func:`energy_error` (bounded oscillation or drift),
  :func:`assert_conserves`;
- phase-space area (Liouville): :func:`polygon_area`, :func:`square_loop`, :func:`circle_loop`,
  :func:`transport_loop` (a loop of states carried by the flow, refined where it stretches);
- symplecticity and volume of a map: :func:`map_symplecticity`, :func:`assert_symplectic`;
- divergence and "is there an energy at all?": :func:`divergence_stats`,
  :func:`divergence_grid`, :func:`loop_integral`, :func:`assert_divergence_free`;
- Poisson brackets and Noether: :func:`bracket_with_energy`;
- chaos: :func:`lyapunov_exponent` (Benettin), :func:`poincare_section`,
  :func:`wasserstein_1d` (distance between invariant measures of an observable);
- molecular-dynamics quantities of a particle system (kinetic and potential energy, temperature,
  pressure, total momentum, g(r), mean squared displacement): :mod:`symplearn.diagnostics.md`,
  also re-exported by :mod:`symplearn.md`. Not exported here: its ``total_momentum(system, z)``
  (three components) would shadow the Noether charge :func:`total_momentum` (one axis).

State convention: ``z = (q, p)`` of shape ``(..., 2n)``, positions first.
"""

from __future__ import annotations

from .area import (
    LoopTransport,
    check_loop,
    circle_loop,
    polygon_area,
    signed_polygon_area,
    square_loop,
    symplectic_area,
    transport_loop,
)
from .fields import (
    DivergenceGrid,
    DivergenceStats,
    LoopIntegral,
    assert_divergence_free,
    divergence_grid,
    divergence_stats,
    field_jacobian,
    loop_integral,
)
from .helmholtz import HelmholtzDecomposition, energy_balance_residual, helmholtz_decomposition
from .invariants import InvariantError, assert_conserves, energy_error, invariant_error
from .lyapunov import Lyapunov, lyapunov_exponent
from .poincare import PoincareSection, poincare_section
from .poisson import bracket_with_energy
from .statistics import wasserstein_1d
from .symmetry import (
    Symmetry,
    angular_momentum,
    assert_equivariant,
    assert_invariant,
    assert_noether_charge,
    noether_charge_bracket,
    rotation,
    total_momentum,
    translation,
)
from .symplecticity import MapSymplecticity, as_map, assert_symplectic, map_symplecticity

__all__ = [
    "DivergenceGrid",
    "DivergenceStats",
    "MapSymplecticity",
    "InvariantError",
    "LoopIntegral",
    "LoopTransport",
    "Lyapunov",
    "PoincareSection",
    "as_map",
    "assert_conserves",
    "assert_divergence_free",
    "assert_symplectic",
    "bracket_with_energy",
    "check_loop",
    "circle_loop",
    "divergence_grid",
    "divergence_stats",
    "energy_error",
    "field_jacobian",
    "invariant_error",
    "loop_integral",
    "lyapunov_exponent",
    "map_symplecticity",
    "poincare_section",
    "polygon_area",
    "signed_polygon_area",
    "square_loop",
    "symplectic_area",
    "transport_loop",
    "wasserstein_1d",
    "HelmholtzDecomposition",
    "energy_balance_residual",
    "helmholtz_decomposition",
    "Symmetry",
    "angular_momentum",
    "assert_equivariant",
    "assert_invariant",
    "assert_noether_charge",
    "noether_charge_bracket",
    "rotation",
    "total_momentum",
    "translation",
]
