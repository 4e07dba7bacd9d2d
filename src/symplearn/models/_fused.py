r"""The fused CPU force kernel of the radial-descriptor potentials (MD's stepping path).

Eager torch evaluates a symmetry-function force as some forty array operations over the
``(pairs, K)`` Gaussians (gathers, scatters, exponentials, products), each a pass through memory:
at N = 108 about 2.5 times the cost of the true Lennard-Jones force. This module does the pair
work in two C loops, one pass over the neighbour pairs each, with the network left to torch:

1. for each listed pair within ``rc``: the minimum-image separation, ``r``, the envelope and the K
   Gaussians; ``b = e f_c`` added to the descriptors ``G_i`` and ``G_j``; the pair's row
   ``(d, r, f_c, f_c', e_1..e_K)`` kept;
2. torch: ``c = dE/dG`` (or the direct model's stand-in) from the standardised descriptors;
3. for each kept row: ``s_ij = -((c_i + c_j) . db/dr) / r`` and ``f_ij = s_ij d`` added to
   ``F_i``, subtracted from ``F_j``.

The Gaussians ``e_k = exp(-(r - mu_k)^2 / (2 h^2))`` on the evenly spaced centres
``g_k = mu_0 + k h`` of :class:`~symplearn.models.potentials.RadialBasis` take two exponentials
a pair, not K: from the nearest centre ``k0`` (``u = (r - g_k0) / h``, ``|u| <= 1/2``),
``e_{k0 +- m} = exp(-u^2/2) exp(+-u)^m exp(-m^2/2)``. The centres the model stores are used
exactly: where they sit off the grid by ``dl_k`` (a model saved in float32 and run in float64:
``|dl_k|`` about 1e-8), each ``e_k`` is multiplied by ``exp(y_k)``,
``y_k = (2 (r - g_k) - dl_k) dl_k / (2 h^2)``, by its Taylor series (``|y_k| < 1e-4``), so the
forces stay the gradient of the eager energy of the same stored numbers. All arithmetic is in
float64 whatever the tensors' precision; in float64 the forces agree with the eager path to a few
ulps (tested), so they stay ``-grad E`` of the eager energy.

The loops are serial, in pair order: the same numbers on every run. The library is compiled once
per process (about a second) by the system's C compiler into a private temporary folder and
loaded from there (no cache that another user could write). Without a compiler, or with
``SYMPLEARN_FUSED=0`` in the environment, the models keep the eager path, with the same numbers
to rounding; :func:`status` says which.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch
from torch import Tensor

#: the largest number of radial functions the kernel takes (its stack arrays)
MAX_K = 64

_SOURCE = r"""
#include <math.h>
#include <stdint.h>

#define MAXK 64

static inline double min_image(double d, double L, double invL) {
    double t = d * invL;
    if (!(fabs(t) < 4.0e18)) return NAN; /* non-finite or absurd: flagged by the caller */
    double k = (double)(int64_t)(t + (t >= 0.0 ? 0.5 : -0.5)); /* nearest whole box */
    return d - L * k;
}

#define DEFINE(SUFFIX, T)                                                                        \
int64_t sl_g2_##SUFFIX(const T *x, const int64_t *pi, const int64_t *pj, int64_t P, double L,    \
                       double rc, const double *mu, double h, int64_t K, T *G, double *rows,     \
                       int64_t *kept) {                                                          \
    double cm[MAXK], ya[MAXK], yb[MAXK], mu0 = mu[0];                                            \
    int64_t off = 0; /* centres off the even grid g_k = mu0 + k h by dl_k */                     \
    for (int64_t m = 0; m < K; ++m) {                                                            \
        double g = mu0 + (double)m * h, dl = mu[m] - g;                                          \
        cm[m] = exp(-0.5 * (double)m * (double)m);                                               \
        /* y_m = (2 (r - g) - dl) dl / 2h^2 = ya_m + yb_m r */                                  \
        ya[m] = -(2.0 * g + dl) * dl / (2.0 * h * h);                                            \
        yb[m] = dl / (h * h);                                                                    \
        off |= dl != 0.0;                                                                        \
    }                                                                                            \
    double rc2 = rc * rc, inv_rc2 = 1.0 / rc2, invL = 1.0 / L, invh = 1.0 / h;                   \
    int64_t W = K + 6, n = 0, bad = 0;                                                           \
    for (int64_t p = 0; p < P; ++p) {                                                            \
        const T *xi = x + 3 * pi[p], *xj = x + 3 * pj[p];                                       \
        double d0 = min_image((double)xi[0] - (double)xj[0], L, invL);                           \
        double d1 = min_image((double)xi[1] - (double)xj[1], L, invL);                           \
        double d2 = min_image((double)xi[2] - (double)xj[2], L, invL);                           \
        double r2 = d0 * d0 + d1 * d1 + d2 * d2;                                                 \
        if (!(r2 < rc2)) {                                                                       \
            bad |= !(r2 >= rc2) || r2 == HUGE_VAL; /* NaN or inf: a non-finite position */       \
            continue;                                                                            \
        }                                                                                        \
        double *row = rows + W * n;                                                              \
        kept[2 * n] = pi[p];                                                                     \
        kept[2 * n + 1] = pj[p];                                                                 \
        ++n;                                                                                     \
        double r = sqrt(r2), one = 1.0 - r2 * inv_rc2, fc = one * one * one;                     \
        row[0] = d0; row[1] = d1; row[2] = d2; row[3] = r; row[4] = fc;                          \
        row[5] = -6.0 * r * inv_rc2 * one * one;                                                 \
        double *e = row + 6;                                                                     \
        double t = (r - mu0) * invh;                                                             \
        int64_t k0 = t < 0.0 ? 0 : (int64_t)(t + 0.5);                                           \
        if (k0 > K - 1) k0 = K - 1;                                                              \
        double u = t - (double)k0;                                                               \
        double g = exp(-0.5 * u * u), a = exp(u), ia = 1.0 / a, v = g, w = g;                    \
        e[k0] = g;                                                                               \
        for (int64_t m = 1; k0 + m < K; ++m) { v *= a; e[k0 + m] = v * cm[m]; }                  \
        for (int64_t m = 1; k0 - m >= 0; ++m) { w *= ia; e[k0 - m] = w * cm[m]; }                \
        if (off) /* exp(-(r - mu_k)^2 / 2h^2) = e_k exp(y_k); |y_k| < 1e-4: 4 terms, to 1e-17 */  \
            for (int64_t k = 0; k < K; ++k) {                                                    \
                double y = ya[k] + yb[k] * r;                                                    \
                e[k] *= 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0)));                           \
            }                                                                                    \
        T *gi = G + K * pi[p], *gj = G + K * pj[p];                                             \
        for (int64_t k = 0; k < K; ++k) {                                                        \
            double b = e[k] * fc;                                                                \
            gi[k] += b;                                                                          \
            gj[k] += b;                                                                          \
        }                                                                                        \
    }                                                                                            \
    return bad ? -1 : n;                                                                         \
}                                                                                                \
void sl_forces_##SUFFIX(const double *rows, const int64_t *kept, int64_t n, const double *mu,    \
                        double h, int64_t K, const T *c, T *F, double *V, int64_t n_per) {       \
    double two_eta = 1.0 / (h * h);                                                              \
    int64_t W = K + 6;                                                                           \
    for (int64_t p = 0; p < n; ++p) {                                                            \
        const double *row = rows + W * p, *e = row + 6;                                          \
        int64_t i = kept[2 * p], j = kept[2 * p + 1];                                            \
        const T *ci = c + K * i, *cj = c + K * j;                                                \
        double r = row[3], fc = row[4], dfc = row[5], s1 = 0.0, s2 = 0.0;                        \
        for (int64_t k = 0; k < K; ++k) {                                                        \
            double ce = ((double)ci[k] + (double)cj[k]) * e[k];                                  \
            s1 += ce;                                                                            \
            s2 += ce * (r - mu[k]);                                                              \
        }                                                                                        \
        /* db_k/dr = e_k (f_c' - 2 eta (r - mu_k) f_c), 2 eta = 1 / h^2 */                       \
        double s = -(dfc * s1 - two_eta * fc * s2) / r;                                          \
        T *fi = F + 3 * i, *fj = F + 3 * j;                                                     \
        fi[0] += s * row[0]; fi[1] += s * row[1]; fi[2] += s * row[2];                           \
        fj[0] -= s * row[0]; fj[1] -= s * row[1]; fj[2] -= s * row[2];                           \
        if (V) { /* virial tensor of the pair's replica: sum s_ij d (x) d */                      \
            double *w = V + 9 * (i / n_per);                                                     \
            for (int a = 0; a < 3; ++a)                                                          \
                for (int b = 0; b < 3; ++b) w[3 * a + b] += s * row[a] * row[b];                 \
        }                                                                                        \
    }                                                                                            \
}

