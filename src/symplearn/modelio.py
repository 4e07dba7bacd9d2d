"""Trained-model folders: save and load without ever unpickling anything.

A model folder holds

* ``model.safetensors``: the weights (safetensors: loading executes no code);
* ``config.json``: ``{"symplearn_version", "dtype", "model": model.config (kind and sizes),
  "provenance": versions, "training": fit settings, "data": data description, "system": name
  and parameters, ...}`` plus whatever the caller adds;
* ``metrics.json``: final train and test loss, steps, wall time (when given);
* ``loss.png``: the loss curve, train and test, log-scale (when the caller draws one:
  :func:`symplearn.plotting.fit_loss_figure`).

The files are written into a temporary sibling folder, a completion marker last, and the
folder appears with one rename (an existing one is exchanged atomically:
:class:`symplearn._files.staged_folder`), so a crash leaves the previous folder or the new one,
whole, never a mix. Loading requires the marker and checks ``config.json`` against
:data:`symplearn.schemas.MODEL_CONFIG`. :func:`load_model` rebuilds the architecture with
``build_model(**config["model"])`` and
refuses, with a message that says what is wrong, a folder from another major.minor version of
symplearn, weights that do not match the config (names, shapes, dtypes), non-finite weights, a
weights file that is not valid safetensors (a pickle, a truncated file, ...), or a missing file.
Nothing is ever unpickled: the weights are parsed by safetensors, the rest is JSON.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from ._errors import NonFiniteError, SymplearnError
from ._files import (
    COMPLETE_NAME,
    check_complete,
    provenance,
    read_json,
    save_figure,
    staged_folder,
    write_bytes,
    write_json,
)
from ._validate import DTYPES, check_memory
from ._version import __version__

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.json"
LOSS_FIGURE_NAME = "loss.png"


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(str(version).split(".")[:2])


def _model_dtype(model) -> torch.dtype:
    p = next(iter(model.parameters()), None)
    return p.dtype if p is not None else torch.get_default_dtype()


def save_model(
    model,
    folder: str | os.PathLike,
    *,
    result=None,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    loss_figure=None,
    files: dict[str, bytes] | None = None,
) -> Path:
    """Write a trained model to ``folder``, whole: staged beside it and moved in with one rename
    (files already there that are not the model's, e.g. a checkpoint, are carried over).

    Args:
        model: a symplearn model (``model.config`` names its kind and sizes).
        folder: the model folder.
        result: the :class:`~symplearn.training.FitResult` of the run; fills ``metrics``
            (``result.metrics()``) and the config's ``"training"`` (the fit
            settings), ``"data"`` and ``"system"`` (when the data knew its system) entries,
            unless given explicitly.
        config: extra run settings stored in ``config.json`` beside the model's own
            (e.g. ``{"system": {...}, "data": {...}, "training": {...}}``); must be JSON-able
            and must not use the reserved keys ``model``, ``dtype``, ``symplearn_version``,
            ``provenance``.
        metrics: numbers for ``metrics.json`` (e.g. ``FitResult.metrics()``).
        loss_figure: a matplotlib figure saved as ``loss.png``, drawn by the caller (e.g.
            :func:`symplearn.plotting.fit_loss_figure` of the result); none when ``None``.
        files: more files of the folder, ``{name: content}`` (plain names, not the model's own
            file names), written into the staged folder with the rest.

    Returns:
        The folder.

    Raises:
        SymplearnError: a model without a ``config``, reserved keys in ``config``, a file name
            that is not a plain name or is one of the model's own, or non-finite weights.
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
    config = dict(config or {})
    reserved = set(record) & set(config)
    if reserved:
        raise SymplearnError(
            f"config keys {', '.join(sorted(reserved))} are reserved (save_model fills them in)"
        )
    if result is not None:
        settings = dict(getattr(result, "settings", None) or {})
        data_info = settings.pop("data", None)
        settings.pop("model", None)  # recorded once, under "model"
        if data_info is not None:
            config.setdefault("data", data_info)
            if isinstance(data_info, dict) and "system" in data_info:
                config.setdefault("system", data_info["system"])
        config.setdefault("training", settings)
        metrics = result.metrics() if metrics is None else metrics
    record.update(config)

    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise NonFiniteError(f"cannot save the model: its tensor {name!r} holds NaN or infinite values")
    weights = save(tensors, metadata={"symplearn_version": __version__})
    folder = Path(folder)
    ours = {WEIGHTS_NAME, CONFIG_NAME, METRICS_NAME, LOSS_FIGURE_NAME, COMPLETE_NAME}
    files = dict(files or {})
    bad = [n for n in files if n in ours or Path(n).name != n or n in ("", ".", "..")]
    if bad:
        raise SymplearnError(f"save_model: extra file names must be plain new names, got {bad}")
    keep = tuple(sorted(e.name for e in folder.iterdir() if e.name not in ours)) if folder.is_dir() else ()
    with staged_folder(folder, replace=True, keep=keep) as tmp:
        write_bytes(tmp / WEIGHTS_NAME, weights)
        write_json(tmp / CONFIG_NAME, record)
        if metrics is not None:
            write_json(tmp / METRICS_NAME, metrics)
        if loss_figure is not None:
            save_figure(loss_figure, tmp / LOSS_FIGURE_NAME)
        for name, content in files.items():
            write_bytes(tmp / name, content)
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
    check_complete(folder, "model folder", files=False)
    try:
        config = read_json(path)
    except (OSError, ValueError) as err:
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
    from .schemas import check_model_config

    return check_model_config(config, str(path))


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
    if dtype_name not in DTYPES:
        raise SymplearnError(f"{folder / CONFIG_NAME} names dtype {dtype_name!r}; valid: {', '.join(DTYPES)}")
    _check_model_size(model_config, dtype_name, folder)
    try:
        model = build_model(**model_config)
    except (TypeError, ValueError) as err:  # unknown constructor arguments
        raise SymplearnError(
            f"{folder / CONFIG_NAME}: the 'model' section does not describe a "
            f"{model_config['kind']!r} model ({err})"
        ) from err
    model.to(dtype=DTYPES[dtype_name])

    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise SymplearnError(f"{folder} has no {WEIGHTS_NAME} (the model's weights)")
    check_complete(folder, "model folder")  # every file the save wrote is there
    try:
        state = load_safetensors(weights.read_bytes())
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise SymplearnError(
            f"{weights} is not a valid safetensors file ({err}); it is corrupted or was not "
            f"written by symplearn.save_model"
        ) from err

    expected = model.state_dict()
    problems: list[str] = []
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
        elif state[name].dtype != expected[name].dtype:
            problems.append(
                f"tensor {name!r} is {state[name].dtype} in the weights but the config says "
                f"{expected[name].dtype}"
            )
    if problems:
        raise SymplearnError(
            f"the weights in {weights} do not match the model described by "
            f"{folder / CONFIG_NAME} ({model_config}): {'; '.join(problems)}"
        )
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise NonFiniteError(f"{weights}: tensor {name!r} holds NaN or infinite values")
    model.load_state_dict(state)
    if device is not None:
        model.to(device=device)
    return model.eval()


