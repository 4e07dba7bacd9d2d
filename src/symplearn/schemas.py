"""One schema per kind of file symplearn reads, checked on load: the dataset sidecar, the model
folder's ``config.json``, the training checkpoint and the run folder's ``config.json``.

A file that parses but does not have the layout its kind requires (a string where a mapping
belongs, a negative step, an RNG state of the wrong size, an optimizer state of another model)
is refused with a :class:`~symplearn.SymplearnError` naming the file, the field, what it holds
and what is expected: never a traceback further down.

A schema is a small tree of checkers: :class:`Field` for one value, a ``dict`` for a mapping
with known keys (``Field(optional=True)`` for optional ones; other keys are allowed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._errors import SymplearnError

__all__ = [
    "check_checkpoint",
    "check_dataset_sidecar",
    "check_model_config",
    "check_run_config",
    "validate",
]

#: largest model size (width, depth, layers) a model config may name; larger ones are refused
#: before any weights are built (a width of 20000 already costs gigabytes)
MAX_MODEL_SIZE = 1 << 16


@dataclass(frozen=True)
class Field:
    """One value: ``kind`` (a type or tuple of types; ``bool`` is never taken for a number),
    an optional ``check(value) -> str | None`` (the problem, or ``None``), ``optional``: the key
    may be missing, ``items``: a schema every element of a list / value of a mapping obeys."""

    kind: Any = object
    check: Callable[[Any], str | None] | None = None
    optional: bool = False
    items: Any = None
    nullable: bool = False


def _type_name(kind: Any) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _is(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, kind)


def validate(value: Any, schema: Any, where: str, path: str = "") -> None:
    """Check ``value`` against ``schema``.

    Args:
        value: the parsed file (or a part of it).
        schema: a :class:`Field`, or a ``dict`` of key -> schema for a mapping.
        where: the file, for the message.
        path: the field path so far (for the message).

    Raises:
        SymplearnError: the first problem found, as ``"<where>: field <path>: ..."``.
    """
    label = path or "(top level)"
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise SymplearnError(
                f"{where}: field {label} must be a mapping, got {type(value).__name__} {_short(value)}"
            )
        for key, sub in schema.items():
            child = f"{path}.{key}" if path else key
            if key not in value:
                if isinstance(sub, Field) and sub.optional:
                    continue
                raise SymplearnError(f"{where}: the field {child} is missing")
            validate(value[key], sub, where, child)
        return
    if value is None and schema.nullable:
        return
    if not _is(value, schema.kind):
        raise SymplearnError(
            f"{where}: field {label} must be {_type_name(schema.kind)}, got "
            f"{type(value).__name__} {_short(value)}"
        )
    if schema.check is not None:
        problem = schema.check(value)
        if problem:
            raise SymplearnError(f"{where}: field {label} {problem}, got {_short(value)}")
    if schema.items is not None:
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in children:
            if isinstance(value, dict) and not isinstance(key, str):
                raise SymplearnError(f"{where}: field {label} has a non-string key {key!r}")
            validate(item, schema.items, where, f"{label}[{key!r}]")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- checks ------------------------------------------------------------------------------------
def _finite(v: Any) -> str | None:
    return None if math.isfinite(v) else "must be finite"


def _positive(v: Any) -> str | None:
    return None if math.isfinite(v) and v > 0 else "must be a finite number > 0"


def _nonneg(v: Any) -> str | None:
    return None if math.isfinite(v) and v >= 0 else "must be a finite number >= 0"


def _size(v: Any) -> str | None:
    return None if 1 <= v <= MAX_MODEL_SIZE else f"must be between 1 and {MAX_MODEL_SIZE}"


def _one_of(*names: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in names else f"must be one of {', '.join(map(repr, names))}"


def _nonempty(v: Any) -> str | None:
    return None if v.strip() else "must not be empty"


NUMBER = Field((int, float), _finite)
#: a system parameter: a number, or a name (e.g. a cutoff treatment)
PARAM = Field(
    (int, float, str), lambda v: None if isinstance(v, str) or math.isfinite(v) else "must be finite"
)
SYSTEM = {"name": Field(str, _nonempty), "params": Field(dict, items=PARAM, optional=True)}

#: the JSON sidecar of a dataset (``data.json`` beside ``data.npz``)
DATASET_SIDECAR = {
    "format": Field(str, _one_of("symplearn-dataset")),
    "format_version": Field(int),
    "arrays": Field(
        dict,
        items={
            "shape": Field(list, items=Field(int, lambda v: None if v >= 0 else "must be >= 0")),
            "dtype": Field(str),
        },
    ),
    "metadata": {
        "system": Field(dict, optional=True),
        "dt": Field((int, float), _positive, optional=True),
        "n_dof": Field(int, lambda v: None if v >= 1 else "must be >= 1", optional=True),
        "noise_std": Field((int, float), _nonneg, optional=True),
    },
}

#: the ``model`` entry of a model folder's config.json (``build_model(**model)``)
MODEL_SECTION = {
    "kind": Field(str, _nonempty),
    "n_dof": Field(int, _size, optional=True),
    "width": Field(int, _size, optional=True),
    "depth": Field(int, _size, optional=True),
    "layers": Field(int, _size, optional=True),
    "dt": Field((int, float), _positive, optional=True),
    "activation": Field(str, optional=True, nullable=True),
}

#: a model folder's config.json
MODEL_CONFIG = {
    "symplearn_version": Field(str),
    "dtype": Field(str, _one_of("float32", "float64"), optional=True),
    "model": MODEL_SECTION,
    "system": Field(dict, optional=True),
    "data": Field(dict, optional=True),
    "training": Field(dict, optional=True),
    "provenance": Field(dict, optional=True),
}

#: a run folder's config.json (what check_output_folder reads before replacing it)
RUN_CONFIG = {"symplearn_version": Field(str)}


def check_dataset_sidecar(sidecar: Any, where: str) -> dict[str, Any]:
    """Validate a dataset sidecar (after the format marker is known). Returns it.

    Raises:
        SymplearnError: see :func:`validate`; also a ``system`` entry that is not ``{"name":
            str, "params": {str: number}}``.
    """
    validate(sidecar, DATASET_SIDECAR, where)
    if "system" in sidecar["metadata"] and sidecar.get("format_version") != 1:
        validate(sidecar["metadata"]["system"], SYSTEM, where, "metadata.system")
    return sidecar


def check_model_config(config: Any, where: str) -> dict[str, Any]:
    """Validate a model folder's ``config.json``. Returns it.

    Raises:
        SymplearnError: see :func:`validate`.
    """
    validate(config, MODEL_CONFIG, where)
    if "system" in config:
        validate(config["system"], SYSTEM, where, "system")
    return config


def check_run_config(config: Any, where: str) -> dict[str, Any]:
    """Validate a run folder's ``config.json`` (written by ``report.write_run``). Returns it."""
    validate(config, RUN_CONFIG, where)
    return config


