"""The integrator interface: a small class with ``step``, a declared order and symplecticity."""

from __future__ import annotations

from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import Dynamics, SeparableHamiltonian


class Integrator:
    """One-step method for ``dz/dt = f(t, z)``.

    Class attributes declare what the method is: ``name`` (canonical command-line name),
    ``order``, ``symplectic``, ``requires_separable`` (needs ``H = T(p) + V(q)``, i.e. a
    :class:`~symplearn.dynamics.SeparableHamiltonian` with ``grad_T``/``grad_V``), ``implicit``,
    ``time_reversible``.

    Library code does not call :meth:`step` with a dynamics directly: it builds a flow map once
    with :func:`symplearn.discretize` (which calls :meth:`check`) and steps that.
    """

    name: str = "integrator"
    order: int
    symplectic: bool = False
    requires_separable: bool = False
    implicit: bool = False
    time_reversible: bool = False

    def step(self, dynamics: Dynamics, t, z: Tensor, dt) -> Tensor:
        """Advance ``z: (..., 2n)`` from time ``t`` by one step of size ``dt``. Returns ``(..., 2n)``.

        ``dt`` is a float, or a tensor broadcastable to ``z`` (one step size per state: event
        location and loop refinement use it).
        """
        raise NotImplementedError

    def check(self, dynamics) -> None:
        """Raise a clear error if this method cannot integrate ``dynamics``."""
        if not isinstance(dynamics, Dynamics):
            raise SymplearnError(
                f"integrator {self.name!r} integrates continuous-time dynamics (a symplearn Dynamics), "
                f"got {type(dynamics).__name__}"
            )
        if self.requires_separable and not isinstance(dynamics, SeparableHamiltonian):
            from . import INTEGRATORS

            ok = [n for n, make in INTEGRATORS.items() if not make().requires_separable]
            raise SymplearnError(
                f"integrator {self.name!r} needs a separable Hamiltonian H = T(p) + V(q), and "
                f"{_describe(dynamics)} is not separable; integrators that work: {', '.join(ok)}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _describe(dynamics) -> str:
    name = getattr(dynamics, "name", None) or getattr(dynamics, "kind", None)
    return repr(name) if isinstance(name, str) else type(dynamics).__name__