def _weights_numbers(path: Path) -> int | None:
    """How many numbers a safetensors file holds, from its header alone (``None``: unreadable)."""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return None
            n = struct.unpack("<Q", head)[0]
            if n > min(path.stat().st_size, 100_000_000):
                return None
            header = json.loads(fh.read(n))
        return sum(math.prod(int(d) for d in v["shape"]) for k, v in header.items() if k != "__metadata__")
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _meta_numbers(model_config: dict[str, Any]) -> int | None:
    """How many numbers (parameters and buffers) the model of ``model_config`` holds, counted on
    a model built on torch's ``meta`` device (no memory is allocated, whatever the sizes);
    ``None`` where the config does not build (the real build reports why)."""
    from .models import build_model

    try:
        with torch.device("meta"):
            model = build_model(**model_config)
    except Exception:  # noqa: BLE001 - the real build_model call words the error
        return None
    return sum(int(t.numel()) for t in model.state_dict().values())


def _check_model_size(model_config: dict[str, Any], dtype_name: str, folder: Path) -> None:
    """Refuse, before building it, a model whose config names sizes the weights cannot have or
    the machine cannot hold: the numbers of the model the config describes are counted exactly
    (built on the ``meta`` device, for every model kind) and compared with the numbers in the
    weights file (read from its header: more than 4x as many is refused here) and with the
    machine's memory."""
    where = folder / CONFIG_NAME
    need = _meta_numbers(model_config)
    if need is None:
        return  # build_model will say what is wrong with the config
    have = _weights_numbers(folder / WEIGHTS_NAME)
    # a config that would build far more than the weights hold is refused before building; a
    # near miss (another width or depth) is built and the tensor-by-tensor comparison of
    # load_model names the tensor that differs
    if have is not None and need > 4 * have + 2**16:
        raise SymplearnError(
            f"{where} describes a {model_config.get('kind')!r} model of {need} numbers but "
            f"{folder / WEIGHTS_NAME} holds {have} numbers: the config does not belong to these weights"
        )
    check_memory(
        need * (4 if dtype_name == "float32" else 8),
        f"the model of {where} ({need:.3g} numbers)",
        "check the sizes in its config",
    )
