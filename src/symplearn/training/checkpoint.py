"""Training checkpoints: one file, written atomically, loadable without executing code.

A checkpoint holds tensors and plain containers only (``dict``, ``list``, ``tuple``, ``str``,
numbers, ``None``): model weights, optimizer and scheduler state, random-number-generator
states (as ``uint8`` tensors), the step, the loss history and the fit settings. It is written
with ``torch.save`` to memory and moved into place by :func:`symplearn._files.write_bytes`
(temporary file + ``os.replace``), and read back with ``torch.load(weights_only=True)``: never
plain pickle.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from .._errors import SymplearnError
from .._files import clean_stale, write_bytes

#: file name of the checkpoint inside a checkpoint directory
CHECKPOINT_NAME = "checkpoint.pt"
#: version of the checkpoint layout
CHECKPOINT_FORMAT = 1


def checkpoint_path(checkpoint_dir: str | os.PathLike) -> Path:
    """The checkpoint file inside ``checkpoint_dir``."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def data_fingerprint(data: Any) -> str:
    """SHA-256 (hex, first 16 digits) of the training arrays: states, derivatives, the split, the
    times and the time step, as they are fed to the optimizer. A resumed run compares it with the
    checkpoint's, so another data set of the same shapes (a noisier one) is refused.

    Args:
        data: a :class:`~symplearn.datasets.TrainingData` (``z``, ``dzdt``, ``train_idx``,
            ``test_idx``, ``dt``, the times ``t``).
    """
    import hashlib

    h = hashlib.sha256()
    for name in ("z", "dzdt", "train_idx", "test_idx", "t"):
        x = getattr(data, name, None)
        h.update(name.encode())
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().contiguous()
            h.update(str((x.dtype, tuple(x.shape))).encode())
            h.update(x.numpy().tobytes())
    h.update(repr(getattr(data, "dt", None)).encode())
    return h.hexdigest()[:16]


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors and plain containers) to ``path`` atomically.

    Returns:
        The path written.
    """
    clean_stale(path)  # temporary files of killed writers
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buf)
    return write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``, on the CPU).

    Raises:
        SymplearnError: the file is missing, unreadable, not a symplearn checkpoint, or one
            whose fields do not have the checkpoint layout (:func:`symplearn.schemas.check_checkpoint`).
    """
    path = Path(path)
    if not path.is_file():
        raise SymplearnError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupted file, or one that would need unpickling code
        first = (str(err).splitlines() or ["empty or truncated file"])[0][:200]
        raise SymplearnError(f"{path} is not a readable checkpoint ({type(err).__name__}: {first})") from err
    fmt = state.get("format") if isinstance(state, dict) else None
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt != CHECKPOINT_FORMAT:
        raise SymplearnError(f"{path} is not a symplearn checkpoint of format {CHECKPOINT_FORMAT}")
    from ..schemas import check_checkpoint

    return check_checkpoint(state, str(path))
