"""retain_freed_memory: freed large blocks are kept and reused (fewer page faults), checked in
fresh processes since the setting is process-wide."""

import subprocess
import sys

import pytest

SCRIPT = r"""
import resource, sys, torch
from symplearn.md import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else None
n = 6_000_000  # 48 MB of float64: above glibc's largest dynamic mmap threshold (32 MiB)
a = torch.ones(n, dtype=torch.float64); del a  # first use: faults in either case
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    a = torch.ones(n, dtype=torch.float64); del a
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


def test_retained_memory_is_reused_without_page_faults():
    applied, retained = _faults("retain")
    if applied != "True":
        pytest.skip("not glibc: retain_freed_memory changes nothing here")
    _, default = _faults("default")
    pages = 6_000_000 * 8 // 4096  # one array's pages
    # by default each fresh 48 MB array is mapped again: ~a page fault per page, five times
    assert default > 4 * pages, default
    # retained: the freed block is reused; at most one of the five touches fresh pages
    assert retained < 1.5 * pages, (retained, default)