def check_checkpoint(state: Any, where: str) -> dict[str, Any]:
    """Validate a training checkpoint (``torch.load(weights_only=True)`` output). Returns it.

    Besides the layout, checks what can be checked without the model: the step is an integer
    >= 0, the weights are finite, the random-number-generator states have the sizes this torch
    writes, and the optimizer state belongs to the checkpoint's own weights (one moment of each
    parameter's shape).

    Raises:
        SymplearnError: the first problem, naming the field.
    """
    import torch

    tensor = Field(torch.Tensor)
    schema = {
        "format": Field(int),
        "step": Field(int, lambda v: None if v >= 0 else "must be >= 0"),
        "elapsed": Field((int, float), _nonneg),
        "accumulated": Field(
            list,
            lambda v: (
                None if len(v) == 2 and all(_is(x, (int, float)) for x in v) else "must be [sum, count]"
            ),
        ),
        "model": Field(dict, items=tensor),
        "optimizer": {"state": Field(dict), "param_groups": Field(list, items=Field(dict))},
        "scheduler": Field(dict),
        "rng": {"sampler": tensor, "torch": tensor},
        "history": {
            "step": Field(list, items=Field(int)),
            "train_loss": Field(list, items=Field((int, float))),
            "test_loss": Field(list, items=Field((int, float), nullable=True)),
            "lr": Field(list, items=Field((int, float))),
        },
        "settings": {"steps": Field(int), "seed": Field(int)},
    }
    validate(state, schema, where)
    for name, t in state["model"].items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise SymplearnError(
                f"{where}: the weight {name!r} holds NaN or infinite values; this checkpoint cannot "
                f"be resumed, start the run afresh"
            )
    for key, ref in (("sampler", torch.Generator().get_state()), ("torch", torch.get_rng_state())):
        got = state["rng"][key]
        if got.dtype != ref.dtype or got.shape != ref.shape:
            raise SymplearnError(
                f"{where}: field rng.{key} is a {got.dtype} tensor of shape {tuple(got.shape)}, "
                f"a random-number-generator state is {ref.dtype} of shape {tuple(ref.shape)}"
            )
    bad = _not_plain(state["settings"], "settings")
    if bad:
        raise SymplearnError(f"{where}: field {bad} must be plain data (numbers, strings, lists, mappings)")
    _check_optimizer_and_schedule(state, where)
    shapes = sorted(tuple(t.shape) for t in state["model"].values())
    n_params = sum(len(g.get("params", [])) for g in state["optimizer"]["param_groups"])
    if n_params > len(shapes):
        raise SymplearnError(
            f"{where}: the optimizer state has {n_params} parameters but the weights have {len(shapes)} "
            f"tensors: it belongs to another model"
        )
    for pid, entry in state["optimizer"]["state"].items():
        if not isinstance(entry, dict):
            raise SymplearnError(f"{where}: field optimizer.state[{pid!r}] must be a mapping")
        for k, t in entry.items():
            if isinstance(t, torch.Tensor) and t.dim() > 0 and tuple(t.shape) not in shapes:
                raise SymplearnError(
                    f"{where}: the optimizer's {k} of parameter {pid} has shape {tuple(t.shape)}, "
                    f"which no weight of the checkpoint has: it belongs to another model"
                )
    return state


