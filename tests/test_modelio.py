"""Model folders: a save/load round trip reproduces every model kind exactly; the folder holds
weights, config, metrics and the loss curve; another version, weights that do not match the
config, files that are not safetensors (a pickle above all: never unpickled), non-finite weights
and missing files are refused with clear errors."""

import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save as save_safetensors

import symplearn as sl
from symplearn import __version__
from symplearn._files import COMPLETE_NAME
from symplearn.datasets import generate_dataset
from symplearn.modelio import (
    CONFIG_NAME,
    LOSS_FIGURE_NAME,
    METRICS_NAME,
    WEIGHTS_NAME,
    load_model,
    load_run_config,
    save_model,
)
from symplearn.models import MODELS, build_model
from symplearn.plotting import fit_loss_figure
from symplearn.systems.particles import ParticleSystem
from symplearn.training import fit, seed_everything

# torch's forward-mode AD (LNN second derivatives) compiles its decompositions with TorchScript
# on first use and warns that TorchScript is deprecated: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

KINDS = {
    "mlp": {"width": 16},
    "hnn": {"width": 16},
    "hnn-separable": {"width": 16},
    "lnn": {"width": 16},
    "sympnet-la": {"dt": 0.1},
    "sympnet-g": {"dt": 0.1, "width": 8},
    "sympnet-grad": {"dt": 0.1, "width": 8},
    "sympnet-p": {"dt": 0.1, "layers": 3, "width": 4},
    "lnn-structured": {"width": 8, "angles": True},
    "dhnn": {"width": 16},
    "phnn": {"width": 16},
    "mlp-t": {"width": 16},
    "hnn-angles": {"width": 16},
    "hnn-translation": {"width": 16},
    "hnn-translation-separable": {"width": 16},
    "hnn-rotation": {"width": 16},
    "hnn-rotation-separable": {"width": 16},
}


def make(kind="hnn", dtype=torch.float64, seed=0, **overrides):
    seed_everything(seed)
    return build_model(kind, n_dof=2, **{**KINDS[kind], **overrides}).to(dtype)


def outputs(model, z):
    """What a model computes: its step (flow maps) or vector field, and its energy if any."""
    out = [model.step(0.0, z) if isinstance(model, sl.FlowMap) else model.vector_field(0.0, z)]
    if model.kind in ("hnn", "hnn-separable"):
        out.append(model.hamiltonian(z))
    return [o.detach() for o in out]


def test_every_kind_is_covered():
    # the learned interatomic potentials (particles in a box) have their own folder tests
    assert set(KINDS) == {k for k, cls in MODELS.items() if not issubclass(cls, ParticleSystem)}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_round_trip_reproduces_the_model_exactly(kind, dtype, tmp_path):
    model = make(kind, dtype)
    z = torch.randn(7, 4, dtype=dtype, generator=torch.Generator().manual_seed(1))
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    assert all(p.dtype == dtype for p in loaded.parameters())
    for a, b in zip(outputs(model, z), outputs(loaded, z)):
        assert torch.equal(a, b)
    # different weights give different outputs: the comparison above is not vacuous
    other = make(kind, dtype, seed=1)
    assert not torch.equal(outputs(other, z)[0], outputs(model, z)[0])


def test_folder_holds_weights_config_metrics_and_loss_curve(tmp_path):
    data = generate_dataset("oscillator", n_traj=6, dt=0.1, n_steps=20, seed=0)
    seed_everything(0)
    model = build_model("hnn", n_dof=1, width=16)
    result = fit(model, data, steps=20, batch_size=32, lr=3e-3, progress=False)
    folder = save_model(
        model, tmp_path / "run", result=result, config={"note": "test"}, loss_figure=fit_loss_figure(result)
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [WEIGHTS_NAME, CONFIG_NAME, METRICS_NAME, LOSS_FIGURE_NAME, COMPLETE_NAME]
    )
    config = json.loads((folder / CONFIG_NAME).read_text())
    assert config["symplearn_version"] == __version__ and config["dtype"] == "float32"
    assert config["model"] == model.config
    assert config["system"] == {"name": "oscillator", "params": {"omega": 1.0}}
    assert config["data"]["n_trajectories"] == 6 and config["data"]["dt"] == 0.1
    training = config["training"]
    assert (training["steps"], training["lr"], training["batch_size"], training["loss"]) == (
        20,
        3e-3,
        32,
        "derivative",
    )
    assert config["provenance"]["torch_version"] == torch.__version__ and config["note"] == "test"
    metrics = json.loads((folder / METRICS_NAME).read_text())
    assert metrics["train_loss"] == result.train_loss and metrics["test_loss"] == result.test_loss
    assert metrics["steps"] == 20 and metrics["wall_time_s"] == result.wall_time > 0
    assert (folder / LOSS_FIGURE_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_run_config(folder) == config
    z = data.z[:, 0].float()
    assert torch.equal(load_model(folder).vector_field(0.0, z), model.vector_field(0.0, z))


def test_saving_again_replaces_files_and_keeps_others(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "checkpoint.pt").write_bytes(b"x")
    save_model(make(seed=0), tmp_path)
    model = make(seed=1)
    save_model(model, tmp_path)
    z = torch.randn(3, 4, dtype=torch.float64)
    assert torch.equal(load_model(tmp_path).vector_field(0.0, z), model.vector_field(0.0, z))
    assert (tmp_path / "checkpoint" / "checkpoint.pt").read_bytes() == b"x"
    # no temporary leftovers (the completion marker is the one dot-file a folder holds)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.name != COMPLETE_NAME]


def edit_config(folder, fn):
    path = folder / CONFIG_NAME
    config = json.loads(path.read_text())
    fn(config)
    path.write_text(json.dumps(config))


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "m"
    save_model(make(), folder)
    return folder


def test_other_major_minor_version_is_refused(saved):
    major, minor, *_ = __version__.split(".")
    same = f"{major}.{minor}.99"
    edit_config(saved, lambda c: c.update(symplearn_version=same))
    load_model(saved)  # a patch release reads the folder
    for other in (f"{major}.{int(minor) + 1}.0", f"{int(major) + 1}.{minor}.0"):
        edit_config(saved, lambda c, v=other: c.update(symplearn_version=v))
        with pytest.raises(sl.SymplearnError, match=rf"written by symplearn {other}.*this is symplearn"):
            load_model(saved)
    edit_config(saved, lambda c: c.pop("symplearn_version"))
    with pytest.raises(sl.SymplearnError, match="records no symplearn_version"):
        load_model(saved)


def test_weights_that_do_not_match_the_config_are_refused(saved):
    edit_config(saved, lambda c: c["model"].update(width=32))
    with pytest.raises(
        sl.SymplearnError,
        match=r"tensor 'energy_net.hidden.0.weight' has shape \(16, 4\) "
        r"in the weights but \(32, 4\)",
    ):
        load_model(saved)
    edit_config(saved, lambda c: c["model"].update(width=16, depth=3))
    with pytest.raises(sl.SymplearnError, match="missing tensors energy_net.hidden.2.bias"):
        load_model(saved)
    edit_config(saved, lambda c: c["model"].update(depth=2, kind="mlp"))
    with pytest.raises(sl.SymplearnError, match="unexpected tensors energy_net"):
        load_model(saved)
    edit_config(saved, lambda c: c["model"].update(kind="hnn", dtype="float32"))
    with pytest.raises(sl.SymplearnError, match="does not describe a 'hnn' model.*unknown argument dtype"):
        load_model(saved)
    edit_config(saved, lambda c: (c["model"].pop("dtype"), c.update(dtype="float32")))
    with pytest.raises(sl.SymplearnError, match="float64 in the weights but the config says torch.float32"):
        load_model(saved)
    edit_config(saved, lambda c: (c.update(dtype="float64"), c["model"].update(kind="transformer")))
    with pytest.raises(sl.SymplearnError, match="unknown model kind 'transformer'.*hnn-separable"):
        load_model(saved)


class _Exploit:
    """Unpickling this would create a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_named_model_safetensors_is_refused_without_unpickling(saved, tmp_path):
    marker = tmp_path / "pwned"
    (saved / WEIGHTS_NAME).write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(sl.SymplearnError, match="is not a valid safetensors file"):
        load_model(saved)
    assert not marker.exists()
    # a torch.save'd state dict (a zip of pickles) is refused too
    torch.save(make().state_dict(), saved / WEIGHTS_NAME)
    with pytest.raises(sl.SymplearnError, match="is not a valid safetensors file"):
        load_model(saved)


def test_corrupted_weights_are_refused(saved):
    path = saved / WEIGHTS_NAME
    good = path.read_bytes()
    for bad in (good[: len(good) // 2], b"", struct.pack("<Q", 2**40) + b"{}", b"\x00" * 64):
        path.write_bytes(bad)
        with pytest.raises(sl.SymplearnError, match="not a valid safetensors file"):
            load_model(saved)


def test_non_finite_weights_are_refused_on_save_and_on_load(saved, tmp_path):
    model = make()
    with torch.no_grad():
        model.energy_net.out.bias.fill_(float("nan"))
    with pytest.raises(sl.NonFiniteError, match="energy_net.out.bias"):
        save_model(model, tmp_path / "nan")
    assert not (tmp_path / "nan").exists()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    (saved / WEIGHTS_NAME).write_bytes(save_safetensors(state))
    with pytest.raises(sl.NonFiniteError, match="energy_net.out.bias"):
        load_model(saved)


def test_missing_or_invalid_files_give_clear_errors(saved, tmp_path):
    with pytest.raises(sl.SymplearnError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (saved / WEIGHTS_NAME).rename(tmp_path / "w")
    with pytest.raises(sl.SymplearnError, match=f"has no {WEIGHTS_NAME}"):
        load_model(saved)
    (saved / CONFIG_NAME).write_text("{not json")
    with pytest.raises(sl.SymplearnError, match="is not valid JSON"):
        load_model(saved)
    (saved / CONFIG_NAME).unlink()
    with pytest.raises(sl.SymplearnError, match=f"has no {CONFIG_NAME}"):
        load_model(saved)


def test_save_refuses_reserved_config_keys_and_non_models(tmp_path):
    with pytest.raises(sl.SymplearnError, match="config keys model are reserved"):
        save_model(make(), tmp_path, config={"model": {}})
    with pytest.raises(sl.SymplearnError, match="needs a symplearn model"):
        save_model(torch.nn.Linear(2, 2), tmp_path)
