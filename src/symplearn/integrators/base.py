"""The integrator interface: a small class with ``step``, a declared order and symplecticity."""

from __future__ import annotations

from torch import Tensor

from ..dynamics import Dynamics


class Integrator:
    """One-step method for ``dz/dt = f(t, z)``.

    Class attributes declare what the method is: ``name`` (canonical command-line name),
    ``order``, ``symplectic``, ``requires_separable`` (needs ``H = T(p) + V(q)``, i.e. a
    :class:`~symplearn.dynamics.SeparableHamiltonian` with ``grad_T``/``grad_V``), ``implicit``,
    ``time_reversible``.

    Library code does not call :meth:`step` with a dynamics directly: it builds a flow map once
    with :func:`symplearn.discretize` (which checks the pair) and steps that.
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

    def check(self, dynamics: Dynamics) -> None:
        """Raise a clear error if this method cannot integrate ``dynamics``, beyond what
        :func:`~symplearn.integrators.discretize.check_compatible` already checks (a
        continuous-time dynamics, separable when ``requires_separable``): a hook for subclasses,
        nothing by default."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
