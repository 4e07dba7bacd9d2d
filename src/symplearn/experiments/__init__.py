"""Experiments that reproduce the specification's claims, one command each.

Each experiment is a module with a ``Config`` dataclass (with a ``quick`` flag for the test
suite), ``DESCRIPTION`` (one line) and ``run(config, out) -> Report`` that writes a run folder
(``config.json``, ``metrics.json``, ``report.md``, PNG figures).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .._errors import lookup

#: experiment name -> module path
EXPERIMENTS: dict[str, str] = {
    "spring": "symplearn.experiments.spring",
    "pendulum": "symplearn.experiments.pendulum",
    "dissipative": "symplearn.experiments.dissipative",
    "kepler": "symplearn.experiments.kepler",
    "noether": "symplearn.experiments.noether",
    "double-pendulum": "symplearn.experiments.double_pendulum",
    "lennard-jones": "symplearn.experiments.lennard_jones",
    "decision-guide": "symplearn.experiments.decision_guide",
}


def get_experiment(name: str) -> ModuleType:
    """The module of an experiment (``Config``, ``run``, ``DESCRIPTION``); unknown names list
    the valid ones."""
    return importlib.import_module(lookup(name, EXPERIMENTS, "experiment"))


__all__ = ["EXPERIMENTS", "get_experiment"]
