"""The integrator interface: a small class with ``step``, a declared order and symplecticity."""

from __future__ import annotations

from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import Dynamics


class Integrator:
    """One-step method for ``dz/dt = f(z)``.

    Class attributes declare what the method is: ``name`` (canonical command-line name),
    ``order``, ``symplectic``, ``requires_separable`` (needs ``H = T(p) + V(q)``, i.e. the
    dynamics' ``grad_T``/``grad_V``), ``implicit``, ``time_reversible``.
    """

    name: str = "integrator"
    order: int
    symplectic: bool = False
    requires_separable: bool = False
    implicit: bool = False
    time_reversible: bool = False

    def step(self, dynamics: Dynamics, z: Tensor, dt: float, *, step_index: int = 0) -> Tensor:
        """Advance ``z: (..., 2n)`` by one step of size ``dt``. Returns ``(..., 2n)``.

        ``step_index`` is used only in error messages.
        """
        raise NotImplementedError

    def check(self, dynamics) -> None:
        """Raise a clear error if this method cannot integrate ``dynamics``."""
        if self.requires_separable and not getattr(dynamics, "separable", False):
            from . import INTEGRATORS

            ok = [n for n, make in INTEGRATORS.items() if not make().requires_separable]
            raise SymplearnError(
                f"integrator {self.name!r} needs a separable Hamiltonian H = T(p) + V(q), and "
                f"{_describe(dynamics)} is not separable; integrators that work: {', '.join(ok)}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _describe(dynamics) -> str:
    name = getattr(dynamics, "name", None)
    return repr(name) if name else type(dynamics).__name__
