"""Datasets: trajectories of ground-truth systems, their files, and the view training reads.

* :func:`generate_dataset` samples initial states of a :class:`~symplearn.systems.System`,
  integrates all of them at once with the reference path
  (:func:`~symplearn.integrators.reference_trajectory`: Gauss-Legendre 6 with ``substeps``
  internal steps per saved step, in float64 whatever the requested dtype), and records the exact
  time derivatives ``dz/dt``.
* A :class:`Dataset` is split by trajectory into train and test sets and saved as a ``.npz`` of
  arrays plus a JSON sidecar of its metadata (one schema, written and read here:
  ``{"system": {"name", "params"}, "dt", "seed", ...}``).
* :meth:`Dataset.training_view` gives the :class:`TrainingData` that
  :func:`~symplearn.training.fit` trains on: plain tensors of trajectories plus the conversions
  the losses need (finite-difference derivatives, canonical ``(q, p)`` data to Lagrangian
  ``(q, q_dot)`` data). ``TrainingData`` can also be built directly from tensors.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._errors import NonFiniteError, SymplearnError
from ._files import read_npz, write_json, write_npz
from ._validate import DTYPES, check_float, check_int, check_positive
from ._version import __version__
from .integrators import Integrator, get_integrator, reference_trajectory
from .systems import System, get_system

#: marks the JSON sidecar of a symplearn dataset
FORMAT = "symplearn-dataset"
#: version 2: metadata["system"] = {"name", "params"} (version 1 had "system": name, "params")
FORMAT_VERSION = 2


# -- the metadata schema: written and read here only -----------------------------------------
def system_metadata(system: System) -> dict[str, Any]:
    """The ``"system"`` entry of every symplearn file: ``{"name": ..., "params": {...}}``."""
    return {
        "name": system.name,
        "params": {
            k: float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else v
            for k, v in system.params.items()
        },
    }


def system_from_metadata(metadata: Any, *, where: str = "the metadata") -> System:
    """Rebuild the ground-truth system from ``metadata["system"] = {"name", "params"}``.

    Raises:
        SymplearnError: no ``"system"`` entry, or one that is not a ``{"name": str, "params":
            {str: number}}`` mapping naming a known system and its parameters.
    """
    entry = metadata.get("system") if isinstance(metadata, dict) else None
    if not isinstance(entry, dict):
        raise SymplearnError(
            f'{where} does not name its system: expected "system": {{"name": ..., "params": {{...}}}}, '
            f"got {entry!r}"
        )
    name, params = entry.get("name"), entry.get("params", {})
    if not isinstance(name, str) or not isinstance(params, dict):
        raise SymplearnError(
            f"{where}: 'system' must be {{'name': a system name, 'params': {{name: number}}}}, got {entry!r}"
        )
    return get_any_system(name, **params)


def get_any_system(name: str, **params: float) -> Any:
    """A conservative system (:func:`~symplearn.systems.get_system`) or a damped/forced one
    (:func:`~symplearn.systems.get_port_system`, names and aliases of ``PORT_SYSTEMS``, e.g.
    ``forced-spring``) from its name and parameters.

    Raises:
        SymplearnError: an unknown name (the message lists both registries) or parameter.
    """
    from .systems.dissipative import PORT_ALIASES, PORT_SYSTEMS, get_port_system

    if name in PORT_SYSTEMS or name in PORT_ALIASES:
        return get_port_system(name, **params)
    try:
        return get_system(name, **params)
    except SymplearnError as err:
        if f"unknown system {name!r}" not in str(err):
            raise
        raise SymplearnError(
            f"{err}; damped/forced systems: {', '.join(sorted([*PORT_SYSTEMS, *PORT_ALIASES]))}"
        ) from None


def _migrate_metadata(meta: dict[str, Any], version: int) -> dict[str, Any]:
    """Metadata of an older format version in today's schema."""
    meta = dict(meta)
    if version == 1 and isinstance(meta.get("system"), str):
        meta["system"] = {"name": meta["system"], "params": meta.pop("params", {})}
    return meta


#: the reference integrator used when none is given
DEFAULT_INTEGRATOR = "gauss-legendre-6"
_ARRAYS = ("t", "z", "dzdt", "train_idx", "test_idx")
_SPLITS = ("train", "test", "all")


