"""Data-parallel training with ``torch.distributed`` (launched by ``torchrun``).

:func:`~symplearn.training.fit` trains data-parallel whenever a default process group exists:
the model is wrapped in :class:`torch.nn.parallel.DistributedDataParallel` (gloo on the CPU, nccl
on CUDA), every rank draws the same global minibatch of ``batch_size`` indices from the
generator seeded with ``seed`` and evaluates its own shard of it (:class:`ShardedBatchSampler`:
rank ``r`` of ``W`` takes the ``r``-th of ``W`` contiguous slices), DDP averages the gradients,
and rank 0 alone writes checkpoints. The loss of each shard is weighted by its share of the
global batch, so the averaged gradient is the gradient of the global-batch mean loss: the same
seeded run as one process with the same ``batch_size``, up to the reassociation of the sums
(tested: float64 weights agree to 1e-12 after 30 steps, see ``tests/test_distributed.py``).

Every rank holds the whole data set in memory (the indices are sharded, not the storage), which
suits the data sets symplearn generates; evaluations of the test split are repeated on every
rank (identical results).

Launch (one machine, N processes)::

    torchrun --standalone --nproc-per-node N my_script.py      # my_script calls init_from_env()

Use :func:`init_from_env` at the start of the script and :func:`is_main_process` to let rank 0
alone write model folders and reports; :func:`run_on_main` runs a step (taking a lock, writing a
folder) on rank 0 alone and lets the other ranks wait for it and share its failure.

The command line does the same: ``torchrun --standalone --nproc-per-node N -m symplearn train ...``
checks its input on every rank before the process group exists (bad input: every rank exits 2),
rank 0 alone takes the output folder's lock and writes the folder, and the other ranks train,
write nothing and wait for rank 0's folder (:data:`WAIT_S` at most) before they exit.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from .._errors import SymplearnError


def is_distributed() -> bool:
    """True when a default process group is initialised (``fit`` then trains with DDP)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """Rank on this machine (``LOCAL_RANK``, set by torchrun; 0 otherwise)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def launched_rank() -> int:
    """This process's rank as the launcher gave it: the process group's rank when one exists,
    else ``RANK`` from the environment (set by torchrun), else 0. Unlike :func:`rank` it is known
    before :func:`init_from_env`, so a command can decide before the process group exists which
    process takes locks and writes."""
    return rank() if is_distributed() else _env_int("RANK", 0)


def launched_world_size() -> int:
    """The number of processes the launcher started (``WORLD_SIZE``; the process group's size
    when one exists; 1 for a plain process)."""
    return world_size() if is_distributed() else max(_env_int("WORLD_SIZE", 1), 1)


def is_main_process() -> bool:
    """True on rank 0 (and without a process group): the process that writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if is_distributed():
        dist.barrier()


def init_from_env(device: str | torch.device | None = None, backend: str | None = None) -> bool:
    """Join the process group torchrun describes in the environment (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``, ``LOCAL_RANK``).

    Args:
        device: the training device ("cpu", "cuda"); picks the backend (nccl for CUDA, gloo
            otherwise) and, for CUDA, selects ``cuda:LOCAL_RANK`` for this process.
        backend: force a backend ("gloo", "nccl").

    Returns:
        True when a process group is active afterwards (launched by torchrun with
        ``WORLD_SIZE`` > 1, or already initialised); False for a plain single process.

    Raises:
        SymplearnError: CUDA asked for but not available, or an unknown backend.
    """
    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SymplearnError(f"device {device!r} asked for, but CUDA is not available here; use 'cpu'")
    backend = backend or ("nccl" if cuda else "gloo")
    if backend not in ("gloo", "nccl", "mpi"):
        raise SymplearnError(f"unknown torch.distributed backend {backend!r}; use 'gloo' or 'nccl'")
    if cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend)
    return True


#: how long (seconds) the other ranks wait for a step rank 0 alone performs (:func:`run_on_main`)
WAIT_S = 600.0

_T = TypeVar("_T")
_steps_run = 0  # run_on_main calls so far in this process (the same sequence on every rank)


def run_on_main(what: str, fn: Callable[[], _T], *, timeout: float | None = None) -> _T | None:
    """Run ``fn`` on rank 0 alone (e.g. take a lock, write a folder); the other ranks wait until
    it has finished and fail when it failed, so no rank hangs on a step that went wrong.

    Rank 0 reports the outcome through the process group's key-value store (a string, not a
    pickle); a failure on rank 0 is re-raised there, and the other ranks raise
    :class:`SymplearnError` with rank 0's message. Without a process group: ``fn()``.

    Args:
        what: the step, for messages ("write the model folder 'out'").
        fn: what rank 0 does; its return value is returned on rank 0 (None elsewhere).
        timeout: seconds the other ranks wait (default :data:`WAIT_S`).

    Raises:
        SymplearnError: on a rank other than 0: rank 0 failed, or did not finish in ``timeout``.
    """
    global _steps_run
    if not is_distributed():
        return fn()
    _steps_run += 1
    store = dist.distributed_c10d._get_default_store()
    # a restarted torchrun job (--max-restarts) gets a fresh process group, but the store may be
    # the agent's: the restart count keeps the keys of the rounds apart
    key = f"symplearn/run_on_main/{_env_int('TORCHELASTIC_RESTART_COUNT', 0)}/{_steps_run}"
    if rank() != 0:
        _wait_outcome(store, key, what, WAIT_S if timeout is None else timeout)
        return None
    try:
        result = fn()
    except BaseException as err:
        store.set(key, f"error:{_one_line(err)}")
        raise
    store.set(key, "ok")
    return result


