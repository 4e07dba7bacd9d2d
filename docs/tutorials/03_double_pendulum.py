# %% [markdown]
# # The double pendulum: statistics instead of trajectories
#
# On a chaotic system no model follows a trajectory for long (errors grow like `exp(λ t)`), so
# symplearn compares *statistics* on an energy shell: the largest Lyapunov exponent, Poincaré
# sections, and the 1-D Wasserstein distances of the angle and kinetic-energy marginals to the
# microcanonical measure (the library has an exact sampler of it), in units of the noise floor
# (two independent sets of true trajectories of the same length).
#
# This page runs the experiment's **quick mode** (`symplearn experiment double-pendulum
# --quick`): the same pipeline at a tiny budget (150 training steps, 20 s rollouts), about half
# a minute on one core. Its *models* are far from trained at that budget (their rows are there to
# show the measurement, not the answer); the truth's statistics are real. The converged run and
# its table are in [the double-pendulum page](../double_pendulum.md).

# %%
import json
import tempfile
import time
from pathlib import Path

import torch
from IPython.display import HTML, Image, display

from symplearn.experiments import double_pendulum

torch.set_num_threads(1)
t_start = time.perf_counter()

out = Path(tempfile.mkdtemp()) / "double-pendulum"
report = double_pendulum.run(double_pendulum.Config(quick=True, quiet=True, seed=0), out)
metrics = json.loads((out / "metrics.json").read_text())
print(f"quick run: {metrics['wall_time_s']:.1f} s; files:", sorted(p.name for p in out.iterdir()))

# %% [markdown]
# ## The truth: exponent against energy
#
# The largest Lyapunov exponent (Benettin's method over microcanonical ensembles) rises from
# near zero on the nearly regular low-energy shells to about 1/s around 3-5 mgl.

# %%
ly = metrics["truth"]["lyapunov_vs_energy"]
for e, m in zip(ly["energy"], ly["mean"]):
    print(f"E = {e:6.2f} J: mean largest exponent {m:.3f} /s")
display(Image(filename=str(out / "lyapunov_energy.png")))

# %% [markdown]
# ## The table of statistics
#
# One row per rollout (the truth under RK4, then each model with the integrator that suits
# it); `w1_*` are Wasserstein distances of the time-averaged marginals to the microcanonical
# ones, to be read against the truth's own row (the noise floor of this short run).

# %%
rows = metrics["rows"]
cols = ["integrator", "max_rel_energy_error", "energy_verdict", "lyapunov", "w1_q1", "w1_q2", "w1_kinetic"]


def cell(v):
    return f"{v:.3g}" if isinstance(v, float) else ("—" if v is None else str(v))


head = "".join(f"<th>{c}</th>" for c in ["row", *cols])
body = "".join(
    f"<tr><td>{name}</td>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>"
    for name, r in rows.items()
)
display(
    HTML(
        "<div style='overflow-x:auto'><table style='font-size:0.7em'>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )
)

# %% [markdown]
# ## Poincaré sections and marginals
#
# Sections at `q1 = 0`, `p1 > 0` on the 3 mgl shell, and the angle and kinetic-energy
# marginals of the rollouts against the microcanonical density (grey).

# %%
display(Image(filename=str(out / "poincare.png")))

# %%
display(Image(filename=str(out / "marginals.png")))

# %%
print(f"page executed in {time.perf_counter() - t_start:.1f} s")

# %% [markdown]
# With the full budget (`symplearn experiment double-pendulum`, about 15 minutes) the
# angle-periodic HNN matches the exponent to 2 % and the marginals within the noise floor, while
# no flow map keeps the statistics yet; see [the double pendulum](../double_pendulum.md).
