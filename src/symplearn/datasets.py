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
from ._validate import check_float, check_int, check_positive
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
    return get_system(name, **params)


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
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Dataset:
    """Trajectories of one system, saved at the same times, split by trajectory.

    Attributes:
        t: saved times ``(T,)``.
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
        return float(self.t[1] - self.t[0])

    def system(self) -> System:
        """Rebuild the ground-truth system from the metadata (name and parameters)."""
        return system_from_metadata(self.metadata, where="this dataset's metadata")

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
            meta["metadata"] = _migrate_metadata(meta.get("metadata", {}), 1)
        elif version != FORMAT_VERSION:
            raise SymplearnError(
                f"{str(path)!r} has dataset format version {meta.get('format_version')!r}; this "
                f"symplearn ({__version__}) reads versions 1 and {FORMAT_VERSION}"
            )
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
    if z.dtype not in _DTYPES.values() or dzdt.dtype != z.dtype or t.dtype != z.dtype:
        raise SymplearnError(
            f"t, z and dzdt must share one dtype, float32 or float64; got {t.dtype}, {z.dtype}, {dzdt.dtype}"
        )
    for name, x in (("t", t), ("z", z), ("dzdt", dzdt)):
        if not bool(torch.isfinite(x).all()):
            raise NonFiniteError(f"{name} contains NaN or infinite values")
    if tuple(t.shape) != (z.shape[0],):
        raise SymplearnError(f"t must have shape (T,) = ({z.shape[0]},), got {tuple(t.shape)}")
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
    if isinstance(system, str):
        system = get_system(system)
    if not isinstance(system, System):
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
    if dtype not in _DTYPES.values():
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
            system=_system_or_none(getattr(dataset, "metadata", None)),
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


__all__ = [
    "DEFAULT_INTEGRATOR",
    "Dataset",
    "TrainingData",
    "as_training_data",
    "finite_difference",
    "generate_dataset",
    "system_from_metadata",
    "system_metadata",
]
