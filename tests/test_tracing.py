"""Traced flow maps (integrators.trace_flow): the same numbers as the eager step, time carried."""

import pytest
import torch

import symplearn as sl
from symplearn import SymplearnError
from symplearn.dynamics import Dynamics, batch_time
from symplearn.integrators import TracedFlow, trace_flow
from symplearn.models import HNN, GSympNet


class ForcedOscillator(Dynamics):
    """``q' = p``, ``p' = -q + sin(3 t)``: non-autonomous, so a trace must take t as an input."""

    n_dof = 1

    def vector_field(self, t, z):
        return torch.stack([z[..., 1], -z[..., 0] + torch.sin(3.0 * batch_time(t, z))], -1)


def test_traced_rk4_rollout_of_an_hnn_equals_the_eager_one():
    torch.manual_seed(0)
    model = HNN(n_dof=1, width=32).double()
    z0 = sl.get_system("oscillator").sample(4)
    flow = sl.discretize(model, "rk4", 0.05)
    traced = trace_flow(flow, z0)
    assert isinstance(traced, TracedFlow)
    with torch.inference_mode():
        eager = sl.integrate(flow, z0, 300).z
        replay = sl.integrate(traced, z0, 300).z
    assert float((eager - replay).abs().max()) <= 1e-13


def test_traced_flow_carries_the_time_of_non_autonomous_dynamics():
    z0 = torch.tensor([[1.0, 0.0], [0.5, 0.2]], dtype=torch.float64)
    flow = sl.discretize(ForcedOscillator(), "rk4", 0.01)
    traced = trace_flow(flow, z0)
    assert isinstance(traced, TracedFlow)
    a = sl.integrate(flow, z0, 400, t0=2.0).z
    b = sl.integrate(traced, z0, 400, t0=2.0).z
    c = sl.integrate(traced, z0, 400, t0=0.0).z  # another start time is another trajectory
    assert float((a - b).abs().max()) <= 1e-13
    assert float((a - c).abs().max()) > 1e-2


def test_implicit_steps_and_other_batch_shapes_run_eagerly():
    system = sl.get_system("pendulum")
    z0 = system.sample(3)
    implicit = sl.discretize(system, "implicit-midpoint", 0.1)
    assert trace_flow(implicit, z0) is implicit  # a data-dependent iteration count is not traceable
    net = GSympNet(n_dof=1, dt=0.1).double()
    traced = trace_flow(net, z0)
    other = system.sample(5)
    assert torch.equal(traced.step(0.0, other), net.step(0.0, other))  # eager fallback for a new shape
    with torch.no_grad():
        assert float((traced.step(0.0, z0) - net.step(0.0, z0)).abs().max()) <= 1e-14


def test_a_batch_shape_is_traced_once_it_has_run_a_few_steps():
    system = sl.get_system("oscillator")
    model = HNN(n_dof=1, width=16).double()
    flow = sl.discretize(model, "rk4", 0.1)
    traced = trace_flow(flow)  # no example: traced lazily, per shape
    z = system.sample(7)
    with torch.inference_mode():
        eager = sl.integrate(flow, z, 100).z
        lazy = sl.integrate(traced, z, 100).z
    assert len(traced._traces) == 1  # the (7, 2) shape, after trace_after steps
    assert float((eager - lazy).abs().max()) <= 1e-13


class SolveField(Dynamics):
    """``q' = p``, ``p' = M(q)^{-1}`` with ``M = q``: checks M before solving, as the LNN does."""

    n_dof = 1

    def vector_field(self, t, z):
        M = z[..., :1, None]
        if bool((M.abs() < 1e-12).any()):
            raise SymplearnError("M(q) is singular at q = 0 (the field is undefined there)")
        acc = torch.linalg.solve(M, torch.ones_like(M))[..., 0]
        return torch.cat([z[..., 1:], acc], -1)


def test_a_traced_step_that_fails_raises_the_eager_steps_error():
    # the trace cannot record the data-dependent check, so at a singular state the replay's solve
    # fails; the traced flow then runs the eager step, which says what is wrong
    z0 = torch.tensor([[1.0, 0.0], [2.0, 0.5]], dtype=torch.float64)
    flow = sl.discretize(SolveField(), "euler", 0.01)
    traced = trace_flow(flow, z0)
    assert isinstance(traced, TracedFlow)
    assert torch.equal(traced.step(0.0, z0), flow.step(0.0, z0))
    bad = torch.tensor([[0.0, 0.0], [2.0, 0.5]], dtype=torch.float64)
    with pytest.raises(SymplearnError, match="singular at q = 0"):
        traced.step(0.0, bad)
