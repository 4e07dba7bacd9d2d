# %% [markdown]
# # The spring: an HNN against an MLP
#
# A harmonic oscillator, `H = (q² + p²)/2`. Two networks of the same size learn its vector
# field from the same trajectories: a plain MLP (`dz/dt = f(z)`) and a Hamiltonian neural network
# (`dz/dt = J ∇H_θ(z)`). Both fit the slopes about equally well; over a long rollout only the
# HNN keeps its energy, because its field has an energy to keep. This page is executed when the
# site is built (small networks, few training steps: well under a minute on one CPU thread).

# %%
import time

import matplotlib.pyplot as plt
import torch

import symplearn as sl
from symplearn.models import HNN, MLPField

torch.set_num_threads(1)
torch.manual_seed(0)
t_start = time.perf_counter()

# %% [markdown]
# ## Data
#
# 32 trajectories of the exact flow, 30 samples each at spacing 0.2, with their exact time
# derivatives. `generate_dataset` splits by trajectory into train / validation / test.

# %%
spring = sl.get_system("oscillator")
data = sl.generate_dataset("oscillator", n_traj=32, dt=0.2, n_steps=30, seed=0)
print(data.z.shape, "states (T, K, 2n);", len(data.test_idx), "test trajectories")

# %% [markdown]
# ## Two models, the same budget
#
# `fit` picks the natural loss for each model kind (here the derivative loss
# `‖f_θ(z) − dz/dt‖²`), seeds everything and trains in place.

# %%
hnn = HNN(n_dof=1, width=32, depth=2).double()
mlp = MLPField(n_dof=1, width=32, depth=2).double()
results = {}
for name, model in [("hnn", hnn), ("mlp", mlp)]:
    t0 = time.perf_counter()
    res = sl.fit(model, data, steps=600, lr=3e-3, seed=0, progress=False)
    results[name] = res
    print(f"{name}: final train loss {res.train_loss:.2e} in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## A long rollout
#
# Each learned field is paired with the same integrator, RK4 (deliberately *not*
# symplectic: a symplectic integrator would not rescue the MLP, whose drift is in the field), and
# with the true field for reference. 200 periods at 40 steps a period from the test states.

# %%
dt = 2 * torch.pi / 40
n_steps = 40 * 200
z0 = data.z[0, data.test_idx]
trajs = {}
for name, dyn in [("true", spring), ("hnn", hnn), ("mlp", mlp)]:
    flow = sl.discretize(dyn, "rk4", dt)
    trajs[name] = sl.integrate(flow, z0, n_steps)

errors = {name: sl.diagnostics.energy_error(spring, traj) for name, traj in trajs.items()}
for name, err in errors.items():
    print(f"{name:>4}: max relative true-energy error {err.max:.2e}, verdict {err.verdict}")

# %% [markdown]
# The energy is measured with the *true* Hamiltonian along each rollout, so the rows compare
# like with like.

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
periods = trajs["true"].t / (2 * torch.pi)
for name, err in errors.items():
    ax.semilogy(periods[1:], err.errors[1:].amax(dim=1), label=name)  # from the first step on
ax.set_xlabel("periods")
ax.set_ylabel("max relative energy error")
ax.set_title("Energy drift over 200 periods (RK4, dt = T/40)")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The phase portraits tell the same story: the MLP's orbits spiral, the HNN's close.

# %%
fig, axes = plt.subplots(1, 3, figsize=(9, 3), sharex=True, sharey=True)
for ax, (name, traj) in zip(axes, trajs.items()):
    z = traj.z[:, :4].detach()
    ax.plot(z[..., 0], z[..., 1], lw=0.3)
    ax.set_title(name)
    ax.set_aspect("equal")
axes[0].set_xlabel("q")
axes[0].set_ylabel("p")
fig.tight_layout()
plt.show()

# %%
print(f"page executed in {time.perf_counter() - t_start:.1f} s")

# %% [markdown]
# The full experiment (`symplearn experiment spring --out runs/spring`, 128 × 2 networks,
# 3000 steps, 1000 periods, transported loops, divergence and loop integrals) is described in
# [the results](../results.md).
