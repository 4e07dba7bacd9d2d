"""Process-level memory policy for large-array work (MD of tens of thousands of particles).

PyTorch's CPU tensors come from the C library's ``malloc``. With glibc's defaults, a block above
the dynamic mmap threshold (at most 32 MiB) is mapped fresh and unmapped when freed, and the
heap top is returned to the system past the trim threshold; so an MD step at N = 32000, whose
pair arrays are 10-30 MB each and are allocated and freed every step, pays page faults and
zeroing on every array (measured: a third of the eager step). :func:`retain_freed_memory` sets
both thresholds high, so freed blocks are kept and reused, as the caching allocators that
PyTorch recommends for CPU work (jemalloc, tcmalloc) do.

It changes the whole process, so the library never calls it on its own: the command line
(``symplearn md``) does, as the owner of its process; a script may.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["retain_freed_memory"]

#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def retain_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Keep freed blocks of up to ``limit_bytes`` in the heap for reuse instead of returning them
    to the system (glibc ``mallopt(M_MMAP_THRESHOLD)`` and ``mallopt(M_TRIM_THRESHOLD)``).

    The price: the process's resident memory stays near its peak of the last steps (freed
    arrays are kept, not unmapped). Blocks above ``limit_bytes`` are still mapped and unmapped.

    Args:
        limit_bytes: the largest block kept (default 1 GiB; glibc caps the mmap threshold at
            half the address space of a 32-bit build, far above it).

    Returns:
        ``True`` where the C library is glibc and took both settings; ``False`` elsewhere (musl,
        macOS, Windows: nothing is changed).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
        gnu = libc.gnu_get_libc_version  # glibc only
    except (OSError, AttributeError):
        return False
    del gnu
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    limit = int(max(1, min(limit_bytes, 2**31 - 1)))
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))
