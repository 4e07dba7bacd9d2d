"""The md run module and its ``md`` subcommand (registered on a fresh parser here)."""

from __future__ import annotations

import argparse
import csv
import json

import pytest
from ase.io import read

from symplearn._errors import SymplearnError
from symplearn.runs import md as run_md

KEYS = {
    "n_particles",
    "steps_per_s",
    "temperature_mean",
    "potential_energy_per_particle_mean",
    "pressure_mean",
    "energy_std_over_ke_std",
    "energy_drift_per_particle_per_tau",
    "g_r_peak",
    "wall_time_s",
}


def parse(argv):
    parser = argparse.ArgumentParser(prog="symplearn")
    run_md.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_md_command_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    args = parse(
        ["md", "lennard-jones", "--n", "256", "--density", "0.8442", "--temperature", "1.44"]
        + ["--steps", "100", "--dt", "0.005", "--cutoff-treatment", "switched", "--save-every", "50"]
        + ["--out", str(out), "--quiet"]
    )
    assert args.func(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert KEYS <= set(metrics) and metrics["n_particles"] == 256
    assert set(metrics["g_r_peak"]) == {"r", "height"}
    for name in ("report.md", "config.json", "pair_potential.png", "g_r.png", "energy.png"):
        assert (out / name).is_file()
    rows = list(csv.DictReader((out / "thermo.csv").open()))
    assert list(rows[0]) == ["step", "time", "KE", "PE", "E", "T", "P"]
    assert len(rows) == 11 and rows[-1]["step"] == "100"
    assert float(rows[0]["T"]) == pytest.approx(1.44, abs=1e-9)  # exact initial temperature
    # during the melt KE falls from 2.16 to about 1.1 per particle; E stays within 0.5 % of that
    energies = [float(r["E"]) for r in rows]
    assert (max(energies) - min(energies)) / 256 < 5e-3
    assert metrics["energy_std_over_ke_std"] < 0.01
    frames = read(out / "trajectory.extxyz", index=":")
    assert len(frames) == 3 and len(frames[0]) == 256 and frames[-1].info["step"] == 100


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--density", "-0.5"], "density"),
        (["--temperature", "0"], "temperature"),
        (["--cutoff", "4.0"], "half the box"),
        (["--cutoff-treatment", "smooth"], "cutoff treatment"),
        (["--n", "200"], "4 k"),
        (["--steps", "0"], "steps"),
    ],
)
def test_bad_input_raises_symplearn_error(tmp_path, extra, match):
    args = parse(["md", "lennard-jones", "--steps", "10", "--out", str(tmp_path / "x"), "--quiet", *extra])
    with pytest.raises(SymplearnError, match=match):
        args.func(args)
    assert not (tmp_path / "x" / "metrics.json").exists()


def test_unknown_system_lists_the_valid_ones(tmp_path):
    args = parse(["md", "argon", "--out", str(tmp_path / "x")])
    with pytest.raises(SymplearnError, match="lennard-jones"):
        args.func(args)


def test_langevin_equilibration_hands_nve_a_state_at_rest(tmp_path):
    # the thermostat leaves a random total momentum; md removes it before NVE (LAMMPS mom yes)
    out = tmp_path / "run"
    args = parse(
        ["md", "lennard-jones", "--n", "108", "--temperature", "1.0", "--equilibrate", "40"]
        + ["--steps", "20", "--save-every", "10", "--cutoff-treatment", "switched"]
        + ["--out", str(out), "--quiet"]
    )
    assert args.func(args) == 0
    frames = read(out / "trajectory.extxyz", index=":")
    rows = list(csv.DictReader((out / "thermo.csv").open()))
    assert len(frames) == 3
    for atoms in frames:  # extxyz keeps 8 decimals: round-off 108 x 5e-9; thermal size ~10
        assert abs(atoms.get_momenta().sum(0)).max() < 1e-6
    by_step = {int(r["step"]): r for r in rows}
    for atoms in frames:  # T = 2 KE / (3N - 3) for a state with zero total momentum
        row = by_step[atoms.info["step"]]
        ke = 0.5 * float((atoms.get_momenta() ** 2).sum())  # m = 1
        assert float(row["KE"]) == pytest.approx(ke, rel=1e-6)
        assert float(row["T"]) == pytest.approx(2 * float(row["KE"]) / (3 * 108 - 3), rel=1e-10)


def test_the_command_validates_and_builds_the_system_once(tmp_path, monkeypatch):
    calls = {"resolved": 0, "build_system": 0}
    for name in calls:
        real = getattr(run_md.Config, name)

        def counted(self, _real=real, _name=name):
            calls[_name] += 1
            return _real(self)

        monkeypatch.setattr(run_md.Config, name, counted)
    out = tmp_path / "run"
    args = parse(["md", "--n", "108", "--steps", "20", "--save-every", "10", "--out", str(out), "--quiet"])
    assert args.func(args) == 0
    assert calls == {"resolved": 1, "build_system": 1}
    # the built setup runs as it is: the same start and so the same thermo log
    setup = run_md.config_from_args(args).build()
    assert calls == {"resolved": 2, "build_system": 2}
    run_md.run(setup, tmp_path / "again")
    assert calls == {"resolved": 2, "build_system": 2}
    assert (out / "thermo.csv").read_text() == (tmp_path / "again" / "thermo.csv").read_text()
