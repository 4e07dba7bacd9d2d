"""Seed ensembles (training/ensemble.py): model k of an ensemble is the model fit() trains with
seed k, to round-off; the ensemble is saved as ordinary model folders plus a summary."""

import json

import pytest
import torch

from symplearn import SymplearnError
from symplearn.datasets import generate_dataset
from symplearn.modelio import load_model
from symplearn.models import build_model
from symplearn.plotting import fit_loss_figure
from symplearn.training import fit, seed_everything
from symplearn.training.ensemble import SUMMARY_NAME, fit_ensemble

STEPS = 40


@pytest.fixture(scope="module")
def data():
    return generate_dataset("pendulum", n_traj=8, dt=0.1, n_steps=20, seed=0)


def _single(cfg, data, seed, **kw):
    seed_everything(seed)
    model = build_model(**cfg).double()
    result = fit(model, data, steps=STEPS, batch_size=32, seed=seed, progress=False, **kw)
    return model, result


@pytest.mark.parametrize(
    "cfg",
    [
        {"kind": "hnn", "n_dof": 1, "width": 16, "depth": 2},  # batched closed-form path (bmm)
        {"kind": "hnn-separable", "n_dof": 1, "width": 16, "depth": 2, "activation": "softplus"},
        {"kind": "mlp", "n_dof": 1, "width": 16, "depth": 2},  # generic vmap path
    ],
    ids=["hnn", "hnn-separable", "mlp"],
)
def test_model_k_equals_fit_with_seed_k(cfg, data):
    # Per-model minibatches from seed k's sampler, elementwise Adam, per-model clipping: the
    # only difference from fit() is the summation order inside bmm, so float64 weights agree to
    # round-off after 40 steps (measured: <= 6e-17; 1e-12 leaves room for BLAS differences).
    ens = fit_ensemble(
        cfg,
        data,
        seeds=[0, 1, 2],
        steps=STEPS,
        batch_size=32,
        dtype=torch.float64,
        grad_clip=0.5,
        progress=False,
    )
    for k, seed in enumerate(ens.seeds):
        model, result = _single(cfg, data, seed, grad_clip=0.5)
        for name, w in model.state_dict().items():
            torch.testing.assert_close(ens.models[k].state_dict()[name], w, rtol=0, atol=1e-12)
        assert ens.results[k].train_loss == pytest.approx(result.train_loss, rel=1e-10)
        assert ens.results[k].test_loss == pytest.approx(result.test_loss, rel=1e-10)
        assert ens.results[k].history["step"] == result.history["step"]
        torch.testing.assert_close(
            torch.tensor(ens.results[k].history["train_loss"]),
            torch.tensor(result.history["train_loss"]),
            rtol=1e-10,
            atol=0,
        )
    # different seeds really are different models
    w0, w1 = (m.state_dict()[next(iter(m.state_dict()))] for m in ens.models[:2])
    assert (w0 - w1).abs().max() > 1e-3


def test_saved_folders_and_summary(data, tmp_path):
    cfg = {"kind": "hnn", "n_dof": 1, "width": 8, "depth": 1}
    ens = fit_ensemble(cfg, data, seeds=[3, 5], steps=5, batch_size=16, progress=False)
    ens.save(tmp_path / "ens", config={"note": "test"}, loss_figure=fit_loss_figure)
    summary = json.loads((tmp_path / "ens" / SUMMARY_NAME).read_text())
    assert summary["k"] == 2 and summary["seeds"] == [3, 5] and summary["folders"] == ["seed-3", "seed-5"]
    losses = torch.tensor(summary["test_loss"], dtype=torch.float64)
    assert summary["test_loss_stats"]["mean"] == pytest.approx(float(losses.mean()), rel=1e-12)
    assert summary["test_loss_stats"]["std"] == pytest.approx(float(losses.std()), rel=1e-12)
    for k, seed in enumerate([3, 5]):
        loaded = load_model(tmp_path / "ens" / f"seed-{seed}")
        for name, w in ens.models[k].state_dict().items():
            assert torch.equal(loaded.state_dict()[name], w)
        config = json.loads((tmp_path / "ens" / f"seed-{seed}" / "config.json").read_text())
        assert config["training"]["seed"] == seed and config["note"] == "test"
        assert (tmp_path / "ens" / f"seed-{seed}" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ens.save(tmp_path / "bare")  # no figure drawer: no loss.png, the rest as before
    assert not (tmp_path / "bare" / "seed-3" / "loss.png").exists()
    assert (tmp_path / "bare" / "seed-3" / "model.safetensors").is_file()


def test_bad_input(data):
    with pytest.raises(SymplearnError, match="distinct"):
        fit_ensemble({"kind": "hnn", "n_dof": 1}, data, seeds=[1, 1], steps=1)
    with pytest.raises(SymplearnError, match="rollout"):
        fit_ensemble({"kind": "sympnet-la", "n_dof": 1, "dt": 0.1}, data, seeds=2, steps=1)
    with pytest.raises(SymplearnError, match="model_config"):
        fit_ensemble("hnn", data, seeds=2, steps=1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none present here)")
def test_ensemble_on_cuda_matches_cpu(data):
    # float64 on both devices, same seeds and batches: CUDA kernels sum in other orders, so
    # agreement to round-off amplified over 40 Adam steps (bound 1e-9; not run here: no GPU)
    cfg = {"kind": "hnn", "n_dof": 1, "width": 16, "depth": 2}
    kw = {"seeds": [0, 1], "steps": STEPS, "batch_size": 32, "dtype": torch.float64, "progress": False}
    cpu = fit_ensemble(cfg, data, **kw)
    gpu_run = fit_ensemble(cfg, data, device="cuda", **kw)
    for a, b in zip(cpu.models, gpu_run.models):
        for name, w in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[name].cpu(), w, rtol=0, atol=1e-9)
