"""Atomic file writing: results are written to temporary names and moved into place, so a
crash or a Ctrl-C never leaves a half-written file behind."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__


def _atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; results are ordinary files
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    return _atomic_write(path, data)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return _atomic_write(path, text.encode("utf-8"))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if hasattr(x, "tolist") and hasattr(x, "dtype"):  # torch tensors
        return x.tolist()
    if isinstance(x, float) and not np.isfinite(x):
        return None if np.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, os.PathLike):
        return str(x)
    return x


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy/torch scalars and arrays converted;
    NaN written as null, infinities as the strings "inf"/"-inf")."""
    return _atomic_write(path, (json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """Write arrays to a compressed ``.npz`` atomically (no pickled objects)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return _atomic_write(path, buf.getvalue())


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``.npz`` without allowing pickled objects."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return _atomic_write(path, buf.getvalue())


def provenance() -> dict[str, Any]:
    """What every run folder records about the software that made it."""
    import platform

    import torch

    return {
        "symplearn_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }


def machine_info() -> dict[str, Any]:
    """The machine a measurement ran on (CPU, cores, load, torch threads) plus :func:`provenance`:
    what benchmarks record beside their numbers."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "torch_default_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        **provenance(),
    }


#: files a run folder may hold (what write_run and the runs write); a folder holding anything
#: else is not replaced by a run, so a mistyped ``--out`` never deletes a user's files
RUN_FILE_SUFFIXES = (".json", ".md", ".png", ".npz", ".csv", ".extxyz", ".txt")


def check_output_folder(out: str | os.PathLike, *, replace: bool = True) -> Path:
    """Check, before any work, that a run can write its folder ``out``.

    Args:
        out: the run folder to write.
        replace: the run replaces the whole folder (``staged_folder(out, replace=True)``); then an
            existing non-empty folder must be a run folder: its ``config.json`` written by
            symplearn, no model weights, no sub-folders, and only files with the suffixes of
            :data:`RUN_FILE_SUFFIXES`.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        SymplearnError: ``out`` exists and is not a folder; its parent cannot be created or
            written; it is a folder that a run must not replace (the message says why).
    """
    from ._errors import SymplearnError

    out = Path(out)
    if str(out).strip() == "":
        raise SymplearnError("the output folder name is empty; give --out DIR")
    if out.exists() and not out.is_dir():
        raise SymplearnError(f"output path {str(out)!r} exists and is not a folder; choose a folder name")
    parent = out.resolve().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise SymplearnError(f"cannot create the output folder {str(out)!r}: {str(probe)!r} is not writable")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise SymplearnError(f"the output folder {str(out)!r} is not writable")
    if replace:
        here, res = Path.cwd().resolve(), out.resolve()
        if res == here or res in here.parents:
            raise SymplearnError(
                f"the output folder {str(out)!r} is the current folder or holds it; a run replaces "
                f"its whole folder, so give a folder name below it (e.g. --out {res.name or 'run'}/new)"
            )
    if replace and out.is_dir():
        entries = [e for e in out.iterdir() if not e.name.startswith(".")]
        if entries:
            foreign = [e.name for e in entries if e.is_dir() or e.suffix not in RUN_FILE_SUFFIXES]
            cfg = out / "config.json"
            ours = False
            if cfg.is_file():
                try:
                    ours = isinstance(c := read_json(cfg), dict) and "symplearn_version" in c
                except (OSError, ValueError):
                    ours = False
            if foreign or not ours or (out / "model.safetensors").exists():
                why = (
                    f"it holds {', '.join(sorted(foreign)[:5])}"
                    if foreign
                    else "it is not a run folder written by symplearn"
                )
                raise SymplearnError(
                    f"the output folder {str(out)!r} already exists and {why}; a run replaces its "
                    f"whole folder, so give a new or empty folder (or a previous run's folder)"
                )
    return out


class staged_folder:
    """Write a run's files into a temporary sibling folder, then move them into ``out``.

    Used as ``with staged_folder(out) as tmp: ...write into tmp...``. On any error the temporary
    folder is removed and ``out`` is untouched: never half-written results.

    Args:
        out: the folder.
        replace: ``False`` (default): each staged file is moved into ``out`` with ``os.replace``
            (atomic per file; ``out`` is created if needed and files already there that the run
            does not write, e.g. a checkpoint, are left alone). ``True``: the whole folder
            appears at once: a new ``out`` is one rename of the staged folder; an existing one
            is renamed aside, the staged folder renamed into place, then the old one removed
            (check it first with :func:`check_output_folder`).
    """

    def __init__(self, out: str | os.PathLike, *, replace: bool = False):
        self.out = Path(out)
        self.replace = replace

    def __enter__(self) -> Path:
        if self.out.exists() and not self.out.is_dir():
            from ._errors import SymplearnError

            raise SymplearnError(f"output path {str(self.out)!r} exists and is not a folder")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=f".{self.out.name}.", suffix=".tmp"))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        import shutil

        try:
            if exc_type is None and self.replace:
                self._swap()
            elif exc_type is None:
                self.out.mkdir(parents=True, exist_ok=True)
                for src in sorted(self.tmp.rglob("*")):
                    dst = self.out / src.relative_to(self.tmp)
                    if src.is_dir():
                        dst.mkdir(parents=True, exist_ok=True)
                    else:
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(src, dst)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _swap(self) -> None:
        import shutil

        os.chmod(self.tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a folder is not
        if not self.out.exists():
            os.rename(self.tmp, self.out)
            return
        old = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=f".{self.out.name}.", suffix=".old"))
        os.rmdir(old)
        os.rename(self.out, old)
        try:
            os.rename(self.tmp, self.out)
        except BaseException:
            os.rename(old, self.out)  # put the previous folder back
            raise
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
