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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=".tmp")
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


def _tmp_prefix(path: Path) -> str:
    """Temporary names carry the writer's pid (``.NAME.PID.xxxx.tmp``): a later run into the same
    place removes those of processes that no longer exist (:func:`clean_stale`)."""
    return f".{path.name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    except OverflowError:
        return False
    return True


def clean_stale(path: str | os.PathLike) -> list[Path]:
    """Remove what killed writers left beside ``path``: temporary files and folders
    ``.NAME.PID.*.tmp`` and set-aside folders ``.NAME.PID.*.old`` of processes that no longer
    exist (``SIGKILL`` cannot be caught). A set-aside previous folder whose replacement never
    arrived (``path`` missing) is renamed back into place instead of being removed.

    Returns:
        The paths removed or restored.
    """
    import re
    import shutil

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\..*\.(tmp|old)$")
    done = []
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        try:
            if m.group(2) == "old" and not path.exists():
                os.rename(entry, path)  # an interrupted replacement: the previous folder comes back
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            done.append(entry)
        except OSError:
            pass
    return done


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
    """Read a ``.npz`` without allowing pickled objects.

    Raises:
        ValueError: the file is not a zip archive (a text file named ``.npz`` is reported as
            such, not as "pickled data"), or holds pickled object arrays.
    """
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{str(path)!r} is not an .npz file (not a zip archive; it starts with {magic!r})")
    import zipfile
    import zlib

    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, KeyError, OSError) as err:
        raise ValueError(f"{str(path)!r} is a damaged .npz archive ({type(err).__name__}: {err})") from None


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
                from .schemas import check_run_config

                try:
                    ours = bool(check_run_config(read_json(cfg), str(cfg)))
                except (OSError, ValueError):  # SymplearnError is a ValueError
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


#: the marker a complete folder holds, written last into the staged folder: ``{"files": [names]}``;
#: loaders require it (:func:`check_complete`)
COMPLETE_NAME = ".complete.json"


def write_complete_marker(folder: str | os.PathLike) -> Path:
    """Write :data:`COMPLETE_NAME` into ``folder``: the files below it (call it last)."""
    folder = Path(folder)
    files = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != COMPLETE_NAME
    )
    return write_json(folder / COMPLETE_NAME, {"files": files})


def check_complete(folder: str | os.PathLike, what: str = "folder", *, files: bool = True) -> None:
    """Refuse a folder without its completion marker, or missing a file the marker lists.

    (The marker records names, not sizes or hashes: a file edited afterwards is checked by its
    own loader, which says what is wrong with it.) ``files=False``: only the marker itself.

    Raises:
        SymplearnError: no marker (an interrupted save, or a folder not written by symplearn),
            an unreadable marker, or a listed file that is missing.
    """
    from ._errors import SymplearnError

    folder = Path(folder)
    marker = folder / COMPLETE_NAME
    if not marker.is_file():
        raise SymplearnError(
            f"{str(folder)!r} is not a complete {what}: it has no {COMPLETE_NAME} marker (its save was "
            f"interrupted, or it was not written by symplearn); write it again"
        )
    try:
        listed = read_json(marker).get("files")
        if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
            raise ValueError("no 'files' list")
        missing = [f for f in listed if ".." in Path(f).parts or not (folder / f).is_file()] if files else []
    except (OSError, ValueError, AttributeError) as err:
        raise SymplearnError(f"{str(marker)!r} is not a valid completion marker ({err})") from None
    if missing:
        raise SymplearnError(
            f"{str(folder)!r} has no {', '.join(missing[:5])}, which its completion marker lists: "
            f"it is not the {what} that was written; write it again"
        )