def _one_line(err: BaseException) -> str:
    if isinstance(err, KeyboardInterrupt):
        return "it was interrupted"
    text = (str(err).splitlines() or [""])[0][:500]
    return text if isinstance(err, SymplearnError) else f"{type(err).__name__}: {text}"


def _wait_outcome(store, key: str, what: str, timeout: float) -> None:
    """Wait (at most ``timeout`` s) for rank 0's outcome ``key`` in ``store``; raise
    :class:`SymplearnError` on a timeout or a failure."""
    try:
        store.wait([key], datetime.timedelta(seconds=timeout))
        outcome = store.get(key).decode("utf-8", "replace")
    except RuntimeError as err:  # DistStoreError on a timeout; a closed store if rank 0 died
        raise SymplearnError(
            f"rank 0 did not {what} within {timeout:g} s "
            f"({(str(err).splitlines() or [''])[0][:200]}); see rank 0's message"
        ) from None
    if outcome != "ok":
        raise SymplearnError(f"rank 0 could not {what}: {outcome.removeprefix('error:')}")


def shutdown(*, barrier: bool = True) -> None:
    """Leave the process group (no-op without one).

    Args:
        barrier: first wait for every rank (the normal end of a run): a rank that tears its
            group down while another is still in a collective or a store wait can make that rank
            abort ("terminate called without an active exception", seen under load). False on a
            failure, where a peer may already be gone and a barrier could wait for it.
    """
    if is_distributed():
        try:
            if barrier:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def training_device(device: torch.device) -> torch.device:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` when ``device`` is CUDA without an
    index under a process group, else ``device``."""
    if is_distributed() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank())
    return device


class ShardedBatchSampler:
    """A distributed minibatch sampler: every rank draws the same global minibatch (with
    replacement, from a generator seeded with ``seed``, exactly as a single process does) and
    keeps its contiguous share.

    Args:
        size: number of training examples.
        batch_size: the global batch (the whole split when larger than it).
        seed: seed of the generator (the same on every rank).
        rank, world: this rank and the number of ranks.

    Raises:
        SymplearnError: a global batch smaller than the number of ranks.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.rank, self.world = size, batch_size, rank, world
        self.generator = torch.Generator().manual_seed(seed)
        if min(batch_size, size) < world:
            raise SymplearnError(
                f"a global batch of {min(batch_size, size)} examples cannot be shared by {world} "
                f"processes; use batch_size >= {world} (and at least as many training examples)"
            )

    def next(self) -> tuple[Tensor, float]:
        """The next global minibatch's share of this rank.

        Returns:
            ``(idx, weight)``: this rank's indices ``(b,)`` and the weight ``W b / B`` of its mean
            loss (1.0 when ``W`` divides ``B``), so that averaging the weighted shard means over
            the ``W`` ranks gives the mean over the global batch of ``B``.
        """
        if self.batch_size >= self.size:
            idx = torch.arange(self.size)
        else:
            idx = torch.randint(self.size, (self.batch_size,), generator=self.generator)
        if self.world == 1:
            return idx, 1.0
        shard = idx.tensor_split(self.world)[self.rank]
        return shard, self.world * len(shard) / len(idx)


class _LossModule(torch.nn.Module):
    """``forward(idx)`` = the training loss of ``model`` on examples ``idx``: the module DDP
    wraps, so that every loss (derivative, acceleration, rollout through any flow map) goes
    through DDP's forward and its gradients are all-reduced in backward."""

    def __init__(self, model: torch.nn.Module, examples):
        super().__init__()
        self.model = model
        self.examples = examples

    def forward(self, idx: Tensor) -> Tensor:
        return self.examples.loss(self.model, idx)


def wrap_loss(model: torch.nn.Module, examples, device: torch.device) -> torch.nn.Module:
    """The loss module, wrapped in DDP under a process group (plain otherwise)."""
    module = _LossModule(model, examples)
    if not is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # static_graph: the same parameters take part in every step; some never get a gradient
    # (an HNN's output bias: the field is a gradient of the energy, its constant drops out)
    return DistributedDataParallel(module, device_ids=ids, static_graph=True)


def mean_over_ranks(value: Tensor) -> Tensor:
    """Average a (detached) tensor over the ranks (itself without a process group)."""
    if not is_distributed():
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / world_size()


@contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it (e.g. generating a data set file)."""
    if not is_main_process():
        barrier()
    yield
    if is_main_process():
        barrier()


__all__ = [
    "ShardedBatchSampler",
    "barrier",
    "init_from_env",
    "is_distributed",
    "is_main_process",
    "launched_rank",
    "launched_world_size",
    "local_rank",
    "main_process_first",
    "mean_over_ranks",
    "rank",
    "run_on_main",
    "shutdown",
    "training_device",
    "world_size",
    "wrap_loss",
]
