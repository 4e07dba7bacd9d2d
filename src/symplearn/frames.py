"""Labelled frames (positions, energy, forces, cell) from a user's extended XYZ file, and the
learned-potential folders trained on them.

:func:`read_frames` reads the file with ASE (``ase.io.read(path, index=":", format="extxyz")``:
the format MACE, NequIP and ASE write; energies and forces are the frames' calculator results, as
ASE reads ``energy=`` and the per-atom ``forces`` array) and checks what the particle models of
:mod:`symplearn.models.potentials` need: every frame labelled (forces, and the energy for a
conservative model), finite numbers, one number of atoms, one element, and one periodic cubic
cell ``L * I``. Every problem is one :class:`~symplearn._errors.SymplearnError` line that names
the frame and says what would work.

``symplearn train --data frames.extxyz --model potential-conservative`` (see
``docs/potentials_from_frames.md``) writes a model folder with the held-out frames in
:data:`HELDOUT_NAME`; :func:`load_potential` loads such a folder (or any folder of a learned
particle potential) and :func:`probe_positions` gives the held-out frames' positions, the
configurations ``check-forces`` and ``md --potential`` start from.

Units are the file's own (e.g. Angstrom, eV, amu), used unchanged: a temperature is ``k_B T`` in
the energy unit, a time step is in ``length sqrt(mass / energy)`` (ASE's time unit for Angstrom,
eV and amu, about 10.18 fs).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ._errors import SymplearnError

__all__ = ["FRAME_SUFFIXES", "HELDOUT_NAME", "Frames", "load_potential", "probe_positions", "read_frames"]

#: file suffixes read as extended XYZ frames
FRAME_SUFFIXES = (".extxyz", ".xyz")
#: the held-out frames (positions, reference energy and forces) inside a frames-trained model folder
HELDOUT_NAME = "heldout_frames.extxyz"
#: model kinds that are particle potentials (``model.config["kind"]``)
POTENTIAL_KINDS = ("pair-potential", "symmetry-function", "direct-force")


@dataclass
class Frames:
    """Labelled frames of one periodic cubic box (float64).

    Attributes:
        q: positions ``(F, 3N)``; energy: ``(F,)`` (NaN where a frame has none); forces: ``(F, 3N)``.
        box_length: L of the cubic cell; n_atoms: N; symbol: the element; mass: its mass.
        path: the file read.
    """

    q: Tensor
    energy: Tensor
    forces: Tensor
    box_length: float
    n_atoms: int
    symbol: str
    mass: float
    path: str

    def __len__(self) -> int:
        return int(self.q.shape[0])

    def data(self, dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
        """``{"q", "energy", "forces"}`` in ``dtype`` (what
        :func:`~symplearn.training.potentials.train_potential` takes)."""
        return {"q": self.q.to(dtype), "energy": self.energy.to(dtype), "forces": self.forces.to(dtype)}


def _where(path, k: int) -> str:
    return f"{path}: frame {k}"


def _read_atoms(path: str | os.PathLike) -> list:
    from ase.io import read

    p = Path(path)
    if p.suffix.lower() not in FRAME_SUFFIXES:
        raise SymplearnError(
            f"{str(path)!r}: labelled frames are read from extended XYZ files ({', '.join(FRAME_SUFFIXES)}); "
            "write yours with ase.io.write('frames.extxyz', frames)"
        )
    if not p.is_file():
        raise SymplearnError(f"cannot read frames: {str(path)!r} is not a file")
    try:
        # extxyz only (never a format guessed from the content): reading it executes no code
        frames = read(os.fspath(p), index=":", format="extxyz")
    except Exception as err:  # noqa: BLE001 - ASE raises many kinds on a malformed file
        first = (str(err).splitlines() or [""])[0][:200]
        raise SymplearnError(
            f"cannot read {str(path)!r} as extended XYZ with ASE ({type(err).__name__}: {first}); "
            "write the frames with ase.io.write(path, frames, format='extxyz')"
        ) from None
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise SymplearnError(f"{str(path)!r} holds no frames")
    return frames


def _label(atoms, name: str):
    """The frame's ``energy`` or ``forces``: its calculator's result (how ASE reads extxyz labels),
    else ``atoms.info["energy"]`` / ``atoms.arrays["forces"]``; ``None`` when absent."""
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", None) or {}
    if name in results:
        return results[name]
    return atoms.info.get(name) if name == "energy" else atoms.arrays.get(name)


def _cubic_length(atoms, where: str) -> float:
    pbc = [bool(x) for x in atoms.pbc]
    if not all(pbc):
        raise SymplearnError(
            f"{where} is not periodic in every direction (pbc={pbc}): the potential models work in a "
            'periodic cubic box; give every frame a cubic cell and pbc=True (Lattice="L 0 0 0 L 0 0 0 L" '
            'pbc="T T T" in the extxyz header)'
        )
    cell = np.asarray(atoms.get_cell(), dtype=np.float64)
    L = float(cell[0, 0])
    if not (math.isfinite(L) and L > 0) or not np.allclose(
        cell, L * np.eye(3), rtol=0, atol=1e-8 * max(L, 1.0)
    ):
        raise SymplearnError(
            f"{where} has the cell {np.round(cell, 6).tolist()}, not a cubic one: the potential models "
            "need a cubic periodic cell L * I (orthorhombic and triclinic cells are not supported); "
            "frames of a cubic box would work"
        )
    return L


def read_frames(path: str | os.PathLike, *, need_energy: bool = True) -> Frames:
    """Read and check labelled frames (see the module docstring).

    Args:
        path: an extended XYZ file (``.extxyz`` or ``.xyz``).
        need_energy: every frame must have an energy (a conservative model trains on it; the
            direct-force model trains on forces alone and takes frames without one).

    Returns:
        :class:`Frames`.

    Raises:
        SymplearnError: an unreadable file or a bad frame (the message names the frame and the
            problem): no forces, no energy, NaN or infinite numbers, forces of the wrong shape,
            atom counts, elements, masses or cells that differ between frames, a cell that is not
            periodic or not cubic, fewer than two frames.
    """
    atoms_list = _read_atoms(path)
    first = atoms_list[0]
    N = len(first)
    symbols0 = sorted(set(first.get_chemical_symbols()))
    L0 = None
    qs, es, fs = [], [], []
    for k, atoms in enumerate(atoms_list):
        where = _where(path, k)
        if len(atoms) != N:
            raise SymplearnError(
                f"{where} has {len(atoms)} atoms but frame 0 has {N}: a potential model is trained in one "
                "box of a fixed number of atoms; give frames with the same number of atoms (one file per "
                "system size)"
            )
        if N < 2:
            raise SymplearnError(f"{where} has {N} atom: a potential needs at least 2")
        symbols = sorted(set(atoms.get_chemical_symbols()))
        if len(symbols) != 1 or symbols != symbols0:
            raise SymplearnError(
                f"{where} holds the elements {', '.join(symbols)} (frame 0: {', '.join(symbols0)}): the "
                "potential models are for one element; give frames of a single element"
            )
        masses = np.asarray(atoms.get_masses(), dtype=np.float64)
        if not (np.all(np.isfinite(masses)) and np.all(masses > 0) and np.allclose(masses, masses[0])):
            raise SymplearnError(
                f"{where}: the atoms' masses must be one positive number, got {masses[:4]} ..."
            )
        if k == 0:
            mass0 = float(masses[0])
        elif not math.isclose(float(masses[0]), mass0, rel_tol=1e-9):
            raise SymplearnError(f"{where} has mass {masses[0]:g} but frame 0 has {mass0:g}; give one mass")
        L = _cubic_length(atoms, where)
        if L0 is None:
            L0 = L
        elif not math.isclose(L, L0, rel_tol=1e-8):
            raise SymplearnError(
                f"{where} has a cubic cell of side {L:.8g} but frame 0 has {L0:.8g}: a potential model is "
                "trained in one box; give frames of the same cell (one file per box)"
            )
        pos = np.asarray(atoms.get_positions(), dtype=np.float64)
        if not np.all(np.isfinite(pos)):
            raise SymplearnError(f"{where} has NaN or infinite positions")
        forces = _label(atoms, "forces")
        if forces is None:
            raise SymplearnError(
                f"{where} has no forces: every frame needs per-atom forces (the 'forces' array of the "
                "extxyz, as ase.io.write stores a calculator's results)"
            )
        forces = np.asarray(forces, dtype=np.float64)
        if forces.shape != (N, 3):
            raise SymplearnError(f"{where} has forces of shape {forces.shape}, expected ({N}, 3)")
        if not np.all(np.isfinite(forces)):
            raise SymplearnError(f"{where} has NaN or infinite forces")
        energy = _label(atoms, "energy")
        if energy is None:
            if need_energy:
                raise SymplearnError(
                    f"{where} has no energy: a conservative potential trains on energies and forces "
                    "(energy=... in the extxyz header); label every frame, or train --model "
                    "potential-direct on forces alone"
                )
            energy = math.nan
        else:
            try:
                energy = float(np.asarray(energy, dtype=np.float64).reshape(()))
            except (TypeError, ValueError):
                raise SymplearnError(f"{where} has an energy that is not one number: {energy!r}") from None
            if not math.isfinite(energy):
                if need_energy:
                    raise SymplearnError(f"{where} has a NaN or infinite energy ({energy})")
                energy = math.nan
        qs.append(pos.reshape(-1))
        es.append(energy)
        fs.append(forces.reshape(-1))
    if len(atoms_list) < 2:
        raise SymplearnError(
            f"{str(path)!r} holds 1 frame: training needs at least 2 (frames are held out for the errors)"
        )
    return Frames(
        q=torch.as_tensor(np.stack(qs)),
        energy=torch.as_tensor(np.asarray(es, dtype=np.float64)),
        forces=torch.as_tensor(np.stack(fs)),
        box_length=float(L0),
        n_atoms=N,
        symbol=symbols0[0],
        mass=mass0,
        path=str(path),
    )


def frames_extxyz(frames: Frames, idx) -> bytes:
    """The frames ``idx`` as extended XYZ text (positions, cell, reference energy and forces)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    out = []
    for k in [int(i) for i in idx]:
        a = Atoms(
            [frames.symbol] * frames.n_atoms,
            positions=frames.q[k].reshape(-1, 3).numpy(),
            cell=np.eye(3) * frames.box_length,
            pbc=True,
        )
        a.set_masses([frames.mass] * frames.n_atoms)
        e = float(frames.energy[k])
        results = {"forces": frames.forces[k].reshape(-1, 3).numpy()}
        if math.isfinite(e):
            results["energy"] = e
        a.calc = SinglePointCalculator(a, **results)
        a.info["frame"] = k
        out.append(a)
    buf = io.StringIO()
    write(buf, out, format="extxyz")
    return buf.getvalue().encode("utf-8")


