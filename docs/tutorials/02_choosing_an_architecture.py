# %% [markdown]
# # Choosing an architecture: the measured decision table
#
# Which model should you train for your system? The answer this library gives is a table of
# *measurements*, not of opinions: each model kind trained on the same data with the same
# budget, rolled out far beyond its training window with the integrator that suits it, and
# measured for what matters when you use it: the true energy's error over a long horizon, the
# state error, the time it took to train and what a rollout step costs.
#
# The full table is written by `symplearn experiment decision-guide` to
# `docs/results/decision_guide.json` (see [the decision guide](../decision_guide.md)). This page
# renders that file when it exists; when it does not, it measures a small version live (the
# spring and the pendulum, four families, a few hundred training steps each), so the numbers
# below are always real measurements made when the site was built.

# %%
import html
import json
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, display

import symplearn as sl
from symplearn.integrators import trace_flow
from symplearn.models import build_model

torch.set_num_threads(1)
t_start = time.perf_counter()


def find_results(name="docs/results/decision_guide.json"):
    """The experiment's JSON, looked for from here upwards (the page runs in docs/tutorials/)."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


path = find_results()
print("measured table:", path if path else "not found: measuring a small one live")

# %% [markdown]
# ## The live measurement (used only without the experiment's file)
#
# For each system: 32 trajectories of the truth (50 steps of 0.1 each), each model kind trained
# for the same number of Adam steps on them (300: a small budget, so that the page builds in
# under a minute; the experiment trains far longer), then rolled out from held-out states for
# 400 steps (8x the training window). Each kind uses its own default integrator: implicit
# midpoint for the HNN (symplectic for any learned energy), RK4 for the MLP and for the
# structured LNN (in `(q, q_dot)`), and a SympNet is its own symplectic map.

# %%
FAMILY = {
    "mlp": "unstructured",
    "hnn": "Hamiltonian",
    "lnn-structured": "Lagrangian",
    "sympnet-g": "symplectic flow map",
}


def measure(system_name, kinds=tuple(FAMILY), steps=300, dt=0.1, n_rollout=400, seed=0):
    system = sl.get_system(system_name)
    data = sl.generate_dataset(system_name, n_traj=32, dt=dt, n_steps=50, seed=seed)
    z0 = data.z[0, data.test_idx[:4]]
    truth = sl.reference_trajectory(system, z0, dt, n_rollout)
    n = system.n_dof
    rows = []
    for kind in kinds:
        torch.manual_seed(seed)
        model = build_model(kind, ignore_unused=True, n_dof=n, dt=dt, width=32, depth=2, layers=4).double()
        res = sl.fit(model, data, steps=steps, lr=3e-3, seed=seed, progress=False)
        model.eval()
        flow = sl.discretize(model, dt=dt)  # the kind's own integrator (a SympNet is its own map)
        integrator = getattr(getattr(flow, "integrator", None), "name", "own step")
        lagrangian = getattr(model, "state_kind", "canonical") == "lagrangian"
        x0 = torch.cat([z0[:, :n], system.velocities(z0[:, :n], z0[:, n:])], -1) if lagrangian else z0
        flow = trace_flow(flow, x0)  # replayed traced steps where the step allows it (explicit ones)
        t0 = time.perf_counter()
        x = sl.integrate(flow, x0, n_rollout, check_finite=False).z
        per_step = (time.perf_counter() - t0) / n_rollout
        z = torch.cat([x[..., :n], system.momenta(x[..., :n], x[..., n:])], -1) if lagrangian else x
        energy = sl.diagnostics.energy_error(system, z.detach())
        state_error = (z.detach() - truth.z).norm(dim=-1).mean(-1)
        rows.append(
            {
                "system": system_name,
                "family": FAMILY[kind],
                "model": kind,
                "integrator": integrator,
                "max_rel_energy_error": float(energy.max),
                "energy_verdict": energy.verdict,
                "state_error_t10": float(state_error[round(10 / dt)]),
                "train_time_s": float(res.wall_time),
                "rollout_us_per_step": 1e6 * per_step,
            }
        )
    return rows


if path is not None:
    table = json.loads(path.read_text())
    source = f"read from `{path.name}`"
else:
    table = {"rows": measure("oscillator") + measure("pendulum"), "note": "live, small budget"}
    source = "measured live while building this page (300 Adam steps, width 32, 400-step rollouts)"
rows = table["rows"]
print(len(rows), "rows;", source)

# %% [markdown]
# ## The table
#
# Every key of every row is shown, in the order it first appears, so the page follows the
# experiment's schema as it grows.


# %%
def fmt(value):
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}"
    if isinstance(value, (list, dict)):
        return html.escape(json.dumps(value))
    return html.escape(str(value))


def html_table(rows):
    keys = list(dict.fromkeys(k for row in rows for k in row))
    numeric = {k for k in keys if all(isinstance(r.get(k), (int, float)) for r in rows if k in r)}
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td style='text-align:{'right' if k in numeric else 'left'}'>{fmt(r.get(k, ''))}</td>"
            for k in keys
        )
        + "</tr>"
        for r in rows
    )
    return (
        "<div style='overflow-x:auto'><table style='font-size:0.7em'>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


display(HTML(html_table(rows)))

# %% [markdown]
# ## One column, per system
#
# The bar chart shows the energy column (the first numeric column whose name mentions
# energy, or else the first numeric column), one panel per system, on a log scale: an order of
# magnitude is the difference that matters here.

# %%
keys = list(dict.fromkeys(k for row in rows for k in row))


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# a numeric column: every value present is a number (missing and null values are skipped)
numeric = [
    k
    for k in keys
    if any(is_number(r.get(k)) for r in rows) and all(is_number(r[k]) for r in rows if r.get(k) is not None)
]
if not numeric:
    print("no numeric column to chart")
else:
    column = next((k for k in numeric if "energy" in k), numeric[0])
    systems = list(dict.fromkeys(r.get("system", "") for r in rows))
    fig, axes = plt.subplots(1, len(systems), figsize=(4.2 * len(systems), 3.4), squeeze=False)
    for ax, system_name in zip(axes[0], systems):
        sub = [
            r
            for r in rows
            if r.get("system", "") == system_name and is_number(r.get(column)) and math.isfinite(r[column])
        ]
        labels = [str(r.get("model", "?")) for r in sub]
        values = [max(float(r[column]), 1e-16) for r in sub]
        ax.bar(labels, values, color=[f"C{i}" for i in range(len(sub))])
        ax.set_yscale("log")
        ax.set_title(system_name)
        ax.tick_params(axis="x", labelrotation=30)
    axes[0][0].set_ylabel(column)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Reading it
#
# What the full experiments measured (see [the results](../results.md)); the small live table
# above is trained for a few hundred steps only, so its ordering can differ from theirs:
#
# * An **HNN** rolled out with a symplectic integrator keeps the true energy in a band; it is
#   the default for a conservative system whose state you know as `(q, p)`.
# * An **MLP** fits the slopes as well but its field has divergence, so its energy drifts.
# * A **structured LNN** is the choice when you observe positions and velocities rather than
#   momenta; its RK4 rollout drifts only by RK4's own error.
# * A **SympNet** is a symplectic map at a fixed step: cheap per step, but it has to learn the
#   whole step, so on non-separable or chaotic flows it fits worse (see
#   [the double pendulum](../double_pendulum.md)).

# %%
print(f"page executed in {time.perf_counter() - t_start:.1f} s")
