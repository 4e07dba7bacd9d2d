# %% [markdown]
# # A learned potential in an ASE MD run, and `check-forces`
#
# A small neural interatomic potential is trained on frames of a Lennard-Jones liquid, wrapped in
# `SymplearnCalculator` and handed to ASE's own `VelocityVerlet`. Because the potential is an
# energy (forces are `-∇E` by autograd), the NVE run keeps its total energy; the force check
# (loop work, Jacobian asymmetry, an NVE audit: the detectors behind `symplearn check-forces`)
# confirms it, and flags a direct-force model of the same size trained on the same frames.
# Everything is small so that the page executes in under a minute.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from ase.md.verlet import VelocityVerlet

from symplearn.ase import SymplearnCalculator, to_atoms
from symplearn.diagnostics import forces as dfo
from symplearn.md import langevin_baoab
from symplearn.models import build_model
from symplearn.systems import LennardJones
from symplearn.training.potentials import generate_md_data, train_potential

torch.set_num_threads(1)
torch.manual_seed(0)
t_start = time.perf_counter()

# %% [markdown]
# ## Training frames
#
# The truth: N = 32 Lennard-Jones particles at density 0.8442 in a periodic box, with a
# smoothly switched cutoff at 1.6 σ (a small box needs a cutoff below half its side). Frames come
# from Langevin runs at three temperatures, with their energies and forces.

# %%
N_PARTICLES, CUTOFF = 32, 1.6
truth = LennardJones(N_PARTICLES, density=0.8442, cutoff=CUTOFF, cutoff_treatment="switched")
L = truth.box_length
data = generate_md_data(truth, (0.8, 1.0, 1.3), 20, equilibration_steps=300, sample_every=10, seed=0)
print(f"box side {L:.3f}, {data['q'].shape[0]} frames of {N_PARTICLES} particles")

# %% [markdown]
# ## Two models of the same size
#
# `symmetry-function`: radial symmetry functions of each particle's neighbours, an energy per
# particle from a small network, forces `-∇E`. `direct-force`: the same descriptors, forces
# predicted directly (no energy behind them).

# %%
models, fits = {}, {}
for name, kind in [("conservative", "symmetry-function"), ("direct-force", "direct-force")]:
    torch.manual_seed(0)
    model = build_model(
        kind, n_particles=N_PARTICLES, box_length=L, cutoff=CUTOFF, n_basis=8, width=16, depth=2
    ).double()
    fits[name] = train_potential(model, data, steps=500, batch_size=4, lr=1e-2, eval_every=50, seed=0)
    models[name] = model
    print(
        f"{name:>12}: validation force RMSE {fits[name]['val_force_rmse']:.3f} ({fits[name]['wall_s']:.1f} s)"
    )

# %% [markdown]
# ## ASE's VelocityVerlet with the learned calculator
#
# One equilibrated liquid state (Langevin on the true potential, total momentum removed), then
# 400 NVE steps of ASE's `VelocityVerlet` at dt = 0.005 τ with each calculator. (symplearn's
# reduced units map onto ASE's as Å, eV and amu: see `symplearn.ase`.)

# %%
z = truth.sample(1, temperature=1.0, seed=1)[0]
z, _ = langevin_baoab(truth, z, 0.005, 400, temperature=1.0, seed=2, zero_momentum=True)


def nve_with_ase(potential, n_steps=400, dt=0.005, every=5):
    atoms = to_atoms(truth, z)
    atoms.calc = SymplearnCalculator(potential)
    dyn = VelocityVerlet(atoms, timestep=dt)
    t, e_tot, e_kin = [], [], []

    def record():
        t.append(dyn.get_time())
        e_kin.append(atoms.get_kinetic_energy())
        e_tot.append(atoms.get_potential_energy() + e_kin[-1])

    dyn.attach(record, interval=every)
    record()
    t0 = time.perf_counter()
    dyn.run(n_steps)
    return np.array(t), np.array(e_tot), np.array(e_kin), time.perf_counter() - t0


runs = {"true LJ": nve_with_ase(truth), "conservative": nve_with_ase(models["conservative"])}
for name, (_t, e, k, wall) in runs.items():
    print(
        f"{name:>12}: E/N from {e[0] / N_PARTICLES:.4f} to {e[-1] / N_PARTICLES:.4f}, "
        f"std(E)/std(KE) = {e.std() / k.std():.4f}, {wall:.1f} s"
    )

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
for name, (t, e, k, _) in runs.items():
    axes[0].plot(t, (e - e[0]) / N_PARTICLES, label=f"{name}: total")
    axes[1].plot(t, k / N_PARTICLES, label=f"{name}: kinetic")
axes[0].set_ylabel("(E(t) - E(0)) / N")
axes[1].set_ylabel("KE / N")
for ax in axes:
    ax.set_xlabel("t (τ)")
    ax.legend(fontsize=8)
fig.suptitle("NVE with ASE VelocityVerlet: the learned energy is kept like the true one")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The force check
#
# `dfo.check_forces` runs the detectors that `symplearn check-forces` prints: the work of the
# forces around small closed loops in configuration space (zero for a gradient field, within
# the quadrature error), the asymmetry of the force Jacobian (a Hessian is symmetric), and an NVE
# audit through ASE (for a model that has an energy). Here each model is reached only through
# its ASE calculator, as any third-party calculator would be (`symplearn check-forces
# module:Class` does the same).

# %%
for name, model in models.items():
    atoms = to_atoms(truth, z)
    calc = SymplearnCalculator(model)
    atoms.calc = calc
    # the NVE audit needs an energy: a direct-force model has none, so it gets the other two
    audit = dfo.ase_nve_audit(atoms, dt=0.005, n_steps=200) if model.has_energy else None
    force_fn = dfo.ase_force_fn(calc, to_atoms(truth, z))
    check = dfo.check_forces(force_fn, z[: truth.n_dof], box=L, nve=audit, n_loops=2, n_points=64)
    print(f"--- {name}\n{check.summary()}\n")

# %%
print(f"page executed in {time.perf_counter() - t_start:.1f} s")

# %% [markdown]
# At this tiny size and budget the direct-force model's field is visibly non-conservative
# (loop work and Jacobian asymmetry far above their floors). The full experiment,
# `symplearn experiment lennard-jones`, trains both to the same force error on 108 particles and
# runs 150 τ of NVE, where the direct-force liquid heats up: see
# [learned potentials](../lennard_jones.md).
