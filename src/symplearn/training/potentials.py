"""Training data and fitting for the learned interatomic potentials of
:mod:`symplearn.models.potentials`: :func:`generate_md_data` samples configurations of the true
system with Langevin BAOAB (:func:`symplearn.md.langevin_baoab`) and labels them with its energies
and forces; :func:`train_potential` fits a model to them."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from .._errors import SymplearnError
from ..md import langevin_baoab
from ..models.potentials import _LearnedParticles
from ..systems.particles import ParticleSystem

__all__ = ["generate_md_data", "train_potential"]


def generate_md_data(
    system: ParticleSystem,
    temperatures,
    frames_per_temperature: int,
    *,
    dt: float = 0.005,
    equilibration_steps: int = 1000,
    sample_every: int = 20,
    friction: float = 1.0,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Configurations, energies and forces of the true system, sampled with Langevin BAOAB.

    For each temperature: an fcc start with Maxwell-Boltzmann momenta, ``equilibration_steps``
    of Langevin dynamics, then one frame every ``sample_every`` steps.

    Args:
        system: the true :class:`~symplearn.systems.particles.ParticleSystem` (float64).
        temperatures: sequence of bath temperatures.
        frames_per_temperature: frames kept per temperature.
        dt, equilibration_steps, sample_every, friction: the thermostat run.
        seed: seed (temperature ``k`` uses ``seed + k``).

    Returns:
        dict with ``"q"`` ``(F, 3N)``, ``"energy"`` ``(F,)``, ``"forces"`` ``(F, 3N)``,
        ``"temperature"`` ``(F,)`` (the bath temperature of each frame).
    """
    temperatures = [float(t) for t in temperatures]
    if not temperatures or frames_per_temperature < 1:
        raise SymplearnError("need at least one temperature and one frame per temperature")
    qs, ts = [], []
    n = system.n_dof
    for k, T in enumerate(temperatures):
        z0 = system.sample(1, temperature=T, seed=seed + k)[0]
        z, _ = langevin_baoab(
            system, z0, dt, equilibration_steps, temperature=T, friction=friction, seed=seed + 100 + k
        )
        _, saved = langevin_baoab(
            system, z, dt, frames_per_temperature * sample_every, temperature=T, friction=friction,
            seed=seed + 200 + k, save_every=sample_every,
        )  # fmt: skip
        qs.append(saved[..., :n])
        ts.append(torch.full((saved.shape[0],), T, dtype=torch.float64))
    q = torch.cat(qs)
    with torch.no_grad():
        out = system.compute(q, virial=False)
    return {"q": q, "energy": out["energy"], "forces": out["forces"], "temperature": torch.cat(ts)}


def train_potential(
    model: _LearnedParticles,
    data: dict[str, Tensor],
    *,
    steps: int = 1000,
    batch_size: int = 4,
    lr: float = 3e-3,
    energy_weight: float = 100.0,
    validation_fraction: float = 0.2,
    eval_every: int = 50,
    seed: int = 0,
) -> dict:
    """Fit a learned potential to energies and forces (forces only for a model without energy).

    Loss: ``mean |F_model - F_true|^2`` (per component) ``+ energy_weight mean (E_model/N -
    E_true/N)^2``; Adam with a cosine learning-rate decay to ``lr / 30``. The frames are split at
    random into training and validation sets (``validation_fraction``); the descriptor
    standardisation and the energy offset are set from the training frames first.

    Args:
        model: a model of :mod:`symplearn.models.potentials` (parameters in the dtype of the
            data, e.g. float64).
        data: from :func:`generate_md_data`.
        steps, batch_size, lr, energy_weight, validation_fraction, eval_every, seed: training.

    Returns:
        dict with ``"history"`` (``step``, ``train_loss``, ``val_force_rmse``, ``val_energy_rmse``
        lists), ``"train_idx"``, ``"val_idx"``, ``"val_force_rmse"``, ``"val_energy_rmse"``
        (per particle; None without energy), ``"wall_s"``.
    """
    F = data["q"].shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(F, generator=gen)
    n_val = max(1, int(round(validation_fraction * F)))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if len(train_idx) < 1:
        raise SymplearnError(
            f"{F} frames leave nothing to train on with validation_fraction={validation_fraction}"
        )
    q, E, Ft = data["q"], data["energy"], data["forces"]
    model.fit_scales(q[train_idx], E[train_idx] if model.has_energy else None)
    use_energy = bool(model.has_energy) and energy_weight > 0
    N = model.n_particles
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr / 30)
    hist = {"step": [], "train_loss": [], "val_force_rmse": [], "val_energy_rmse": []}

    def evaluate():
        with torch.no_grad():
            fe, ee = [], []
            for chunk in val_idx.split(8):
                out = model.compute(q[chunk], energy=use_energy, virial=False)
                fe.append(((out["forces"] - Ft[chunk]) ** 2).mean(-1))
                if use_energy:
                    ee.append(((out["energy"] - E[chunk]) / N) ** 2)
            f_rmse = float(torch.cat(fe).mean().sqrt())
            e_rmse = float(torch.cat(ee).mean().sqrt()) if use_energy else None
        return f_rmse, e_rmse

    t0 = time.perf_counter()
    running = []
    for step in range(1, steps + 1):
        idx = train_idx[torch.randint(len(train_idx), (batch_size,), generator=gen)]
        out = model.compute(q[idx], energy=use_energy, virial=False)
        loss = ((out["forces"] - Ft[idx]) ** 2).mean()
        if use_energy:
            loss = loss + energy_weight * (((out["energy"] - E[idx]) / N) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if step % eval_every == 0 or step == steps:
            f_rmse, e_rmse = evaluate()
            hist["step"].append(step)
            hist["train_loss"].append(sum(running) / len(running))
            hist["val_force_rmse"].append(f_rmse)
            hist["val_energy_rmse"].append(e_rmse)
            running = []
    model._cache = None
    f_rmse, e_rmse = hist["val_force_rmse"][-1], hist["val_energy_rmse"][-1]
    return {
        "history": hist,
        "train_idx": train_idx,
        "val_idx": val_idx,
        "val_force_rmse": f_rmse,
        "val_energy_rmse": e_rmse,
        "wall_s": time.perf_counter() - t0,
    }
