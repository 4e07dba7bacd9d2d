"""``symplearn check-forces``: is a force field conservative?

Runs the three detectors of :mod:`symplearn.diagnostics.forces` (loop work, antisymmetric part of
the force Jacobian, a short NVE audit) on a saved symplearn model folder (a learned potential from
:mod:`symplearn.models.potentials`) or on any ASE calculator given by import path, and prints a
verdict::

    symplearn check-forces path/to/model_folder
    symplearn check-forces ase.calculators.lj:LennardJones --kwargs '{"sigma": 1, "epsilon": 1, "rc": 2.5}'
    symplearn check-forces symplearn.diagnostics.forces:CurlCalculator --kwargs '{"strength": 0.5}'

The probe configuration is a Lennard-Jones liquid (symplearn's true LJ fluid, Langevin-equilibrated
from an fcc start at the given temperature, reduced units: sigma = Angstrom, epsilon = eV for ASE)
in the model's box, or for an ASE calculator in a box of ``n_particles`` at ``density``. A
model folder trained on a user's frames (``symplearn train --data frames.extxyz --model
potential-...``) is probed at its first held-out frame instead (stored in the folder), with
Maxwell-Boltzmann momenta at ``temperature`` (``k_B T`` in the data's energy unit); a direct-force
model of such a folder has no energy to audit, so its verdict rests on loop work and Jacobian.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .._errors import SymplearnError
from .._files import write_json
from ..diagnostics import forces as dfo
from ..systems.particles import LennardJones


@dataclass
class Config:
    """Settings of ``check-forces``.

    Attributes:
        target: a model folder, or ``"module:Class"`` of an ASE calculator.
        kwargs: JSON object of the calculator's constructor arguments (ASE targets only).
        n_particles, density: the probe box for ASE calculators (a model brings its own).
        temperature: temperature of the probe state (Langevin, true LJ) and the NVE audit's start.
        equilibration_steps: Langevin steps to make the probe liquid.
        nve_steps, dt: the NVE audit (0 steps: no audit).
        n_loops, loop_points, amplitude: loop work (per-particle loop radius ``amplitude``).
        seed: seed of the probe state and the loop directions.
        quiet: print only the verdict line.
    """

    target: str = ""
    kwargs: str = "{}"
    n_particles: int = 108
    density: float = 0.8442
    temperature: float = 1.0
    equilibration_steps: int = 500
    nve_steps: int = 1000
    dt: float = 0.005
    n_loops: int = 4
    loop_points: int = 128
    amplitude: float = 0.02
    seed: int = 0
    quiet: bool = False

    def resolved(self) -> Config:
        if not self.target:
            raise SymplearnError("give a model folder or an ASE calculator as 'module:Class'")
        try:
            kw = json.loads(self.kwargs)
        except json.JSONDecodeError as e:
            raise SymplearnError(
                f"--kwargs must be a JSON object, e.g. '{{\"rc\": 2.5}}'; got {self.kwargs!r} ({e})"
            ) from None
        if not isinstance(kw, dict):
            raise SymplearnError(f"--kwargs must be a JSON object, got {self.kwargs!r}")
        for name in ("nve_steps", "equilibration_steps"):
            if getattr(self, name) < 0:
                raise SymplearnError(f"{name} must be >= 0, got {getattr(self, name)}")
        return self

    def build(self) -> Setup:
        """Validate and make the target an object, once: the :class:`Setup` that :func:`run`
        runs (the model loaded from its folder, or the ASE calculator built, and a model
        folder's held-out frames).

        Raises:
            SymplearnError: as :meth:`resolved` and :func:`load_target`.
        """
        cfg = self.resolved()
        kind, target = load_target(cfg)
        probe = None
        if kind == "model":
            from ..frames import probe_positions

            probe = probe_positions(cfg.target, target)
        return Setup(config=cfg, kind=kind, target=target, probe=probe)


@dataclass(frozen=True, eq=False)
class Setup:
    """A force check with its target made an object (:meth:`Config.build`, once): what
    :func:`run` runs.

    Attributes:
        config: the validated configuration.
        kind: ``"model"`` (a model folder) or ``"ase"`` (a calculator).
        target: the loaded model (float64) or the built calculator.
        probe: a model folder's held-out frame positions, ``None`` without them (or for ASE).
    """

    config: Config
    kind: str
    target: Any
    probe: torch.Tensor | None


def load_target(cfg: Config):
    """``("model", model)`` for a model folder, ``("ase", calculator)`` for ``module:Class``."""
    path = Path(cfg.target)
    if path.is_dir():
        from ..modelio import load_model

        model = load_model(path).double()
        if not hasattr(model, "compute"):
            raise SymplearnError(
                f"{cfg.target} holds a {type(model).__name__}, not a particle potential "
                f"(kinds: pair-potential, symmetry-function, direct-force)"
            )
        return "model", model
    if ":" not in cfg.target:
        raise SymplearnError(
            f"{cfg.target!r} is neither a folder nor 'module:Class' (e.g. ase.calculators.lj:LennardJones)"
        )
    mod_name, cls_name = cfg.target.split(":", 1)
    try:
        cls = getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError) as e:
        raise SymplearnError(f"cannot import {cfg.target!r}: {e}") from None
    return "ase", cls(**json.loads(cfg.kwargs))


def probe_state(cfg: Config, n_particles: int, density: float) -> tuple[LennardJones, torch.Tensor]:
    """A Langevin-equilibrated LJ liquid state ``(6N,)`` (total momentum removed, so the NVE audit's
    centre of mass rests) and the LJ system it came from."""
    from ..md import langevin_baoab

    lj = LennardJones(n_particles, density=density, cutoff_treatment="switched")
    z = lj.sample(1, temperature=cfg.temperature, seed=cfg.seed)[0]
    z, _ = langevin_baoab(
        lj, z, cfg.dt, cfg.equilibration_steps, temperature=cfg.temperature, seed=cfg.seed + 1,
        zero_momentum=True,
    )  # fmt: skip
    return lj, z


def run(config: Config | Setup, out: str | Path | None = None) -> dfo.ForceCheck:
    """Run the three detectors; write ``out/check_forces.json`` when ``out`` is given.

    Args:
        config: the settings (validated and built here first, :meth:`Config.build`), or the
            :class:`Setup` they built.
        out: the folder of ``check_forces.json``; ``None``: none written.
    """
    t0 = time.perf_counter()
    setup = config if isinstance(config, Setup) else config.build()
    cfg, kind, target, probe = setup.config, setup.kind, setup.target, setup.probe
    if kind == "model":
        from ..systems.particles import maxwell_boltzmann

        fn = dfo.system_force_fn(target)
        box = target.box_length
        if probe is None:  # no frames of its own (e.g. the LJ experiment's): an LJ liquid in its box
            lj, z = probe_state(cfg, target.n_particles, target.density)
        else:  # a frames-trained folder: its first held-out frame, momenta at the temperature
            lj = None
            p = maxwell_boltzmann(target.masses, cfg.temperature, seed=cfg.seed)[0]
            z = torch.cat([probe[0], p])
    else:
        from ..ase import to_atoms

        lj, z = probe_state(cfg, cfg.n_particles, cfg.density)
        atoms = to_atoms(lj, z)
        fn = dfo.ase_force_fn(target, atoms)
        box = lj.box_length
    q = z[: z.shape[0] // 2]
    audit = None
    own = getattr(target, "has_energy", True)
    # a direct-force model has no energy: its NVE run is judged by the true LJ energy, which only
    # exists for the LJ probe; a frames-trained direct model is judged by loop work and Jacobian
    if cfg.nve_steps and (kind != "model" or own or lj is not None):
        if kind == "model":
            audit = dfo.nve_audit(target, z, dt=cfg.dt, n_steps=cfg.nve_steps, reference=None if own else lj)
        else:
            atoms.calc = target
            audit = dfo.ase_nve_audit(atoms, dt=cfg.dt, n_steps=cfg.nve_steps)
    check = dfo.check_forces(
        fn, q, box=box, nve=audit, n_loops=cfg.n_loops, n_points=cfg.loop_points, amplitude=cfg.amplitude,
        seed=cfg.seed,
    )  # fmt: skip
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(
            out / "check_forces.json",
            {
                "config": asdict(cfg),
                "probe": "held-out frame 0 of the folder" if probe is not None else "Lennard-Jones liquid",
                **check.as_dict(),
                "wall_time_s": time.perf_counter() - t0,
            },
        )
    return check


# -- command line --------------------------------------------------------------------------
def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``check-forces`` subcommand (``symplearn check-forces TARGET ...``).

    Returns:
        The subcommand's parser (handler in ``func``; exit code 0 for a conservative verdict, 1
        for a non-conservative one).
    """
    d = Config()
    p = subparsers.add_parser(
        "check-forces", help="is a force field conservative? (loop work, Jacobian asymmetry, NVE audit)"
    )
    p.add_argument("target", help="a model folder, or an ASE calculator as module:Class")
    p.add_argument("--kwargs", default=d.kwargs, help="JSON constructor arguments of the calculator")
    p.add_argument("--n", type=int, default=d.n_particles, help="particles in the probe box (ASE targets)")
    p.add_argument("--density", type=float, default=d.density, help="number density of the probe box")
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--nve-steps", type=int, default=d.nve_steps, help="NVE audit steps (0: none)")
    p.add_argument("--dt", type=float, default=d.dt)
    p.add_argument(
        "--equilibrate", type=int, default=d.equilibration_steps, help="Langevin steps of the probe"
    )
    p.add_argument("--loops", type=int, default=d.n_loops, help="random loops for the loop work")
    p.add_argument("--loop-points", type=int, default=d.loop_points, help="quadrature points per loop")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=None, help="folder for check_forces.json")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd)
    return p


def _cmd(args: argparse.Namespace) -> int:
    cfg = replace(
        Config(), target=args.target, kwargs=args.kwargs, n_particles=args.n, density=args.density,
        temperature=args.temperature, nve_steps=args.nve_steps, dt=args.dt, seed=args.seed, quiet=args.quiet,
        equilibration_steps=args.equilibrate, n_loops=args.loops, loop_points=args.loop_points,
    )  # fmt: skip
    check = run(cfg.build(), args.out)
    if check.nve is None and cfg.nve_steps and not cfg.quiet:
        print("NVE audit        skipped: the model has no energy and its folder no reference energy")
    print(check.summary() if not cfg.quiet else f"verdict: {check.verdict.upper()}")
    return 0 if check.verdict == "conservative" else 1
