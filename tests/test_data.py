"""Data sets: the reference integration against scipy's DOP853, exact time derivatives, seeded
noise, the split by trajectory, (z_t, z_{t+k}) pairs, and safe, exact files."""

import json
import zipfile

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import symplearn as sl
from symplearn._errors import NonFiniteError, SymplearnError
from symplearn.datasets import Dataset, generate_dataset
from symplearn.geometry import symplectic_gradient
from symplearn.systems import get_system

F64 = torch.float64


def scipy_reference(system, z0, t):
    """DOP853 at rtol = atol = 1e-12, one trajectory at a time: (T, K, 2n) numpy."""

    def rhs(_, y):
        return system.vector_field(0.0, torch.from_numpy(y)).numpy()

    out = []
    for y0 in z0.numpy():
        sol = solve_ivp(
            rhs, (float(t[0]), float(t[-1])), y0, method="DOP853", t_eval=t.numpy(), rtol=1e-12, atol=1e-12
        )
        assert sol.success
        out.append(sol.y.T)
    return np.stack(out, axis=1)


@pytest.mark.parametrize(
    ("system", "dt", "n_steps"),
    [
        (get_system("pendulum"), 0.1, 50),  # 5 s, energies up to half the separatrix
        (get_system("double-pendulum", m1=1.2, l2=0.8), 0.05, 40),  # 2 s of chaotic motion
        (get_system("henon-heiles"), 0.5, 20),  # 10 s
    ],
    ids=["pendulum", "double-pendulum", "henon-heiles"],
)
def test_reference_trajectories_agree_with_scipy_dop853(system, dt, n_steps):
    ds = generate_dataset(system, n_traj=3, dt=dt, n_steps=n_steps, seed=1)
    assert ds.metadata["integrator"] == "gauss-legendre-6"
    assert ds.t.shape == (n_steps + 1,) and ds.z.shape == (n_steps + 1, 3, system.dim)
    assert float(ds.t[-1]) == pytest.approx(dt * n_steps, rel=1e-14)
    ref = scipy_reference(system, ds.z[0], ds.t)
    scale = np.abs(ref).max(axis=(0, 2))  # per trajectory
    rel = (np.abs(ds.z.numpy() - ref).max(axis=(0, 2)) / scale).max()
    assert rel < 1e-9, rel
    # and the states really moved over the span
    assert float((ds.z - ds.z[0]).abs().max()) > 0.5 * float(scale.min())


@pytest.mark.parametrize("name", ["pendulum", "double-pendulum", "kepler-polar"])
def test_dzdt_is_the_exact_time_derivative_of_the_saved_states(name):
    system = get_system(name)
    h = 2.5e-4
    ds = generate_dataset(system, n_traj=4, dt=h, n_steps=8, substeps=2, seed=2)
    # the analytic field at the clean states, equal to J grad H by autograd
    assert torch.allclose(ds.dzdt, symplectic_gradient(system.hamiltonian, ds.z), rtol=1e-12, atol=1e-12)
    # and the derivative of the stored trajectory: 5-point central differences, error O(h^4)
    z = ds.z
    fd = (z[:-4] - 8 * z[1:-3] + 8 * z[3:-1] - z[4:]) / (12 * h)
    rel = float((fd - ds.dzdt[2:-2]).abs().max() / ds.dzdt.abs().max())
    assert rel < 1e-9, rel


def test_noise_only_when_asked_and_seeded():
    kw = dict(n_traj=20, dt=0.1, n_steps=50, substeps=1, seed=3)
    clean = generate_dataset("pendulum", **kw)
    assert clean.metadata["noise_std"] == 0.0
    noisy = generate_dataset("pendulum", noise_std=0.05, **kw)
    assert noisy.metadata["noise_std"] == 0.05
    # same initial states and split: the noise generator is independent of the others
    assert torch.equal(noisy.train_idx, clean.train_idx)
    dz, dd = noisy.z - clean.z, noisy.dzdt - clean.dzdt
    N = dz.numel()  # 2040 draws: the sample mean has std 0.05 / sqrt(N) = 0.0011
    for d in (dz, dd):
        assert abs(float(d.std()) / 0.05 - 1) < 0.1 and abs(float(d.mean())) < 5 * 0.05 / N**0.5
    assert abs(float(torch.corrcoef(torch.stack([dz.flatten(), dd.flatten()]))[0, 1])) < 0.1
    assert torch.equal(generate_dataset("pendulum", noise_std=0.05, **kw).z, noisy.z)
    assert not torch.equal(generate_dataset("pendulum", noise_std=0.05, **{**kw, "seed": 4}).z, noisy.z)
    # the same arguments give the same data set, bit for bit
    assert torch.equal(generate_dataset("pendulum", **kw).z, clean.z)


