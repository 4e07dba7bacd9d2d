"""Trained-model folders: save and load without ever unpickling anything.

A model folder holds

* ``model.safetensors``: the weights (safetensors: loading executes no code);
* ``config.json``: ``{"symplearn_version", "dtype", "model": model.config (kind and sizes),
  "provenance": versions, ...}`` plus whatever the caller adds (system name and parameters,
  data and training settings);
* ``metrics.json``: final train and test loss, steps, wall time (when given);
* ``loss.png``: the loss curve, train and test, log-scale (when a history is given).

Every file is written atomically (temporary file, then ``os.replace``). :func:`load_model`
rebuilds the architecture with ``build_model(**config["model"])`` and refuses, with a message
that says what is wrong, a folder from another major/minor version of symplearn, weights that do
not match the config, a weights file that is not valid safetensors, or a missing file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from . import __version__
from ._errors import SymplearnError
from ._files import provenance, read_json, save_figure, write_bytes, write_json

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.json"
LOSS_FIGURE_NAME = "loss.png"
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(str(version).split(".")[:2])


def _model_dtype(model) -> torch.dtype:
    p = next(iter(model.parameters()), None)
    return p.dtype if p is not None else torch.get_default_dtype()


def save_model(
    model,
    folder: str | os.PathLike,
    *,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    history: dict[str, list] | None = None,
) -> Path:
    """Write a trained model to ``folder`` (created if needed).

    Args:
        model: a symplearn model (``model.config`` names its kind and sizes).
        folder: the model folder.
        config: extra run settings stored in ``config.json`` beside the model's own
            (e.g. ``{"system": {...}, "data": {...}, "training": {...}}``); must be JSON-able
            and must not use the reserved keys ``model``, ``dtype``, ``symplearn_version``,
            ``provenance``.
        metrics: numbers for ``metrics.json`` (e.g. ``FitResult.metrics()``).
        history: a loss history (``FitResult.history``) for ``loss.png``.

    Returns:
        The folder.

    Raises:
        SymplearnError: a model without a ``config``, or reserved keys in ``config``.
    """
    model_config = getattr(model, "config", None)
    if not isinstance(model_config, dict) or "kind" not in model_config:
        raise SymplearnError(
            f"save_model needs a symplearn model with a config dict naming its kind "
            f"(see symplearn.models.build_model), got {type(model).__name__}"
        )
    dtype = _model_dtype(model)
    record: dict[str, Any] = {
        "symplearn_version": __version__,
        "dtype": str(dtype).removeprefix("torch."),
        "model": model_config,
        "provenance": provenance(),
    }
    reserved = set(record) & set(config or {})
    if reserved:
        raise SymplearnError(
            f"config keys {', '.join(sorted(reserved))} are reserved (save_model fills them in)"
        )
    record.update(config or {})

    from safetensors.torch import save

    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_bytes(folder / WEIGHTS_NAME, save(tensors, metadata={"symplearn_version": __version__}))
    write_json(folder / CONFIG_NAME, record)
    if metrics is not None:
        write_json(folder / METRICS_NAME, metrics)
    if history is not None and history.get("step"):
        save_figure(plot_loss_history(history), folder / LOSS_FIGURE_NAME)
    return folder


def load_run_config(folder: str | os.PathLike) -> dict[str, Any]:
    """Read ``config.json`` of a model folder, checking it was written by a compatible symplearn
    (same major.minor version).

    Raises:
        SymplearnError: missing folder or file, invalid JSON, no or another version.
    """
    folder = Path(folder)
    path = folder / CONFIG_NAME
    if not folder.is_dir():
        raise SymplearnError(f"model folder {folder} does not exist")
    if not path.is_file():
        raise SymplearnError(
            f"{folder} has no {CONFIG_NAME}: not a model folder written by symplearn.save_model"
        )
    try:
        config = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SymplearnError(f"{path} is not valid JSON ({err})") from err
    if not isinstance(config, dict) or "symplearn_version" not in config:
        raise SymplearnError(
            f"{path} records no symplearn_version: not a config written by symplearn.save_model"
        )
    saved = str(config["symplearn_version"])
    if _major_minor(saved) != _major_minor(__version__):
        raise SymplearnError(
            f"{folder} was written by symplearn {saved}, and this is symplearn {__version__}: "
            f"model folders load only within the same major.minor version "
            f"({'.'.join(_major_minor(saved))}.x); retrain the model or use symplearn {saved}"
        )
    return config


def load_model(folder: str | os.PathLike, *, device: str | torch.device | None = None):
    """Rebuild a model saved by :func:`save_model` (exported as ``symplearn.load``).

    Args:
        folder: the model folder.
        device: where to put the model (default CPU).

    Returns:
        The model, in eval mode, with the saved dtype and weights.

    Raises:
        SymplearnError: see :func:`load_run_config`; a config that does not describe a model; a
            missing or invalid ``model.safetensors``; weights that do not match the config
            (missing or unexpected tensors, shape mismatches: the message names the tensor).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    from .models import build_model

    folder = Path(folder)
    config = load_run_config(folder)
    model_config = config.get("model")
    if not isinstance(model_config, dict) or "kind" not in model_config:
        raise SymplearnError(f"{folder / CONFIG_NAME} has no 'model' section naming the model kind")
    dtype_name = config.get("dtype", "float32")
    if dtype_name not in _DTYPES:
        raise SymplearnError(
            f"{folder / CONFIG_NAME} names dtype {dtype_name!r}; valid: {', '.join(_DTYPES)}"
        )
    try:
        model = build_model(**model_config)
    except TypeError as err:  # unknown constructor arguments
        raise SymplearnError(
            f"{folder / CONFIG_NAME}: the 'model' section does not describe a "
            f"{model_config['kind']!r} model ({err})"
        ) from err
    model.to(dtype=_DTYPES[dtype_name])

    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise SymplearnError(f"{folder} has no {WEIGHTS_NAME} (the model's weights)")
    try:
        state = load_safetensors(weights.read_bytes())
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise SymplearnError(
            f"{weights} is not a valid safetensors file ({err}); it is corrupted or was not "
            f"written by symplearn.save_model"
        ) from err

    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing tensors {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {', '.join(unexpected)}")
    for name in sorted(set(expected) & set(state)):
        if tuple(state[name].shape) != tuple(expected[name].shape):
            problems.append(
                f"tensor {name!r} has shape {tuple(state[name].shape)} in the weights but "
                f"{tuple(expected[name].shape)} in a model built from the config"
            )
    if problems:
        raise SymplearnError(
            f"the weights in {weights} do not match the model described by "
            f"{folder / CONFIG_NAME} ({model_config}): {'; '.join(problems)}"
        )
    model.load_state_dict(state)
    if device is not None:
        model.to(device=device)
    return model.eval()


def plot_loss_history(history: dict[str, list], *, title: str | None = None):
    """The loss curve of a training run: train and test loss against the step, log-scale.

    Args:
        history: ``{"step": [...], "train_loss": [...], "test_loss": [...]}`` (test entries may
            be ``None``), as in ``FitResult.history``.
        title: figure title (default "Training loss").

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    steps = history["step"]
    ax.plot(steps, history["train_loss"], label="train (mean minibatch loss)")
    test = [(s, v) for s, v in zip(steps, history.get("test_loss", [])) if v is not None]
    if test:
        ax.plot(*zip(*test), label="test", linestyle="--")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean squared error, data units)")
    ax.set_title(title or "Training loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig
