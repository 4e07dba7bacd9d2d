"""Exceptions and small validation helpers shared by the whole package.

User-facing errors derive from :class:`SymplearnError` (itself a ``ValueError``) so that the
command line can print them as one line without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


class SymplearnError(ValueError):
    """A user-facing error: bad input, a name that does not exist, an impossible request."""


class ConvergenceError(SymplearnError, RuntimeError):
    """An implicit solve (integrator stage equations, ...) did not converge."""


class NonFiniteError(SymplearnError, FloatingPointError):
    """A NaN or infinite value appeared (in a state, a loss, ...)."""


def lookup(name: str, registry: Mapping[str, T], kind: str) -> T:
    """Return ``registry[name]`` or raise a :class:`SymplearnError` listing the valid names.

    Args:
        name: the name asked for.
        registry: mapping of canonical names to objects.
        kind: what the names are ("system", "integrator", ...), used in the message.
    """
    if name in registry:
        return registry[name]
    valid = ", ".join(sorted(registry))
    close = difflib.get_close_matches(str(name), list(registry), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SymplearnError(f"unknown {kind} {name!r}{hint}; valid {kind} names: {valid}")


def check_names(given: Iterable[str], valid: Iterable[str], kind: str) -> None:
    """Raise a :class:`SymplearnError` if any of ``given`` is not in ``valid``."""
    valid = list(valid)
    bad = [g for g in given if g not in valid]
    if bad:
        raise SymplearnError(
            f"unknown {kind} {', '.join(map(repr, bad))}; valid {kind} names: "
            f"{', '.join(valid) if valid else '(none)'}"
        )
