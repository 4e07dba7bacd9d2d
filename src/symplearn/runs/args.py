"""Command-line argument types shared by the runs' ``add_parser`` functions and the CLI: text ->
numbers, validated at the edge (argparse reports a bad value as one line and exit code 2)."""

from __future__ import annotations

import argparse
import math

from .._errors import SymplearnError
from .._validate import DTYPES

#: dtype names the runs and the command line accept
DTYPE_NAMES = tuple(DTYPES)


def _positive(kind):
    def conv(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    conv.__name__ = f"positive {kind.__name__}"
    return conv


#: argparse type: an integer > 0
pos_int = _positive(int)
#: argparse type: a finite float > 0
pos_float = _positive(float)


def parse_params(items: list[str] | None) -> dict[str, float]:
    """``["g=9.81", "L=2"] -> {"g": 9.81, "L": 2.0}`` (``--param NAME=VALUE``, repeatable).

    Raises:
        SymplearnError: an item without ``=`` or a value that is not a number.
    """
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SymplearnError(f"--param expects NAME=VALUE (e.g. --param g=9.81), got {item!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise SymplearnError(f"--param {name}: {value!r} is not a number") from None
    return out


def parse_states(items: list[str] | None) -> tuple[tuple[float, ...], ...] | None:
    """``["1.0,0.0", ...]`` (``--z0``, q's then p's, repeatable) -> one tuple of numbers per state;
    ``None`` when none were given. The run checks the length against its system.

    Raises:
        SymplearnError: an entry that is not comma-separated numbers.
    """
    if not items:
        return None
    rows = []
    for item in items:
        try:
            rows.append(tuple(float(x) for x in item.split(",")))
        except ValueError:
            raise SymplearnError(
                f"--z0 expects comma-separated numbers (q's then p's), got {item!r}"
            ) from None
    return tuple(rows)


def add_common(p: argparse.ArgumentParser, *, seed: int = 0) -> None:
    """``--out`` (required), ``--seed`` and ``--quiet``: what every run subcommand takes."""
    p.add_argument("--out", required=True, help="run folder to write (replaced whole)")
    p.add_argument(
        "--seed", type=int, default=seed, help=f"seed of the sampled initial states (default {seed})"
    )
    p.add_argument("--quiet", action="store_true", help="no progress or summary lines")
