"""Datasets of trajectories of ground-truth systems, and their files.

:func:`generate_dataset` samples initial states of a :class:`~symplearn.systems.System`,
integrates all of them at once with an accurate reference integrator (Gauss-Legendre of order 6
with ``substeps`` internal steps per saved step, in float64 whatever the requested dtype), and
records the exact time derivatives ``dz/dt`` (the analytic vector field at the clean states).
A :class:`Dataset` is split by trajectory into train and test sets and saved as a ``.npz`` of
arrays plus a JSON sidecar of its metadata.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import __version__
from ._errors import NonFiniteError, SymplearnError
from ._files import read_npz, write_json, write_npz
from .integrators import Integrator, get_integrator, reference_trajectory
from .systems import System, get_system

#: marks the JSON sidecar of a symplearn dataset
FORMAT = "symplearn-dataset"
FORMAT_VERSION = 1
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
        return get_system(self.metadata["system"], **self.metadata.get("params", {}))

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
        if meta.get("format_version") != FORMAT_VERSION:
            raise SymplearnError(
                f"{str(path)!r} has dataset format version {meta.get('format_version')!r}; this "
                f"symplearn ({__version__}) reads version {FORMAT_VERSION}"
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
    for name, value in (("n_traj", n_traj), ("n_steps", n_steps), ("substeps", substeps)):
        if isinstance(value, bool) or not (isinstance(value, int) and value > 0):
            raise SymplearnError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise SymplearnError(f"dt must be a positive finite number, got {dt!r}")
    if not (isinstance(noise_std, (int, float)) and math.isfinite(noise_std) and noise_std >= 0):
        raise SymplearnError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
    if not (isinstance(test_fraction, (int, float)) and 0 <= test_fraction < 1):
        raise SymplearnError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if dtype not in _DTYPES.values():
        raise SymplearnError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise SymplearnError(f"seed must be an integer >= 0, got {seed!r}")
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
        "system": system.name,
        "params": dict(system.params),
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


__all__ = ["DEFAULT_INTEGRATOR", "Dataset", "generate_dataset"]