def _like(value: Any, ref: Any, where: str, path: str) -> None:
    """``value`` has the layout of the reference ``ref`` (what this torch writes): the same keys,
    list lengths and kinds of values (numbers finite; ``None`` references take ``None`` or a
    bool/number)."""
    import torch

    if isinstance(ref, dict):
        if not isinstance(value, dict):
            raise SymplearnError(f"{where}: field {path} must be a mapping, got {_short(value)}")
        for k, r in ref.items():
            if k not in value:
                raise SymplearnError(f"{where}: the field {path}.{k} is missing")
            _like(value[k], r, where, f"{path}.{k}")
        return
    if isinstance(ref, (list, tuple)):
        if not isinstance(value, (list, tuple)) or (len(value) != len(ref) and not path.endswith("lrs")):
            raise SymplearnError(
                f"{where}: field {path} must be a list like {_short(list(ref))}, got {_short(value)}"
            )
        for i, (v, r) in enumerate(zip(value, ref)):
            _like(v, r, where, f"{path}[{i}]")
        return
    if isinstance(ref, torch.Tensor):
        ok = isinstance(value, torch.Tensor)
    elif isinstance(ref, bool):
        ok = isinstance(value, bool)
    elif isinstance(ref, (int, float)):
        ok = _is(value, (int, float)) and math.isfinite(value)
    elif ref is None:
        ok = value is None or _is(value, (bool, int, float))
    else:
        ok = isinstance(value, type(ref))
    if not ok:
        raise SymplearnError(
            f"{where}: field {path} must be like {_short(ref)} ({type(ref).__name__}), got {_short(value)}"
        )


def _check_optimizer_and_schedule(state: dict[str, Any], where: str) -> None:
    """The optimizer's parameter groups and the schedule's state have the layout this torch writes
    for the checkpoint's optimizer (Adam/AdamW) and schedule (cosine or none)."""
    import torch

    settings = state["settings"]
    opt_cls = torch.optim.AdamW if settings.get("optimizer") == "adamw" else torch.optim.Adam
    opt = opt_cls([torch.zeros(1, requires_grad=True)], lr=1e-3)
    ref_group = {k: v for k, v in opt.state_dict()["param_groups"][0].items() if k != "params"}
    for i, group in enumerate(state["optimizer"]["param_groups"]):
        validate(group, {"params": Field(list, items=Field(int))}, where, f"optimizer.param_groups[{i}]")
        _like(
            {k: v for k, v in group.items() if k in ref_group},
            ref_group,
            where,
            f"optimizer.param_groups[{i}]",
        )
        if group["lr"] < 0:
            raise SymplearnError(
                f"{where}: field optimizer.param_groups[{i}].lr must be >= 0, got {group['lr']}"
            )
    for pid, entry in state["optimizer"]["state"].items():
        if not isinstance(entry, dict) or not all(isinstance(t, torch.Tensor) for t in entry.values()):
            raise SymplearnError(f"{where}: field optimizer.state[{pid!r}] must map names to tensors")
    if settings.get("schedule") == "cosine":
        ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1).state_dict()
        _like(state["scheduler"], {k: v for k, v in ref.items() if not k.startswith("_")}, where, "scheduler")


def _not_plain(value: Any, path: str) -> str | None:
    """The path of the first value in ``value`` that is not plain JSON data, or ``None``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            bad = _not_plain(v, f"{path}.{k}") if isinstance(k, str) else f"{path}[{k!r}]"
            if bad:
                return bad
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bad = _not_plain(v, f"{path}[{i}]")
            if bad:
                return bad
        return None
    return path