class folder_lock:
    """An exclusive lock on an output path for the duration of a run.

    The lock is the file ``.NAME.lock`` beside ``path``, created atomically (``O_CREAT |
    O_EXCL``) and holding the owner's pid; a lock whose process no longer exists is taken
    over. Used as ``with folder_lock(out): ...``.

    Raises:
        SymplearnError: another living process holds the lock (the message names its pid).
    """

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        self.path = path.parent / f".{path.name or 'out'}.lock"
        self.target = path
        self.held = False

    def __enter__(self) -> folder_lock:
        from ._errors import SymplearnError

        self.created = []  # parents made for the lock: removed on exit if the run left them empty
        p = self.path.parent.absolute()
        while not p.exists() and p != p.parent:
            self.created.append(p)
            p = p.parent
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:  # no place for a lock: the run's own path check says what is wrong
            return self
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError):
                return self  # no place for a lock: the run's own path check says what is wrong
            except FileExistsError:
                try:
                    text = self.path.read_text(encoding="utf-8").strip()
                    pid = int(text.split()[0])
                except (OSError, ValueError, IndexError):
                    pid = -1  # unreadable or half-written by a killed process: stale
                if pid != os.getpid() and _pid_alive(pid):
                    raise SymplearnError(
                        f"{str(self.target)!r} is being written by another symplearn run (pid {pid}, "
                        f"lock {str(self.path)!r}); wait for it to finish or choose another --out"
                    ) from None
                try:
                    self.path.unlink()  # a dead process's lock: take it over
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()}\n")
            self.held = True
            return self
        raise SymplearnError(f"could not take the lock {str(self.path)!r}; try again")

    def __exit__(self, *exc) -> None:
        if self.held:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self.held = False
        for folder in getattr(self, "created", []):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` where
    the call is not available."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc != 0:
        err = ctypes.get_errno()
        import errno

        if err in (errno.ENOSYS, errno.EINVAL, errno.EPERM, errno.ENOTSUP):
            return False
        raise OSError(err, os.strerror(err), str(a))
    return True


def check_output_file(path: str | os.PathLike, suffix: str) -> Path:
    """Check, before any work, that a file ``path`` (given ``suffix`` if it has none) can be
    written. Returns the path with the suffix.

    Raises:
        SymplearnError: an empty name, a folder (``.``, ``..``, an existing folder), or a parent
            that is not a writable folder.
    """
    from ._errors import SymplearnError

    text = str(path)
    p = Path(path)
    if not text.strip() or text.endswith(os.sep) or p.name in ("", ".", "..") or p.is_dir():
        raise SymplearnError(f"--out {text!r} is a folder; give a file name (e.g. --out data{suffix})")
    if p.suffix != suffix:
        p = p.with_name(p.name + suffix) if p.suffix == "" else p.with_suffix(suffix)
    if p.exists() and not p.is_file():
        raise SymplearnError(f"{str(p)!r} exists and is not a file; choose another name")
    parent = p.absolute().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise SymplearnError(f"cannot write {str(p)!r}: {str(probe)!r} is not a writable folder")
    return p


class staged_folder:
    """Write a folder's files into a temporary sibling folder, then make it appear at once.

    Used as ``with staged_folder(out) as tmp: ...write into tmp...``. On any error the temporary
    folder is removed and ``out`` is untouched: never half-written results. The temporary names
    carry the pid, and temporary folders of dead processes beside ``out`` are removed on entry
    (:func:`clean_stale`). The completion marker (:data:`COMPLETE_NAME`) is written last.

    Args:
        out: the folder.
        replace: ``True`` (default): the staged folder becomes ``out`` by one rename (a new
            ``out``) or one atomic exchange (an existing one, which is then removed; where the
            exchange is not available it is renamed aside first and put back if the second
            rename fails, or by :func:`clean_stale` after a kill). ``False``: each staged file
            is moved into ``out`` with ``os.replace`` (atomic per file only).
        keep: names of entries of an existing ``out`` to carry into the new folder (hard links,
            so nothing is copied), e.g. a training checkpoint.
    """

    def __init__(self, out: str | os.PathLike, *, replace: bool = True, keep: tuple[str, ...] = ()):
        self.out = Path(out)
        self.replace = replace
        self.keep = keep

    def __enter__(self) -> Path:
        if self.out.exists() and not self.out.is_dir():
            from ._errors import SymplearnError

            raise SymplearnError(f"output path {str(self.out)!r} exists and is not a folder")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(self.out)
        self.tmp = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=_tmp_prefix(self.out), suffix=".tmp"))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        import shutil

        try:
            if exc_type is None:
                self._carry()
                write_complete_marker(self.tmp)
                if self.replace:
                    self._swap()
                else:
                    self.out.mkdir(parents=True, exist_ok=True)
                    for src in sorted(self.tmp.rglob("*")):
                        dst = self.out / src.relative_to(self.tmp)
                        if src.is_dir():
                            dst.mkdir(parents=True, exist_ok=True)
                        elif src.name != COMPLETE_NAME:
                            dst.parent.mkdir(parents=True, exist_ok=True)
                            os.replace(src, dst)
                    os.replace(self.tmp / COMPLETE_NAME, self.out / COMPLETE_NAME)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _carry(self) -> None:
        if not self.replace or not self.out.is_dir():
            return
        for name in self.keep:
            src = self.out / name
            if not src.exists() or (self.tmp / name).exists():
                continue
            items = [src] + (sorted(src.rglob("*")) if src.is_dir() else [])
            for item in items:
                if item.is_symlink():
                    continue
                dst = self.tmp / item.relative_to(self.out)
                if item.is_dir():
                    dst.mkdir(parents=True, exist_ok=True)
                else:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(item, dst)
                    except OSError:
                        import shutil

                        shutil.copy2(item, dst)

    def _swap(self) -> None:
        import shutil

        os.chmod(self.tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a folder is not
        if not self.out.exists():
            os.rename(self.tmp, self.out)
            return
        if _exchange(self.tmp, self.out):  # self.tmp now holds the previous folder
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=_tmp_prefix(self.out), suffix=".old"))
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
