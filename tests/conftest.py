"""Shared test settings: one torch thread per worker (the suite runs with two xdist workers on
2 cores; more threads oversubscribe and slow small networks down), and dtype-keyed tolerances."""

import pytest
import torch

torch.set_num_threads(1)

DTYPES = [torch.float64, torch.float32]


@pytest.fixture(params=DTYPES, ids=["float64", "float32"])
def dtype(request):
    return request.param


def tol(dtype, f64: float, f32: float) -> float:
    """Pick a tolerance by dtype."""
    return f64 if dtype == torch.float64 else f32