def test_float32_dataset_is_the_float64_one_rounded():
    kw = dict(n_traj=3, dt=0.1, n_steps=10, seed=5)
    d64 = generate_dataset("double-pendulum", **kw)
    d32 = generate_dataset("double-pendulum", dtype=torch.float32, **kw)
    assert d32.z.dtype == d32.dzdt.dtype == d32.t.dtype == torch.float32
    assert torch.equal(d32.z, d64.z.float()) and torch.equal(d32.dzdt, d64.dzdt.float())


@pytest.mark.parametrize(
    ("n_traj", "test_fraction", "n_test"), [(10, 0.2, 2), (7, 0.3, 2), (5, 0.0, 0), (3, 0.01, 1)]
)
def test_split_is_by_trajectory_disjoint_and_covering(n_traj, test_fraction, n_test):
    ds = generate_dataset("oscillator", n_traj=n_traj, dt=0.2, n_steps=3, test_fraction=test_fraction, seed=6)
    tr, te = ds.train_idx.tolist(), ds.test_idx.tolist()
    assert len(te) == n_test and not set(tr) & set(te)
    assert sorted(tr + te) == list(range(n_traj))
    assert ds.trajectories("test").shape == (4, n_test, 2)
    z, d = ds.points("train")
    assert z.shape == d.shape == (4 * len(tr), 2)
    assert torch.equal(z, ds.z[:, ds.train_idx].reshape(-1, 2))


def test_split_depends_on_the_seed():
    splits = {
        tuple(generate_dataset("oscillator", n_traj=20, dt=0.1, n_steps=1, seed=s).test_idx.tolist())
        for s in range(4)
    }
    assert len(splits) > 1


def test_pairs_are_states_k_steps_apart():
    system = get_system("oscillator", omega=1.4)
    ds = generate_dataset(system, n_traj=5, dt=0.1, n_steps=20, test_fraction=0.4, seed=7)
    for split, K in (("train", 3), ("test", 2), ("all", 5)):
        for k in (1, 3, 20):
            now, later = ds.pairs(k, split)
            assert now.shape == later.shape == ((21 - k) * K, 2)
            exact = system.exact_solution(now, torch.tensor([k * 0.1], dtype=F64))[0]
            assert float((later - exact).abs().max()) < 1e-12
    now, later = ds.pairs(2)
    assert torch.equal(now, ds.z[:-2, ds.train_idx].reshape(-1, 2))
    assert torch.equal(later, ds.z[2:, ds.train_idx].reshape(-1, 2))
    for bad in (0, 21, -1, 1.0, True):
        with pytest.raises(SymplearnError, match=r"k must be an integer in \[1, 20\]"):
            ds.pairs(bad)
    with pytest.raises(SymplearnError, match="valid splits: train, test, all"):
        ds.pairs(1, "validation")


def test_save_load_round_trip_is_exact(tmp_path, dtype):
    system = get_system("double-pendulum", m2=0.5)
    ds = generate_dataset(system, n_traj=4, dt=0.05, n_steps=5, noise_std=0.01, seed=8, dtype=dtype)
    path = ds.save(tmp_path / "sub" / "data.npz")
    assert path == tmp_path / "sub" / "data.npz"
    back = Dataset.load(path)
    for key in ("t", "z", "dzdt", "train_idx", "test_idx"):
        a, b = getattr(ds, key), getattr(back, key)
        assert a.dtype == b.dtype and torch.equal(a, b), key
    assert back.metadata == ds.metadata
    side = json.loads(path.with_suffix(".json").read_text())
    meta = side["metadata"]
    assert side["format"] == "symplearn-dataset"
    assert meta["system"]["name"] == "double-pendulum" and meta["system"]["params"]["m2"] == 0.5
    assert meta["seed"] == 8 and meta["integrator"] == "gauss-legendre-6" and meta["substeps"] == 10
    assert meta["symplearn_version"] == sl.__version__ and meta["noise_std"] == 0.01
    assert back.system().params == system.params
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files


@pytest.fixture
def saved(tmp_path):
    ds = generate_dataset("pendulum", n_traj=3, dt=0.1, n_steps=30, seed=9)
    return ds, ds.save(tmp_path / "d.npz")


def test_load_refuses_a_corrupted_file(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid - 40 : mid + 40] = bytes(80)
    path.write_bytes(bytes(data))
    with pytest.raises(SymplearnError, match="not a readable .npz"):
        Dataset.load(path)
    path.write_bytes(b"definitely not a zip archive")
    with pytest.raises(SymplearnError, match="not a readable .npz"):
        Dataset.load(path)


def test_load_refuses_a_truncated_file(saved):
    _, path = saved
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(SymplearnError, match="not a readable .npz"):
        Dataset.load(path)


def test_load_refuses_a_file_without_sidecar(saved):
    _, path = saved
    path.with_suffix(".json").unlink()
    with pytest.raises(SymplearnError, match=r"d\.json' does not exist"):
        Dataset.load(path)


def test_load_never_unpickles(saved, tmp_path):
    ds, path = saved
    arrays = {k: getattr(ds, k).numpy() for k in ("t", "z", "dzdt", "train_idx", "test_idx")}
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("executed",))

    arrays["z"] = np.array([Payload()], dtype=object)
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in arrays.items():
            with zf.open(f"{k}.npy", "w") as fh:
                np.lib.format.write_array(fh, v, allow_pickle=True)
    with pytest.raises(SymplearnError, match="not a readable .npz"):
        Dataset.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("sidecar", "match"),
    [
        ("{not json", "not the JSON sidecar"),
        ('["a", "list"]', "not the sidecar of a symplearn dataset"),
        ('{"format": "symplearn-model", "metadata": {}}', "not the sidecar of a symplearn dataset"),
        ('{"format": "symplearn-dataset", "format_version": 99}', "format version 99"),
    ],
)
def test_load_refuses_a_foreign_sidecar(saved, sidecar, match):
    _, path = saved
    path.with_suffix(".json").write_text(sidecar)
    with pytest.raises(SymplearnError, match=match):
        Dataset.load(path)


def test_load_refuses_a_sidecar_of_another_dataset(saved, tmp_path):
    _, path = saved
    other = generate_dataset("pendulum", n_traj=4, dt=0.1, n_steps=30, seed=9).save(tmp_path / "o.npz")
    path.with_suffix(".json").write_bytes(other.with_suffix(".json").read_bytes())
    with pytest.raises(SymplearnError, match="does not match its sidecar"):
        Dataset.load(path)


def test_load_refuses_missing_arrays_and_wrong_suffix(saved, tmp_path):
    ds, path = saved
    np.savez(path, t=ds.t.numpy(), z=ds.z.numpy())
    with pytest.raises(SymplearnError, match="missing arrays dzdt, train_idx, test_idx"):
        Dataset.load(path)
    with pytest.raises(SymplearnError, match=r"\.npz"):
        Dataset.load(tmp_path / "d.json")
    with pytest.raises(SymplearnError, match=r"\.npz"):
        ds.save(tmp_path / "d.pt")


def test_dataset_refuses_inconsistent_or_non_finite_arrays(saved):
    ds, _ = saved
    parts = dict(t=ds.t, z=ds.z, dzdt=ds.dzdt, train_idx=ds.train_idx, test_idx=ds.test_idx)
    overlap = torch.cat([ds.test_idx, ds.train_idx[:1]])
    for change, match in [
        ({"dzdt": ds.dzdt[:-1]}, "dzdt must have the shape of z"),
        ({"t": ds.t[:-1]}, "t must have shape"),
        ({"z": ds.z.float()}, "share one dtype"),
        ({"test_idx": overlap}, "share trajectories"),
        ({"train_idx": torch.tensor([0, 5])}, "outside"),
    ]:
        with pytest.raises(SymplearnError, match=match):
            Dataset(**{**parts, **change})
    bad = ds.z.clone()
    bad[3, 1, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="z contains NaN"):
        Dataset(**{**parts, "z": bad})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_traj": 0}, "n_traj must be an integer >= 1"),
        ({"n_steps": 2.5}, "n_steps must be an integer >= 1"),
        ({"substeps": 0}, "substeps must be an integer >= 1"),
        ({"dt": -0.1}, "dt must be a positive finite number"),
        ({"dt": float("nan")}, "dt must be a positive finite number"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"test_fraction": 1.0}, r"test_fraction must be"),
        ({"n_traj": 1, "test_fraction": 0.5}, "leaves no training trajectory"),
        ({"dtype": torch.int64}, "dtype must be"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"integrator": "gauss-legendre-8"}, "unknown integrator.*gauss-legendre-6"),
        ({"integrator": "verlet", "system": "double-pendulum"}, "not separable"),
        ({"system": "pendlum"}, "unknown system.*henon-heiles"),
        ({"system": 3}, "system must be"),
        ({"energy_range": (5.0, 1.0)}, "low <= high"),
    ],
)
def test_generate_dataset_refuses_bad_arguments(kwargs, match):
    args = {"system": "pendulum", "n_traj": 4, "dt": 0.1, "n_steps": 5, **kwargs}
    with pytest.raises(SymplearnError, match=match):
        generate_dataset(args.pop("system"), **args)


def test_other_reference_integrators_are_recorded():
    ds = generate_dataset("pendulum", n_traj=2, dt=0.1, n_steps=4, integrator="rk4", substeps=4, seed=1)
    assert ds.metadata["integrator"] == "rk4" and ds.metadata["substeps"] == 4
    ref = generate_dataset("pendulum", n_traj=2, dt=0.1, n_steps=4, seed=1)
    assert float((ds.z - ref.z).abs().max()) < 1e-6  # rk4 at h = 0.025: error ~ h^4
