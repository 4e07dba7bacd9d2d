"""The integrator interface: a small class with ``step``, a declared order and symplecticity.

Capabilities are types, not flags (as diffrax's solver classes): a :class:`SplittingIntegrator`
composes the flows of ``T(p)`` and ``V(q)``, so its ``step`` takes a
:class:`~symplearn.dynamics.SeparableHamiltonian` and :func:`symplearn.discretize` refuses any
other dynamics for it; an :class:`ImplicitIntegrator` solves an equation each step and owns the
solver's ``tol`` and ``max_iter``.
"""

from __future__ import annotations

from torch import Tensor

from .._errors import SymplearnError
from ..dynamics import Dynamics, SeparableHamiltonian

__all__ = ["ImplicitIntegrator", "Integrator", "SplittingIntegrator"]


class Integrator:
    """One-step method for ``dz/dt = f(t, z)``.

    Class attributes declare what the method is: ``name`` (canonical command-line name),
    ``order``, ``symplectic``, ``time_reversible``. What it needs of the dynamics and how it
    steps are its type: :class:`SplittingIntegrator` (needs ``H = T(p) + V(q)``),
    :class:`ImplicitIntegrator` (an equation solved each step); ``requires_separable`` and
    ``implicit`` read the type.

    Library code does not call :meth:`step` with a dynamics directly: it builds a flow map once
    with :func:`symplearn.discretize` (which checks the pair) and steps that.
    """

    name: str = "integrator"
    order: int
    symplectic: bool = False
    time_reversible: bool = False

    @property
    def requires_separable(self) -> bool:
        """Whether the method needs a separable Hamiltonian: it is a :class:`SplittingIntegrator`."""
        return isinstance(self, SplittingIntegrator)

    @property
    def implicit(self) -> bool:
        """Whether the method solves an equation each step: it is an :class:`ImplicitIntegrator`."""
        return isinstance(self, ImplicitIntegrator)

    def step(self, dynamics: Dynamics, t, z: Tensor, dt) -> Tensor:
        """Advance ``z: (..., 2n)`` from time ``t`` by one step of size ``dt``. Returns ``(..., 2n)``.

        ``dt`` is a float, or a tensor broadcastable to ``z`` (one step size per state: event
        location and loop refinement use it).
        """
        raise NotImplementedError

    def check(self, dynamics: Dynamics) -> None:
        """Raise a clear error if this method cannot integrate ``dynamics``, beyond what
        :func:`~symplearn.integrators.discretize.check_compatible` already checks (a
        continuous-time dynamics, separable for a :class:`SplittingIntegrator`): a hook for
        subclasses, nothing by default."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SplittingIntegrator(Integrator):
    """A composition of the exact flows of ``T`` (a drift ``q += h dT/dp``) and ``V`` (a kick
    ``p -= h dV/dq``): explicit, and only for a separable Hamiltonian ``H = T(p) + V(q)``."""

    def step(self, dynamics: SeparableHamiltonian, t, z: Tensor, dt) -> Tensor:
        """One step of ``z: (..., 2n)`` under the separable ``dynamics`` (``grad_T``, ``grad_V``)."""
        raise NotImplementedError


class ImplicitIntegrator(Integrator):
    """A method that solves an equation in each step, iterated to a tolerance.

    Args:
        tol: the solver's tolerance (``None``: the method's default for the dtype).
        max_iter: iteration limit of each solve (>= 1); a solve that does not converge raises
            :class:`~symplearn.ConvergenceError`.

    Raises:
        SymplearnError: a non-positive ``tol`` or ``max_iter``.
    """

    def __init__(self, *, tol: float | None = None, max_iter: int = 100):
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise SymplearnError(f"max_iter must be an integer >= 1, got {max_iter!r}")
        if tol is not None and not (isinstance(tol, (int, float)) and tol > 0):
            raise SymplearnError(f"tol must be a positive number or None (the default), got {tol!r}")
        self.tol = None if tol is None else float(tol)
        self.max_iter = max_iter