@dataclass
class Dataset:
    """Trajectories of one system, saved at the same times, split by trajectory.

    Attributes:
        t: saved times ``(T,)``, or ``(T, K)`` when trajectories start at different times
            (trajectory files: :func:`load_trajectories`).
        z: states ``(T, K, 2n)`` (K trajectories; noisy if ``metadata["noise_std"] > 0``).
        dzdt: time derivatives ``(T, K, 2n)``: the exact vector field at the clean states (plus
            independent noise of the same std when noise was asked for).
        train_idx: trajectory indices of the training set ``(K_train,)`` (int64).
        test_idx: trajectory indices of the test set ``(K_test,)``; disjoint from ``train_idx``.
        metadata: how the data was made (system name and parameters, seed, integrator,
            substeps, dt, noise, package version, ...).

    Raises:
        SymplearnError: inconsistent shapes, dtypes (t, z and dzdt share one float dtype) or
            indices.
        NonFiniteError: NaN or infinite values in t, z or dzdt.
    """

    t: Tensor
    z: Tensor
    dzdt: Tensor
    train_idx: Tensor
    test_idx: Tensor
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_consistent(self.t, self.z, self.dzdt, self.train_idx, self.test_idx)

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def n_traj(self) -> int:
        """Number K of trajectories."""
        return self.z.shape[1]

    @property
    def n_times(self) -> int:
        """Number T of saved times per trajectory."""
        return self.z.shape[0]

    @property
    def dim(self) -> int:
        """Phase-space dimension 2n."""
        return self.z.shape[-1]

    @property
    def dt(self) -> float:
        """Time between saved states."""
        if "dt" in self.metadata:
            return float(self.metadata["dt"])
        if self.n_times < 2:
            raise SymplearnError("a dataset with one saved time has no time step")
        return float((self.t[1] - self.t[0]).reshape(-1)[0])

    def system(self) -> System:
        """Rebuild the ground-truth system from the metadata (name and parameters).

        Raises:
            SymplearnError: the metadata names no system (a user's trajectory file, see
                :meth:`has_system`) or an unknown one.
        """
        return system_from_metadata(self.metadata, where="this dataset's metadata")

    def has_system(self) -> bool:
        """Whether the metadata names the ground-truth system (a user's trajectory file does not)."""
        return isinstance(self.metadata, dict) and "system" in self.metadata

    def training_view(self) -> TrainingData:
        """The tensors :func:`~symplearn.training.fit` trains on, with the ground-truth system
        (for exact Lagrangian accelerations) rebuilt from the metadata when it names one."""
        return TrainingData.from_dataset(self)

    # -- views for training -----------------------------------------------------------------------
    def _idx(self, split: str) -> Tensor:
        if split == "train":
            return self.train_idx
        if split == "test":
            return self.test_idx
        if split == "all":
            return torch.arange(self.n_traj)
        raise SymplearnError(f"unknown split {split!r}; valid splits: {', '.join(_SPLITS)}")

    def trajectories(self, split: str = "train") -> Tensor:
        """The trajectories of a split, ``(T, K_split, 2n)``. split: "train", "test" or "all"."""
        return self.z[:, self._idx(split)]

    def points(self, split: str = "train") -> tuple[Tensor, Tensor]:
        """All (state, derivative) samples of a split, for derivative losses (HNN, MLP).

        Args:
            split: "train", "test" or "all".

        Returns:
            ``(z, dzdt)``, each ``(N, 2n)`` with ``N = T * K_split`` (time-major order).
        """
        idx = self._idx(split)
        return self.z[:, idx].reshape(-1, self.dim), self.dzdt[:, idx].reshape(-1, self.dim)

    def pairs(self, k: int = 1, split: str = "train") -> tuple[Tensor, Tensor]:
        """All pairs ``(z_t, z_{t+k})`` of a split, for flow-map losses (SympNet).

        Args:
            k: number of saved steps between the two states (time ``k * dt``), ``1 <= k < T``.
            split: "train", "test" or "all".

        Returns:
            ``(z_now, z_later)``, each ``(N, 2n)`` with ``N = (T - k) * K_split``.

        Raises:
            SymplearnError: ``k`` outside ``[1, T - 1]`` or an unknown split.
        """
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < self.n_times:
            raise SymplearnError(
                f"k must be an integer in [1, {self.n_times - 1}] (the dataset has "
                f"{self.n_times} saved times), got {k!r}"
            )
        zs = self.trajectories(split)
        return zs[:-k].reshape(-1, self.dim), zs[k:].reshape(-1, self.dim)

    # -- files ------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the arrays to ``path`` (``.npz``) and the metadata to ``path.with_suffix('.json')``.

        Both files are written atomically. Returns the ``.npz`` path.

        Raises:
            SymplearnError: ``path`` does not end in ``.npz``.
        """
        path = Path(path)
        if path.suffix != ".npz":
            raise SymplearnError(f"a dataset is saved as a .npz file, got {str(path)!r}")
        arrays = {
            "t": self.t.detach().cpu().numpy(),
            "z": self.z.detach().cpu().numpy(),
            "dzdt": self.dzdt.detach().cpu().numpy(),
            "train_idx": self.train_idx.cpu().numpy(),
            "test_idx": self.test_idx.cpu().numpy(),
        }
        sidecar = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            "metadata": self.metadata,
        }
        write_npz(path, **arrays)
        write_json(path.with_suffix(".json"), sidecar)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Dataset:
        """Read a dataset written by :meth:`save` (no pickled objects are ever loaded).

        Args:
            path: the ``.npz`` file; its sidecar ``path.with_suffix('.json')`` must exist.

        Returns:
            The :class:`Dataset`, with the arrays exactly as saved.

        Raises:
            SymplearnError: a missing file, a file that is not a symplearn dataset (not an
                ``.npz``, corrupted, pickled object arrays, missing arrays, no or foreign
                sidecar, a sidecar that does not describe these arrays), or inconsistent shapes.
        """
        path = Path(path)
        side = path.with_suffix(".json")
        if path.suffix != ".npz":
            raise SymplearnError(f"a dataset is a .npz file (with a .json sidecar), got {str(path)!r}")
        for f in (path, side):
            if not f.is_file():
                raise SymplearnError(f"cannot load dataset {str(path)!r}: {str(f)!r} does not exist")
        try:
            with open(side, encoding="utf-8") as fh:
                meta = json.load(fh)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SymplearnError(
                f"{str(side)!r} is not the JSON sidecar of a symplearn dataset: {err}"
            ) from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise SymplearnError(
                f'{str(side)!r} is not the sidecar of a symplearn dataset (no "format": "{FORMAT}" entry)'
            )
        version = meta.get("format_version")
        if version == 1:
            if isinstance(meta.get("metadata", {}), dict):  # (else refused by the schema below)
                meta["metadata"] = _migrate_metadata(meta.get("metadata", {}), 1)
        elif version != FORMAT_VERSION:
            raise SymplearnError(
                f"{str(path)!r} has dataset format version {meta.get('format_version')!r}; this "
                f"symplearn ({__version__}) reads versions 1 and {FORMAT_VERSION}"
            )
        from .schemas import check_dataset_sidecar

        check_dataset_sidecar(meta, str(side))
        try:
            arrays = read_npz(path)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as err:
            # ValueError includes numpy's refusal of pickled object arrays (allow_pickle=False)
            raise SymplearnError(f"{str(path)!r} is not a readable .npz dataset: {err}") from None
        missing = [k for k in _ARRAYS if k not in arrays]
        if missing:
            raise SymplearnError(
                f"{str(path)!r} is not a symplearn dataset: missing arrays {', '.join(missing)} "
                f"(expected {', '.join(_ARRAYS)})"
            )
        declared = meta.get("arrays")
        if not isinstance(declared, dict):
            raise SymplearnError(f"{str(side)!r} does not describe the arrays of the dataset")
        for k in _ARRAYS:
            want = declared.get(k)
            got = {"shape": list(arrays[k].shape), "dtype": str(arrays[k].dtype)}
            if want != got:
                raise SymplearnError(
                    f"{str(path)!r} does not match its sidecar {str(side)!r}: array {k} is "
                    f"{got}, the sidecar says {want} (was one of the two files replaced?)"
                )
        for k in ("t", "z", "dzdt"):
            if arrays[k].dtype not in (np.float32, np.float64):
                raise SymplearnError(
                    f"{str(path)!r}: array {k} has dtype {arrays[k].dtype}, expected float32/64"
                )
        for k in ("train_idx", "test_idx"):
            if arrays[k].dtype.kind not in "iu":
                raise SymplearnError(
                    f"{str(path)!r}: array {k} has dtype {arrays[k].dtype}, expected integers"
                )
        try:
            return cls(
                t=torch.from_numpy(arrays["t"]),
                z=torch.from_numpy(arrays["z"]),
                dzdt=torch.from_numpy(arrays["dzdt"]),
                train_idx=torch.from_numpy(arrays["train_idx"].astype(np.int64)),
                test_idx=torch.from_numpy(arrays["test_idx"].astype(np.int64)),
                metadata=dict(meta.get("metadata", {})),
            )
        except SymplearnError as err:
            raise SymplearnError(f"{str(path)!r} is not a valid symplearn dataset: {err}") from None


def _check_consistent(t, z, dzdt, train_idx, test_idx) -> None:
    for name, x in (("t", t), ("z", z), ("dzdt", dzdt), ("train_idx", train_idx), ("test_idx", test_idx)):
        if not isinstance(x, Tensor):
            raise SymplearnError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if z.ndim != 3 or z.shape[-1] % 2 or z.shape[-1] == 0:
        raise SymplearnError(f"z must have shape (T, K, 2n), got {tuple(z.shape)}")
    if z.dtype not in DTYPES.values() or dzdt.dtype != z.dtype or t.dtype != z.dtype:
        raise SymplearnError(
            f"t, z and dzdt must share one dtype, float32 or float64; got {t.dtype}, {z.dtype}, {dzdt.dtype}"
        )
    for name, x in (("t", t), ("z", z), ("dzdt", dzdt)):
        if not bool(torch.isfinite(x).all()):
            raise NonFiniteError(f"{name} contains NaN or infinite values")
    if tuple(t.shape) not in ((z.shape[0],), tuple(z.shape[:2])):
        raise SymplearnError(
            f"t must have shape (T,) = ({z.shape[0]},) or (T, K) = {tuple(z.shape[:2])}, got {tuple(t.shape)}"
        )
    if dzdt.shape != z.shape:
        raise SymplearnError(f"dzdt must have the shape of z {tuple(z.shape)}, got {tuple(dzdt.shape)}")
    K = z.shape[1]
    for name, idx in (("train_idx", train_idx), ("test_idx", test_idx)):
        if idx.ndim != 1 or idx.dtype != torch.int64:
            raise SymplearnError(f"{name} must be a 1-d int64 tensor, got {idx.dtype} {tuple(idx.shape)}")
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= K):
            raise SymplearnError(f"{name} has trajectory indices outside [0, {K - 1}]")
        if len(torch.unique(idx)) != len(idx):
            raise SymplearnError(f"{name} repeats trajectory indices")
    if len(np.intersect1d(train_idx.cpu().numpy(), test_idx.cpu().numpy())):
        raise SymplearnError("train_idx and test_idx share trajectories; the split must be by trajectory")


def _derived_seeds(seed: int) -> tuple[int, int, int]:
    """Independent seeds for sampling, splitting and noise, all from the one user seed."""
    s = np.random.SeedSequence(int(seed)).generate_state(3)
    return int(s[0]), int(s[1]), int(s[2])


def generate_dataset(
    system: System | str,
    *,
    n_traj: int,
    dt: float,
    n_steps: int,
    integrator: Integrator | str | None = None,
    substeps: int = 10,
    noise_std: float = 0.0,
    test_fraction: float = 0.2,
    energy_range: tuple[float, float] | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Dataset:
    """Sample initial states and integrate them all at once with a reference integrator.

    Initial states come from ``system.sample(n_traj, energy_range=..., seed=...)``. Each
    saved step of size ``dt`` is made of ``substeps`` steps of the reference integrator
    (default ``gauss-legendre-6``: order 6, symplectic, works for non-separable systems), always
    in float64; the results are then cast to ``dtype``. ``dzdt`` is the analytic vector field at
    the clean states. With ``noise_std > 0``, independent Gaussian noise of that (absolute) std
    is added to ``z`` and to ``dzdt`` (all splits). The split is by trajectory:
    ``round(test_fraction * n_traj)`` trajectories (at least one when ``test_fraction > 0``)
    go to the test set. The sampling, the split and the noise use three independent generators
    derived from ``seed``, so the same arguments always give the same dataset.

    Args:
        system: a :class:`~symplearn.systems.System` or its name.
        n_traj: number K of trajectories (> 0).
        dt: time between saved states (> 0).
        n_steps: number of saved steps; ``T = n_steps + 1`` states per trajectory.
        integrator: the reference integrator (instance or name); ``None``: gauss-legendre-6.
        substeps: integrator steps per saved step (step size ``dt / substeps``).
        noise_std: std of the additive Gaussian noise (>= 0).
        test_fraction: fraction of trajectories held out, in ``[0, 1)``.
        energy_range: ``(low, high)`` of the initial energies; ``None``: the system's default.
        seed: the one seed of the dataset.
        dtype: ``torch.float64`` or ``torch.float32``.

    Returns:
        A :class:`Dataset` with ``t: (T,)``, ``z, dzdt: (T, K, 2n)``.

    Raises:
        SymplearnError: invalid arguments (the message says which and what would work).
        ConvergenceError: the implicit reference integrator did not converge (try a smaller dt
            or more substeps).
        NonFiniteError: the integration blew up.
    """
    from .systems.dissipative import PortHamiltonianDynamics

    if isinstance(system, str):
        system = get_any_system(system)
    if not isinstance(system, System) and not (
        isinstance(system, PortHamiltonianDynamics) and hasattr(system, "sample")
    ):
        raise SymplearnError(
            f"system must be a symplearn System or a system name, got {type(system).__name__}"
        )
    n_traj = check_int("n_traj", n_traj)
    n_steps = check_int("n_steps", n_steps)
    substeps = check_int("substeps", substeps)
    dt = check_positive("dt", dt)
    noise_std = check_float("noise_std", noise_std, nonnegative=True)
    test_fraction = check_float("test_fraction", test_fraction, nonnegative=True)
    if test_fraction >= 1:
        raise SymplearnError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if dtype not in DTYPES.values():
        raise SymplearnError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
    seed = check_int("seed", seed, minimum=0)
    if integrator is None:
        integrator = get_integrator(DEFAULT_INTEGRATOR)
    elif isinstance(integrator, str):
        integrator = get_integrator(integrator)
    n_test = round(test_fraction * n_traj)
    if test_fraction > 0:
        n_test = max(n_test, 1)
    if n_traj - n_test < 1:
        raise SymplearnError(
            f"test_fraction={test_fraction:g} of n_traj={n_traj} leaves no training trajectory; "
            f"use more trajectories or a smaller test_fraction"
        )

    seed_sample, seed_split, seed_noise = _derived_seeds(seed)
    lo_hi = system._energy_range(energy_range)
    z0 = system.sample(n_traj, energy_range=energy_range, seed=seed_sample, dtype=torch.float64)
    traj = reference_trajectory(system, z0, dt, n_steps, substeps=substeps, integrator=integrator)
    z = traj.z.detach()
    t = torch.arange(n_steps + 1, dtype=torch.float64) * dt
    with torch.no_grad():
        dzdt = system.vector_field(t[:, None], z)
    if noise_std > 0:
        gen = torch.Generator().manual_seed(seed_noise)
        z = z + noise_std * torch.randn(z.shape, generator=gen, dtype=torch.float64)
        dzdt = dzdt + noise_std * torch.randn(dzdt.shape, generator=gen, dtype=torch.float64)
    perm = torch.randperm(n_traj, generator=torch.Generator().manual_seed(seed_split))
    test_idx, train_idx = perm[:n_test].sort().values, perm[n_test:].sort().values

    metadata = {
        "system": system_metadata(system),
        "n_dof": system.n_dof,
        "n_traj": n_traj,
        "n_steps": n_steps,
        "dt": float(dt),
        "integrator": integrator.name,
        "substeps": substeps,
        "noise_std": float(noise_std),
        "test_fraction": float(test_fraction),
        "energy_range": [float(lo_hi[0]), float(lo_hi[1])],
        "seed": int(seed),
        "dtype": str(dtype).removeprefix("torch."),
        "symplearn_version": __version__,
    }
    return Dataset(
        t=t.to(dtype),
        z=z.to(dtype),
        dzdt=dzdt.to(dtype),
        train_idx=train_idx,
        test_idx=test_idx,
        metadata=metadata,
    )


# -- the view that training reads ------------------------------------------------------------
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
        t: the time of every state, ``(T, K)`` (given as ``(T,)`` when all trajectories share
            their times, or ``(N,)`` for a ``(N, 2n)`` batch of points), or ``None`` for t = 0
            everywhere. Every loss of :func:`~symplearn.training.fit` evaluates the model's
            field at these times (derivative and acceleration losses at each sample's time, a
            rollout from each window's first time), so time-dependent models (forced systems,
            PHNN) train through ``fit``; autonomous models ignore them.
    """

    z: Tensor
    dt: float | None = None
    dzdt: Tensor | None = None
    train_idx: Tensor | None = None
    test_idx: Tensor | None = None
    state_kind: str = "canonical"
    system: Any = None
    t: Tensor | None = None

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
        t = self.t
        if t is not None:
            t = _times_like(t, z)
        if self.dt is not None:
            check_positive("dt", self.dt)
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
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "dt", None if self.dt is None else float(self.dt))
        object.__setattr__(self, "train_idx", train)
        object.__setattr__(self, "test_idx", test)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dataset(cls, dataset: Any) -> TrainingData:
        """Take the tensors of a :class:`symplearn.data.Dataset` (or any object with ``t: (T,)``,
        ``z``, ``dzdt`` (may be ``None``), ``train_idx``, ``test_idx`` and optionally a
        ``metadata`` dict naming the system as ``metadata["system"] = {"name": ..., "params":
        {...}}``, see :func:`system_from_metadata`).

        The dataset's times ``t`` (``(T,)``, or ``(T, K)`` for trajectories that start at
        different times) become :attr:`t`; a ``metadata["state_kind"]`` of ``"lagrangian"``
        (a trajectory file of ``q, qdot``) becomes :attr:`state_kind`.

        Raises:
            SymplearnError: the times are not equally spaced.
        """
        t_raw = torch.as_tensor(dataset.t)
        t = t_raw.to(torch.float64)
        t = t.reshape(-1) if t.ndim <= 1 else t
        dt = None
        if t.shape[0] >= 2:
            steps = t.diff(dim=0)
            # the dataset's own dt (exact, from its metadata) when it declares one
            try:
                dt = float(dataset.dt)
            except (AttributeError, SymplearnError, TypeError, ValueError):
                dt = None
            if dt is None or not math.isfinite(dt):
                dt = float((t[-1] - t[0]).reshape(-1)[0] / (t.shape[0] - 1))
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
        meta = getattr(dataset, "metadata", None)
        kind = meta.get("state_kind", "canonical") if isinstance(meta, dict) else "canonical"
        return cls(
            z=z,
            dt=dt,
            dzdt=None if dzdt is None else torch.as_tensor(dzdt),
            train_idx=torch.as_tensor(dataset.train_idx),
            test_idx=torch.as_tensor(dataset.test_idx),
            state_kind=kind,
            system=_system_or_none(meta),
            t=t_raw if z.ndim == 3 else None,
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
            t=None if self.t is None else self.t.to(device=device, dtype=dtype),
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

    def times(self, split: str) -> Tensor | None:
        """Times of one split's states, ``(T, K_split)``, or ``None`` (t = 0 everywhere)."""
        if self.t is None:
            return None
        return self.t[:, self._index(split).to(self.t.device)]

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
            t = 0.0 if self.t is None else self.t
            zdot = self.dzdt if self.dzdt is not None else system.vector_field(t, self.z).detach()

            def velocity(z: Tensor) -> Tensor:
                return system.vector_field(t, z)[..., :n]

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


def _times_like(t: Any, z: Tensor) -> Tensor:
    """The times ``t`` of the states ``z (T, K, 2n)`` as a ``(T, K)`` tensor of z's dtype.

    Raises:
        SymplearnError: a shape that is neither ``(T,)``, ``(T, K)`` nor (for ``T = 1``) ``(K,)``,
            or non-finite times.
    """
    if not isinstance(t, Tensor):
        raise SymplearnError(f"t must be a torch.Tensor or None, got {type(t).__name__}")
    T, K = z.shape[:2]
    if t.ndim == 1 and t.shape[0] == T:
        t = t[:, None].expand(T, K)
    elif t.ndim == 1 and T == 1 and t.shape[0] == K:
        t = t[None]
    elif tuple(t.shape) != (T, K):
        raise SymplearnError(
            f"t must have shape (T,) = ({T},) or (T, K) = ({T}, {K}) for states of shape "
            f"{tuple(z.shape)}, got {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise NonFiniteError("the training data's times t contain NaN or infinite values")
    dtype = z.dtype if z.is_floating_point() else torch.float64
    return t.to(dtype=dtype, device=z.device)


def _system_or_none(metadata: Any) -> System | None:
    """The system a dataset's metadata names, or ``None`` when it names none."""
    if not isinstance(metadata, dict) or "system" not in metadata:
        return None
    return system_from_metadata(metadata)


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


# -- a user's trajectory files ---------------------------------------------------------------
#: the arrays (``.npz``) a trajectory file may hold; CSV columns: ``t``, ``traj``, ``q1..qn``
#: (or ``q`` for one degree of freedom), ``p1..pn`` or ``qdot1..qdotn``
TRAJECTORY_ARRAYS = ("t", "z", "q", "p", "qdot", "dzdt")
#: how far the steps of one trajectory may differ from their mean, relative to it (times written
#: with few digits); within it the times are taken as ``t0 + k dt`` exactly
TIME_STEP_TOLERANCE = 1e-3
_SEE_DOCS = "see docs/your_data.md"


def load_trajectories(
    path: str | os.PathLike,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Dataset:
    """Read a user's trajectory file (``.npz`` or ``.csv``) as a :class:`Dataset` with no system.

    ``.npz`` arrays (read with ``allow_pickle=False``; any other array is refused):

    * ``t``: times, ``(T,)`` (shared by all trajectories) or ``(n_traj, T)``;
    * the states, one of: ``z`` ``(n_traj, T, 2n)`` (q's then p's); ``q`` and ``p``
      ``(n_traj, T, n)``; ``q`` and ``qdot`` ``(n_traj, T, n)`` (Lagrangian data: only LNNs train
      on it). A single trajectory may drop the first axis (``z (T, 2n)``, ``q (T, n)``), and
      ``q (T,)`` is one degree of freedom;
    * ``dzdt`` (optional): the time derivatives of the states, the shape of ``z`` (of ``(q, qdot)``:
      ``(qdot, qddot)``).

    ``.csv``: a header row naming the columns ``t``, ``q1 .. qn`` (``q`` when n = 1), then
    ``p1 .. pn`` or ``qdot1 .. qdotn``, and optionally ``traj`` (a label per row: rows with the
    same label are one trajectory, in the file's order; without it the file is one trajectory).

    Times must increase along each trajectory with one fixed step ``dt`` (to within
    :data:`TIME_STEP_TOLERANCE` of it; trajectories may start at different times, and all of them
    need the same number of times). Without ``dzdt`` the derivatives are second-order finite
    differences of the states (:func:`finite_difference`: central inside, one-sided at the ends,
    error ``O(dt^2)``). The split is by trajectory: ``round(test_fraction * n_traj)`` (at least
    one) held out when there are two or more, none for a single trajectory.

    Args:
        path: the file.
        test_fraction: share of trajectories held out, in ``[0, 1)``.
        seed: seed of the split.
        dtype: ``torch.float64`` or ``torch.float32``.

    Returns:
        A :class:`Dataset`: ``t (T,)`` (or ``(T, n_traj)`` for different start times), ``z``,
        ``dzdt (T, n_traj, 2n)``, ``metadata`` without ``"system"`` (``source``, ``file``,
        ``file_sha256``, ``state_kind``, ``dt``, ``derivatives``, ...).

    Raises:
        SymplearnError: one line naming what is missing or wrong: a missing file or another
            extension, no ``t``, no states or an ambiguous set of arrays, unknown arrays or
            columns, shapes that do not match, an odd number of state coordinates, a ``p`` (or
            ``qdot``) column without its ``q`` (or the reverse), NaN or infinite values, times
            that do not increase or are not equally spaced, too few times.
    """
    import hashlib

    path = Path(path)
    test_fraction = check_float("test_fraction", test_fraction, nonnegative=True)
    if test_fraction >= 1:
        raise SymplearnError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    seed = check_int("seed", seed, minimum=0)
    if dtype not in DTYPES.values():
        raise SymplearnError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise SymplearnError(
            f"{str(path)!r}: a trajectory file is a .npz or a .csv file, got "
            f"{path.suffix or 'no extension'!r} ({_SEE_DOCS})"
        )
    if not path.is_file():
        raise SymplearnError(f"cannot read trajectories: {str(path)!r} does not exist")
    where = str(path)
    if suffix == ".npz":
        try:
            raw = read_npz(path)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise SymplearnError(f"{where!r} is not a readable .npz file: {err}") from None
        t, z, dzdt, kind = _assemble_npz(raw, where)
    else:
        t, z, dzdt, kind = _read_trajectory_csv(path)
    K, T, d = z.shape
    t, dt = _regular_times(t, K, where)
    if dzdt is None:
        if T < 3:
            raise SymplearnError(
                f"{where}: {T} times per trajectory; derivatives by finite differences need at "
                f"least 3 (or give dzdt)"
            )
        dzdt = finite_difference(torch.from_numpy(z), dt, dim=1).numpy()
        how = "second-order finite differences of the states (central inside, one-sided at the ends)"
    else:
        how = "given (dzdt)"
    n_test = 0 if K == 1 else max(1, round(test_fraction * K)) if test_fraction > 0 else 0
    if K > 1 and n_test >= K:
        n_test = K - 1
    perm = torch.randperm(K, generator=torch.Generator().manual_seed(_derived_seeds(seed)[1]))
    test_idx, train_idx = perm[:n_test].sort().values, perm[n_test:].sort().values
    shared = bool(np.all(t == t[:1]))
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    metadata = {
        "source": "trajectory file",
        "file": str(path.resolve()),
        "file_sha256": digest,
        "file_format": suffix[1:],
        "state_kind": kind,
        "n_dof": d // 2,
        "n_traj": K,
        "n_steps": T - 1,
        "dt": float(dt),
        "t_start": [float(x) for x in t[:, 0]] if not shared else float(t[0, 0]),
        "derivatives": how,
        "test_fraction": float(test_fraction),
        "seed": int(seed),
        "dtype": str(dtype).removeprefix("torch."),
        "symplearn_version": __version__,
    }
    times = torch.from_numpy(t[0] if shared else t.T.copy())
    return Dataset(
        t=times.to(dtype),
        z=torch.from_numpy(np.ascontiguousarray(z.transpose(1, 0, 2))).to(dtype),
        dzdt=torch.from_numpy(np.ascontiguousarray(dzdt.transpose(1, 0, 2))).to(dtype),
        train_idx=train_idx,
        test_idx=test_idx,
        metadata=metadata,
    )


def is_trajectory_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is to be read by :func:`load_trajectories`: anything but a ``.npz`` (a
    ``.csv``; other extensions are refused there), or a ``.npz`` that is not a symplearn dataset
    (no JSON sidecar and no ``train_idx`` array)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":  # (load_trajectories names the two extensions it reads)
        return True
    if path.suffix.lower() != ".npz" or path.with_suffix(".json").is_file():
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n.removesuffix(".npy") for n in zf.namelist()}
    except (OSError, zipfile.BadZipFile):
        return False
    return "train_idx" not in names


def load_training_file(path: str | os.PathLike, *, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """The data of ``symplearn train --data FILE``: a symplearn dataset (:meth:`Dataset.load`,
    a ``.npz`` with its ``.json`` sidecar) or a user's trajectory file
    (:func:`load_trajectories`, split with ``seed``)."""
    if is_trajectory_file(path):
        return load_trajectories(path, seed=seed, test_fraction=test_fraction)
    return Dataset.load(path)


def _numeric(raw: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    unknown = sorted(set(raw) - set(TRAJECTORY_ARRAYS))
    if unknown:
        raise SymplearnError(
            f"{where}: unknown array(s) {', '.join(unknown)}; a trajectory file holds t and z, "
            f"or q and p, or q and qdot, and optionally dzdt ({_SEE_DOCS})"
        )
    out = {}
    for k, v in raw.items():
        if v.dtype.kind not in "fiu":
            raise SymplearnError(f"{where}: array {k} has dtype {v.dtype}; expected numbers")
        v = v.astype(np.float64)
        bad = ~np.isfinite(v)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise SymplearnError(f"{where}: array {k} has NaN or infinite values (first at index {first})")
        out[k] = v
    return out


def _assemble_npz(raw: dict[str, np.ndarray], where: str):
    """``t (K, T) or (T,)``, ``z (K, T, 2n)``, ``dzdt`` or ``None``, state kind."""
    a = _numeric(raw, where)
    if "t" not in a:
        raise SymplearnError(f"{where}: no array t (the times, shape (T,) or (n_traj, T)) ({_SEE_DOCS})")
    t = a["t"]
    if t.ndim not in (1, 2):
        raise SymplearnError(f"{where}: t must have shape (T,) or (n_traj, T), got {t.shape}")
    has = {k for k in ("z", "q", "p", "qdot") if k in a}
    if has == {"z"}:
        z, kind = a["z"], "canonical"
        if z.ndim == 2:
            z = z[None]
        if z.ndim != 3 or z.shape[-1] == 0:
            raise SymplearnError(f"{where}: z must have shape (n_traj, T, 2n) or (T, 2n), got {a['z'].shape}")
        if z.shape[-1] % 2:
            raise SymplearnError(
                f"{where}: z has an odd number of coordinates ({z.shape[-1]}); states are q1..qn "
                f"then p1..pn (2n coordinates)"
            )
    elif has in ({"q", "p"}, {"q", "qdot"}):
        other = "p" if "p" in has else "qdot"
        kind = "canonical" if other == "p" else "lagrangian"
        q, v = a["q"], a[other]
        if q.shape != v.shape:
            raise SymplearnError(f"{where}: q has shape {q.shape} but {other} has shape {v.shape}")

        def per_traj(x):
            if x.ndim == 1:  # one trajectory of one degree of freedom
                return x[None, :, None]
            if x.ndim == 2 and t.ndim == 2 and x.shape == t.shape:  # (n_traj, T), one degree of freedom
                return x[..., None]
            if x.ndim == 2:
                return x[None]
            if x.ndim == 3:
                return x
            raise SymplearnError(f"{where}: q must have shape (n_traj, T, n), (T, n) or (T,), got {q.shape}")

        z = np.concatenate([per_traj(q), per_traj(v)], -1)
    elif not has:
        raise SymplearnError(
            f"{where}: no states: give z (n_traj, T, 2n), or q and p, or q and qdot ({_SEE_DOCS})"
        )
    elif "z" in has:
        raise SymplearnError(
            f"{where}: give the states once: z, or q with p (or qdot); the file has {', '.join(sorted(has))}"
        )
    elif has == {"p", "qdot"} or has == {"q", "p", "qdot"}:
        raise SymplearnError(f"{where}: give q with either p or qdot, not both ({', '.join(sorted(has))})")
    else:
        missing = "q" if "q" not in has else "p (or qdot)"
        raise SymplearnError(f"{where}: {', '.join(sorted(has))} without {missing}: the states need both")
    K, T = z.shape[:2]
    if t.shape[-1] != T or (t.ndim == 2 and t.shape[0] != K):
        want = f"({T},) or ({K}, {T})"
        raise SymplearnError(
            f"{where}: t has shape {t.shape} but the states have {K} trajectory(ies) of {T} times: "
            f"t must have shape {want}"
        )
    dzdt = a.get("dzdt")
    if dzdt is not None:
        dzdt = dzdt[None] if dzdt.ndim == 2 else dzdt
        if dzdt.shape != z.shape:
            raise SymplearnError(f"{where}: dzdt has shape {a['dzdt'].shape}, the states {z.shape}")
    return t, z, dzdt, kind


def _read_trajectory_csv(path: Path):
    import csv

    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise SymplearnError(f"{where} is not a readable CSV file: {err}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise SymplearnError(f"{where} is empty: expected a header (t, q1.., p1..) and rows of numbers")
    header = [c.strip().lower() for c in rows[0]]
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise SymplearnError(f"{where}: column(s) {', '.join(dup)} appear more than once in the header")
    cols: dict[str, dict[int, int]] = {"q": {}, "p": {}, "qdot": {}}
    unknown = []
    import re

    for j, name in enumerate(header):
        m = re.fullmatch(r"(qdot|q|p)(\d*)", name)
        if name in ("t", "traj"):
            continue
        if m is None or m.group(2).startswith("0"):
            unknown.append(name or f"(empty, column {j + 1})")
            continue
        cols[m.group(1)][int(m.group(2) or 1)] = j
    if "t" not in header:
        raise SymplearnError(f"{where}: no t column (the header is {', '.join(header)}) ({_SEE_DOCS})")
    if unknown:
        raise SymplearnError(
            f"{where}: unknown column(s) {', '.join(unknown)}; the header names t, q1..qn, then "
            f"p1..pn or qdot1..qdotn, and optionally traj ({_SEE_DOCS})"
        )
    if cols["p"] and cols["qdot"]:
        raise SymplearnError(f"{where}: give p1..pn or qdot1..qdotn columns, not both")
    other = "qdot" if cols["qdot"] else "p"
    nq, nv = sorted(cols["q"]), sorted(cols[other])
    if not nq or not nv:
        raise SymplearnError(
            f"{where}: the states need q1..qn and p1..pn (or qdot1..qdotn) columns; the header has "
            f"{', '.join(header)}"
        )
    n = len(nq)
    if nq != list(range(1, n + 1)) or nv != nq:
        names = [f"q{i}" for i in nq] + [f"{other}{i}" for i in nv]
        raise SymplearnError(
            f"{where}: {len(names)} state columns ({', '.join(names)}); every q_i needs its "
            f"{other}_i, numbered from 1: q1..qn, {other}1..{other}n"
        )
    order = [cols["q"][i] for i in nq] + [cols[other][i] for i in nv]
    jt = header.index("t")
    jk = header.index("traj") if "traj" in header else None
    groups: dict[str, list[list[float]]] = {}
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise SymplearnError(
                f"{where}, line {r}: {len(row)} values, the header names {len(header)} columns"
            )
        vals = []
        for j in [jt, *order]:
            cell = row[j].strip()
            try:
                x = float(cell)
            except ValueError:
                raise SymplearnError(
                    f"{where}, line {r}, column {header[j]}: {cell!r} is not a number"
                ) from None
            if not math.isfinite(x):
                raise SymplearnError(f"{where}, line {r}, column {header[j]}: {cell} (NaN or infinite)")
            vals.append(x)
        groups.setdefault(row[jk].strip() if jk is not None else "", []).append(vals)
    if not groups:
        raise SymplearnError(f"{where}: a header but no rows of numbers")
    lengths = {k: len(v) for k, v in groups.items()}
    if len(set(lengths.values())) > 1:
        short = sorted(lengths.items(), key=lambda kv: kv[1])
        raise SymplearnError(
            f"{where}: the trajectories have different numbers of rows ({short[0][1]} for traj "
            f"{short[0][0]!r}, {short[-1][1]} for traj {short[-1][0]!r}); training needs the same number"
        )
    data = np.array(list(groups.values()), dtype=np.float64)  # (K, T, 1 + 2n)
    return data[..., 0], data[..., 1:], None, "lagrangian" if other == "qdot" else "canonical"


def _regular_times(t: np.ndarray, K: int, where: str) -> tuple[np.ndarray, float]:
    """Times ``(K, T)`` checked to increase with one fixed step, returned as ``t0 + k dt``."""
    t = np.broadcast_to(t, (K, t.shape[-1])) if t.ndim == 1 else t
    T = t.shape[1]
    if T < 2:
        raise SymplearnError(f"{where}: each trajectory needs at least 2 times, got {T}")
    steps = np.diff(t, axis=1)
    bad = np.argwhere(steps <= 0)
    if len(bad):
        k, i = (int(x) for x in bad[0])
        raise SymplearnError(
            f"{where}: the times of trajectory {k} do not increase (t = {t[k, i + 1]:g} after "
            f"{t[k, i]:g}, time index {i + 1}); sort the rows by time"
        )
    dts = (t[:, -1] - t[:, 0]) / (T - 1)
    dt = float(dts.mean())
    dev = np.abs(steps - dt).max(1) / dt
    if dev.max() > TIME_STEP_TOLERANCE:
        k = int(dev.argmax())
        raise SymplearnError(
            f"{where}: the times of trajectory {k} are not equally spaced (steps from "
            f"{steps[k].min():g} to {steps[k].max():g}); symplearn trains on one fixed time step: "
            f"resample the data to equal steps"
        )
    t = t[:, :1] + dt * np.arange(T)[None]
    return t, dt


__all__ = [
    "DEFAULT_INTEGRATOR",
    "Dataset",
    "TrainingData",
    "as_training_data",
    "finite_difference",
    "generate_dataset",
    "get_any_system",
    "is_trajectory_file",
    "load_trajectories",
    "load_training_file",
    "system_from_metadata",
    "system_metadata",
]
