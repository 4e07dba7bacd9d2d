"""Figures: what a reader must be able to tell apart."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from symplearn import plotting  # noqa: E402


def test_a_family_drawn_twice_stays_visible_where_the_curves_coincide():
    """The spring demo draws the MLP under RK4 and under implicit midpoint: the same colour, and
    the curves overlap. The second gets another line style and open markers; the others none."""
    t = np.linspace(0.01, 10.0, 200)
    err = 1e-3 * t
    fig = plotting.energy_error_figure(t, {"hnn": 1e-4 + 0 * t, "mlp": err, "mlp-implicit-midpoint": err})
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    mlp, mlp_im, hnn = lines["mlp"], lines["mlp-implicit-midpoint"], lines["hnn"]
    assert mlp.get_color() == mlp_im.get_color() and mlp.get_linestyle() != mlp_im.get_linestyle()
    assert mlp_im.get_marker() == "o" and mlp.get_marker() in ("None", None, "")
    assert hnn.get_marker() in ("None", None, "")
    np.testing.assert_array_equal(mlp_im.get_ydata(), mlp.get_ydata())