def load_potential(folder: str | os.PathLike, *, dtype: torch.dtype = torch.float64):
    """The learned particle potential of a model folder (frames-trained, or from the
    Lennard-Jones experiment), in ``dtype``, eval mode.

    Raises:
        SymplearnError: what :func:`~symplearn.modelio.load_model` refuses, or a folder of a model
            that is not a particle potential.
    """
    from .modelio import load_model

    model = load_model(folder)
    if getattr(model, "kind", None) not in POTENTIAL_KINDS or not hasattr(model, "compute"):
        raise SymplearnError(
            f"{folder} holds a {getattr(model, 'kind', type(model).__name__)!r} model, not a particle "
            f"potential (kinds: {', '.join(POTENTIAL_KINDS)}; train one with `symplearn train --data "
            "frames.extxyz --model potential-conservative`)"
        )
    return model.to(dtype=dtype)


def probe_positions(folder: str | os.PathLike, model=None) -> Tensor | None:
    """Positions ``(F, 3N)`` (float64) of the held-out frames stored in a frames-trained model
    folder (:data:`HELDOUT_NAME`); ``None`` for a folder without them.

    Raises:
        SymplearnError: the file is there but unreadable, or its frames do not fit ``model``.
    """
    path = Path(folder) / HELDOUT_NAME
    if not path.is_file():
        return None
    fr = read_frames(path, need_energy=False)
    if model is not None and (
        fr.n_atoms != model.n_particles or not math.isclose(fr.box_length, model.box_length, rel_tol=1e-8)
    ):
        raise SymplearnError(
            f"{path} holds frames of {fr.n_atoms} atoms in a box of {fr.box_length:.6g}, but the model is "
            f"for {model.n_particles} atoms in {model.box_length:.6g}; the folder was altered, train it again"
        )
    return fr.q
