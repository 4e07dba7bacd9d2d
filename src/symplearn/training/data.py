"""What :func:`~symplearn.training.fit` trains on: plain tensors of trajectories, split by
trajectory, plus the conversions the losses need (finite-difference derivatives, canonical
``(q, p)`` data to Lagrangian ``(q, q_dot)`` data).

:class:`TrainingData` depends on nothing but tensors, so ``fit`` works on data from anywhere; a
:class:`symplearn.data.Dataset` (or anything with the same attributes) is converted by
:meth:`TrainingData.from_dataset`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from .._errors import NonFiniteError, SymplearnError

STATE_KINDS = ("canonical", "lagrangian")


def finite_difference(z: Tensor, dt: float, *, dim: int = 0) -> Tensor:
    """Second-order finite-difference time derivative of equally spaced samples.

    Central differences ``(z[i+1] - z[i-1]) / (2 dt)`` inside, the second-order one-sided
    formulas ``(-3 z[0] + 4 z[1] - z[2]) / (2 dt)`` (and its mirror) at the two ends, so the
    error is ``O(dt^2)`` everywhere.

    Args:
        z: samples with time along ``dim`` (at least 3 of them), e.g. ``(T, K, 2n)``.
        dt: the time between samples (> 0).
        dim: the time dimension.

    Returns:
        ``dz/dt`` with the shape of ``z``.

    Raises:
        SymplearnError: fewer than 3 samples, or a non-positive ``dt``.
    """
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise SymplearnError(f"finite differences need a positive time step dt, got {dt!r}")
    z = z.movedim(dim, 0)
    if z.shape[0] < 3:
        raise SymplearnError(
            f"finite differences need at least 3 samples in time, got {z.shape[0]}; "
            f"give the data's derivatives instead"
        )
    inner = (z[2:] - z[:-2]) / (2.0 * dt)
    first = (-3.0 * z[0] + 4.0 * z[1] - z[2]) / (2.0 * dt)
    last = (3.0 * z[-1] - 4.0 * z[-2] + z[-3]) / (2.0 * dt)
    return torch.cat([first[None], inner, last[None]], 0).movedim(0, dim)


def _as_index(idx: Any, n: int, name: str) -> Tensor:
    idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise SymplearnError(
            f"{name} must hold trajectory indices in [0, {n}), got values from "
            f"{int(idx.min())} to {int(idx.max())}"
        )
    return idx


@dataclass(frozen=True)
class TrainingData:
    """Trajectories to train on, split into training and test trajectories.

    Attributes:
        z: states ``(T, K, 2n)``: T equally spaced times of K trajectories. A ``(N, 2n)`` batch
            of unrelated points is taken as ``T = 1`` time of ``N`` "trajectories" (derivative
            and acceleration losses only).
        dt: the time between saved states; needed by rollout losses and finite differences.
        dzdt: time derivatives ``(T, K, 2n)`` (or ``(N, 2n)``), or ``None``: derivative losses
            then use :func:`finite_difference` of ``z`` along time.
        train_idx: indices of the training trajectories (along K); default all of them.
        test_idx: indices of the test trajectories; default none.
        state_kind: ``"canonical"`` for ``z = (q, p)``, ``"lagrangian"`` for ``z = (q, q_dot)``
            with ``dzdt = (q_dot, q_ddot)``.
        system: the ground-truth dynamics the data came from, if known; used only by
            :meth:`to_lagrangian` to compute exact accelerations.
    """

    z: Tensor
    dt: float | None = None
    dzdt: Tensor | None = None
    train_idx: Tensor | None = None
    test_idx: Tensor | None = None
    state_kind: str = "canonical"
    system: Any = None

    def __post_init__(self) -> None:
        z = self.z
        if not isinstance(z, Tensor):
            raise SymplearnError(f"z must be a torch.Tensor, got {type(z).__name__}")
        if z.ndim == 2:
            z = z[None]
        if z.ndim != 3 or z.shape[-1] % 2 or 0 in z.shape:
            raise SymplearnError(
                f"z must have shape (T, K, 2n) (times, trajectories, q's then p's) or (N, 2n), "
                f"got shape {tuple(self.z.shape)}"
            )
        dzdt = self.dzdt
        if dzdt is not None:
            if not isinstance(dzdt, Tensor):
                raise SymplearnError(f"dzdt must be a torch.Tensor or None, got {type(dzdt).__name__}")
            if dzdt.ndim == 2:
                dzdt = dzdt[None]
            if dzdt.shape != z.shape:
                raise SymplearnError(
                    f"dzdt must have the shape of z {tuple(z.shape)}, got {tuple(self.dzdt.shape)}"
                )
        for name, t in (("z", z), ("dzdt", dzdt)):
            if t is not None and not bool(torch.isfinite(t).all()):
                bad = (~torch.isfinite(t)).reshape(-1, t.shape[-1]).any(-1).nonzero()[0, 0]
                time, traj = divmod(int(bad), t.shape[1])
                raise NonFiniteError(
                    f"the training data's {name} contains NaN or infinite values "
                    f"(first at time index {time}, trajectory {traj})"
                )
        if self.dt is not None and not (
            isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0
        ):
            raise SymplearnError(f"dt must be a positive number or None, got {self.dt!r}")
        if self.state_kind not in STATE_KINDS:
            raise SymplearnError(
                f"state_kind must be one of {', '.join(STATE_KINDS)}, got {self.state_kind!r}"
            )
        K = z.shape[1]
        train = torch.arange(K) if self.train_idx is None else _as_index(self.train_idx, K, "train_idx")
        test = (
            torch.zeros(0, dtype=torch.long)
            if self.test_idx is None
            else _as_index(self.test_idx, K, "test_idx")
        )
        if train.numel() == 0:
            raise SymplearnError("the training data has no training trajectories (train_idx is empty)")
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "dzdt", dzdt)
        object.__setattr__(self, "dt", None if self.dt is None else float(self.dt))
        object.__setattr__(self, "train_idx", train)
        object.__setattr__(self, "test_idx", test)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dataset(cls, dataset: Any) -> TrainingData:
        """Take the tensors of a :class:`symplearn.data.Dataset` (or any object with ``t: (T,)``,
        ``z``, ``dzdt`` (may be ``None``), ``train_idx``, ``test_idx`` and optionally a
        ``metadata`` dict naming the system as ``metadata["system"] = {"name": ..., "params":
        {...}}`` or ``metadata["system"] = name`` with ``metadata["params"]``).

        Raises:
            SymplearnError: the times are not equally spaced.
        """
        t_raw = torch.as_tensor(dataset.t)
        t = t_raw.to(torch.float64).reshape(-1)
        dt = None
        if t.numel() >= 2:
            steps = t.diff()
            # the dataset's own dt (exact, from its metadata) when it declares one
            try:
                dt = float(dataset.dt)
            except (AttributeError, SymplearnError, TypeError, ValueError):
                dt = None
            if dt is None or not math.isfinite(dt):
                dt = float((t[-1] - t[0]) / (t.numel() - 1))
            # saved times carry rounding errors of their own dtype, relative to |t| not to dt
            eps = torch.finfo(t_raw.dtype).eps if t_raw.is_floating_point() else 0.0
            slack = 1e-6 * abs(dt) + 8.0 * eps * float(t.abs().max())
            if not (dt > 0 and float((steps - dt).abs().max()) <= slack):
                raise SymplearnError(
                    f"the dataset's times are not equally spaced with step {dt:g} (steps from "
                    f"{float(steps.min()):g} to {float(steps.max()):g}); training needs a fixed "
                    f"time step"
                )
        z = torch.as_tensor(dataset.z)
        dzdt = getattr(dataset, "dzdt", None)
        return cls(
            z=z,
            dt=dt,
            dzdt=None if dzdt is None else torch.as_tensor(dzdt),
            train_idx=torch.as_tensor(dataset.train_idx),
            test_idx=torch.as_tensor(dataset.test_idx),
            system=_system_from_metadata(getattr(dataset, "metadata", None)),
        )

    # -- shape ----------------------------------------------------------------------------
    @property
    def n_dof(self) -> int:
        """Number n of degrees of freedom (states have 2n entries)."""
        return self.z.shape[-1] // 2

    @property
    def n_times(self) -> int:
        """Number T of saved times per trajectory."""
        return self.z.shape[0]

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (shapes, dt, split sizes, state kind, and the ground-truth system's
        name and parameters when known) for run records."""
        info = {
            "n_times": self.n_times,
            "n_trajectories": self.z.shape[1],
            "n_train_trajectories": int(self.train_idx.numel()),
            "n_test_trajectories": int(self.test_idx.numel()),
            "dim": self.z.shape[-1],
            "dt": self.dt,
            "has_derivatives": self.dzdt is not None,
            "state_kind": self.state_kind,
        }
        name = getattr(self.system, "name", None)
        if isinstance(name, str):
            info["system"] = {"name": name, "params": dict(getattr(self.system, "params", {}) or {})}
        return info

    def to(self, *, dtype: torch.dtype | None = None, device: Any = None) -> TrainingData:
        """The same data with its tensors cast to ``dtype`` and moved to ``device``."""
        return replace(
            self,
            z=self.z.to(device=device, dtype=dtype),
            dzdt=None if self.dzdt is None else self.dzdt.to(device=device, dtype=dtype),
        )

    # -- what the losses read -------------------------------------------------------------
    def _index(self, split: str) -> Tensor:
        if split == "train":
            return self.train_idx
        if split == "test":
            return self.test_idx
        raise SymplearnError(f"split must be 'train' or 'test', got {split!r}")

    def states(self, split: str) -> Tensor:
        """States of one split's trajectories, ``(T, K_split, 2n)``."""
        return self.z[:, self._index(split).to(self.z.device)]

    def derivatives(self, split: str) -> Tensor:
        """Time derivatives of one split, ``(T, K_split, 2n)``: the data's own, or second-order
        finite differences of the states when the data has none (needs ``dt`` and T >= 3)."""
        if self.dzdt is not None:
            return self.dzdt[:, self._index(split).to(self.z.device)]
        if self.dt is None:
            raise SymplearnError(
                "the data has neither derivatives (dzdt) nor a time step (dt) to take finite "
                "differences with; give one of them"
            )
        return finite_difference(self.states(split), self.dt)

    # -- canonical -> Lagrangian ----------------------------------------------------------
    def to_lagrangian(self, system: Any = None) -> TrainingData:
        """The same trajectories as Lagrangian data: states ``(q, q_dot)``, derivatives
        ``(q_dot, q_ddot)`` (what an LNN learns from).

        Velocities are ``q_dot = dq/dt``: the data's derivatives when it has them (Hamilton's
        ``dq/dt = dH/dp`` holds for any system, whatever its mass matrix), else finite
        differences of q. Accelerations:

        * with a ground-truth ``system`` (argument or :attr:`system`): exactly, by the chain rule
          ``q_ddot = d/dt v(z) = Dv(z) . dz/dt`` where ``v(z)`` is the q-part of the system's
          vector field (a forward-mode Jacobian-vector product; ``dz/dt`` from the data, else
          from the system);
        * otherwise: second-order finite differences of ``q_dot`` along time (needs ``dt``,
          T >= 3), which works for any system from states alone.

        Returns self unchanged if the data is already Lagrangian.
        """
        if self.state_kind == "lagrangian":
            return self
        system = system if system is not None else self.system
        n = self.n_dof
        q = self.z[..., :n]
        if system is not None:
            zdot = self.dzdt if self.dzdt is not None else system.vector_field(0.0, self.z).detach()

            def velocity(z: Tensor) -> Tensor:
                return system.vector_field(0.0, z)[..., :n]

            try:
                _, qddot = torch.func.jvp(velocity, (self.z,), (zdot,))
            except RuntimeError as err:  # a vector field torch.func cannot differentiate
                raise SymplearnError(
                    f"could not differentiate the vector field of {system!r} to get exact "
                    f"accelerations ({err}); pass system=None to use finite differences"
                ) from err
            qdot = zdot[..., :n]
        else:
            if self.dt is None:
                raise SymplearnError(
                    "accelerations without a ground-truth system are finite differences of the "
                    "velocities along time, so the data needs dt (and T >= 3); or pass the system"
                )
            qdot = self.dzdt[..., :n] if self.dzdt is not None else finite_difference(q, self.dt)
            qddot = finite_difference(qdot, self.dt)
        return replace(
            self,
            z=torch.cat([q, qdot], -1).detach(),
            dzdt=torch.cat([qdot, qddot], -1).detach(),
            state_kind="lagrangian",
            system=system,
        )


def _system_from_metadata(metadata: Any) -> Any:
    """The ground-truth system named by a dataset's metadata, or ``None``."""
    if not isinstance(metadata, dict) or "system" not in metadata:
        return None
    from ..systems import get_system

    entry = metadata["system"]
    if isinstance(entry, dict):
        name, params = entry.get("name"), entry.get("params", {})
    else:
        name, params = entry, metadata.get("params", metadata.get("system_params", {}))
    if not isinstance(name, str):
        return None
    return get_system(name, **(params or {}))


def as_training_data(data: Any) -> TrainingData:
    """``data`` as :class:`TrainingData`: returned as is, or converted from a dataset object
    (see :meth:`TrainingData.from_dataset`).

    Raises:
        SymplearnError: ``data`` is neither.
    """
    if isinstance(data, TrainingData):
        return data
    if all(hasattr(data, a) for a in ("t", "z", "train_idx", "test_idx")):
        return TrainingData.from_dataset(data)
    raise SymplearnError(
        f"fit needs a TrainingData or a symplearn Dataset, got {type(data).__name__}; "
        f"wrap plain tensors as TrainingData(z=..., dt=..., dzdt=...)"
    )