DEFINE(f64, double)
DEFINE(f32, float)
"""

_lock = threading.Lock()
_state: dict = {}  # "lib": the loaded library or None, "reason": why not


def compiler() -> str | None:
    """The C compiler the kernel is built with: ``$CC``, else the first of cc, gcc, clang on the
    PATH; ``None`` when there is none."""
    return os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)


def _build() -> tuple[ctypes.CDLL | None, str]:
    if os.environ.get("SYMPLEARN_FUSED", "1").strip() == "0":
        return None, "disabled by SYMPLEARN_FUSED=0"
    cc = compiler()
    if cc is None:
        return None, "no C compiler found (cc, gcc, clang or $CC)"
    folder = Path(tempfile.mkdtemp(prefix="symplearn-fused-"))  # private (mode 0700)
    try:
        src, lib = folder / "radial.c", folder / "radial.so"
        src.write_text(_SOURCE, encoding="utf-8")
        cmd = [*cc.split(), "-O3", "-shared", "-fPIC", "-o", str(lib), str(src), "-lm"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"{cc} failed to run ({type(exc).__name__}: {exc})"
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["no message"]
            first = next((ln for ln in lines if "error" in ln), lines[0])
            return None, f"{cc} could not compile the kernel ({first.strip()})"
        try:
            handle = ctypes.CDLL(str(lib))
        except OSError as exc:
            return None, f"the compiled kernel could not be loaded ({exc})"
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the mapping stays valid once loaded
    P, D, I = ctypes.c_void_p, ctypes.c_double, ctypes.c_int64
    for s in ("f64", "f32"):
        g2 = getattr(handle, f"sl_g2_{s}")
        g2.argtypes, g2.restype = [P, P, P, I, D, D, P, D, I, P, P, P], I
        fo = getattr(handle, f"sl_forces_{s}")
        fo.argtypes, fo.restype = [P, P, I, P, D, I, P, P, P, I], None
    return handle, ""


def library() -> ctypes.CDLL | None:
    """The compiled kernel (built on the first call of the process), or ``None`` where it cannot
    be had (see :func:`status`)."""
    if "lib" not in _state:
        with _lock:
            if "lib" not in _state:
                lib, reason = _build()
                _state["reason"] = reason  # before "lib": a reader that sees "lib" finds both
                _state["lib"] = lib
    return _state["lib"]


def status() -> str:
    """``"available"``, or why the eager path is used (no compiler, a compile error, disabled)."""
    return "available" if library() is not None else _state["reason"]


@torch.compiler.disable  # C writes into torch buffers: torch.compile must not trace through them
def radial_forces(x: Tensor, i: Tensor, j: Tensor, box: float, cutoff: float, mu: Tensor, h: float,
                  coefficients, virial_replicas: int = 0):  # fmt: skip
    """Forces of a radial-descriptor model at positions ``x (M, 3)`` (float32 or float64, CPU).

    Args:
        x: positions of all M particles of all replicas ``(M, 3)``.
        i, j: the listed pairs (global particle indices ``b n + a``, int64) ``(P,)``; pairs at
            ``r >= cutoff`` are skipped.
        box: the cubic box length L (minimum image); cutoff: rc.
        mu: the K centres ``(K,)`` (at most :data:`MAX_K`), within ``1e-6 h`` of the even grid
            ``mu_0 + k h`` (:meth:`~symplearn.models.potentials.RadialBasis.grid`); h: the
            spacing, with ``eta = 1 / (2 h^2)``.
        coefficients: ``G (M, K)`` raw descriptor sums -> ``c (M, K)``, the per-particle
            coefficients of ``db/dr`` (``dE/dG_raw`` for a conservative model).
        virial_replicas: B > 0 also sums the virial tensor of each of B replicas of ``M / B``
            particles.

    Returns:
        ``(forces (M, 3), virial tensor (B, 3, 3) or None)`` in x's dtype, with
        ``F_i = sum_j s_ij (x_i - x_j)`` and ``W = sum_{i<j} s_ij d_ij (x) d_ij``.
    """
    lib = library()
    if lib is None:  # pragma: no cover - callers check library() first
        raise RuntimeError(f"the fused kernel is not available: {status()}")
    suffix = "f64" if x.dtype == torch.float64 else "f32"
    x = x.contiguous()
    mu = mu.detach().to("cpu", torch.float64).contiguous()
    K = mu.shape[0]
    M, P = x.shape[0], i.shape[0]
    G = torch.zeros(M, K, dtype=x.dtype)
    rows = torch.empty(P, K + 6, dtype=torch.float64)
    kept = torch.empty(P, 2, dtype=torch.int64)
    n = getattr(lib, f"sl_g2_{suffix}")(
        x.data_ptr(), i.data_ptr(), j.data_ptr(), P, box, cutoff, mu.data_ptr(), h, K, G.data_ptr(),
        rows.data_ptr(), kept.data_ptr(),
    )  # fmt: skip
    nonfinite = n < 0  # a NaN separation (non-finite positions): NaN results, caught at the step
    if nonfinite:
        G.fill_(float("nan"))
        n = 0
    c = coefficients(G).to(x.dtype).contiguous()
    F = torch.full((M, 3), float("nan"), dtype=x.dtype) if nonfinite else torch.zeros(M, 3, dtype=x.dtype)
    W = torch.zeros(virial_replicas, 3, 3, dtype=torch.float64) if virial_replicas else None
    forces = getattr(lib, f"sl_forces_{suffix}")
    forces(
        rows.data_ptr(), kept.data_ptr(), n, mu.data_ptr(), h, K, c.data_ptr(), F.data_ptr(),
        None if W is None else W.data_ptr(), M // max(1, virial_replicas),
    )  # fmt: skip
    if W is not None and nonfinite:
        W.fill_(float("nan"))
    return F, None if W is None else W.to(x.dtype)
