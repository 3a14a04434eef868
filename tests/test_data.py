"""Tests of marginlab.data: loaders, selection, synthetic sets, file formats and caching.

File-format tests write tiny IDX and CIFAR files into tmp_path, so they run anywhere. Tests
on the real files read the directory in MARGINLAB_DATA and skip when it is not set.
"""

from __future__ import annotations

import gzip
import lzma
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_digits

from marginlab.build import build_data, build_network
from marginlab.config import ConfigError, validate
from marginlab.data import (
    CIFAR10_CLASSES,
    DATASETS,
    FASHION_MNIST_CLASSES,
    Dataset,
    cache_dir,
    cluster_centers,
    dataset_params,
    load_cifar10_split,
    load_dataset,
    read_idx,
    resolve_data_dir,
    verify_checksums,
)

REAL_DATA = os.environ.get("MARGINLAB_DATA")
SKLEARN = sklearn_digits()


def real_data_dir(folder: str) -> Path:
    if not REAL_DATA or not (Path(REAL_DATA) / folder).is_dir():
        pytest.skip(f"MARGINLAB_DATA not set or lacks {folder}/")
    return Path(REAL_DATA)


@pytest.fixture(autouse=True)
def isolated_dirs(monkeypatch, tmp_path):
    """Keep decoded-array caches out of the user's home, and ignore an ambient data dir."""
    monkeypatch.setenv("MARGINLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MARGINLAB_DATA", raising=False)


# ---------------------------------------------------------------- tiny files in the real formats


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def write_fake_idx(root: Path, name: str, gz: bool = True, hw=(5, 4)) -> dict:
    """Write train (6) and test (4) IDX files; return the arrays written."""
    rng = np.random.default_rng(1)
    folder = root / name
    folder.mkdir(parents=True)
    arrays = {}
    for prefix, n in (("train", 6), ("t10k", 4)):
        arrays[f"{prefix}-images"] = rng.integers(0, 256, (n, *hw), dtype=np.uint8)
        arrays[f"{prefix}-labels"] = rng.integers(0, 10, n, dtype=np.uint8)
        for kind, ndim in (("images", 3), ("labels", 1)):
            data = idx_bytes(arrays[f"{prefix}-{kind}"])
            stem = f"{prefix}-{kind}-idx{ndim}-ubyte"
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)
    return arrays


def fake_records(n: int, seed: int) -> np.ndarray:
    records = np.random.default_rng(seed).integers(0, 256, (n, 3073), dtype=np.uint8)
    records[:, 0] = np.arange(n) % 10
    return records


def write_fake_cifar(root: Path, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Write 7 train and 3 test records in one of the accepted layouts."""
    train, test = fake_records(7, 2), fake_records(3, 3)
    if layout == "xz":
        (root / "cifar10").mkdir(parents=True)
        (root / "cifar10" / "train.bin.xz").write_bytes(lzma.compress(train.tobytes()))
        (root / "cifar10" / "test.bin.xz").write_bytes(lzma.compress(test.tobytes()))
        return train, test
    folder = root / layout
    folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(train, 5), start=1):
        (folder / f"data_batch_{i}.bin").write_bytes(part.tobytes())
    (folder / "test_batch.bin").write_bytes(test.tobytes())
    return train, test


# ------------------------------------------------------------------------- digits and selection


def test_digits_matches_sklearn():
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1797, 1, 8, 8) and ds.x_train.dtype == torch.float64
    assert ds.x_train.min() == 0 and ds.x_train.max() == 1
    assert ds.n_classes == 10 and ds.classes == tuple("0123456789")
    assert ds.x_test is None and ds.n_test == 0
    assert torch.equal(ds.y_train, torch.from_numpy(SKLEARN.target).long())
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(SKLEARN.images / 16))


def test_digits_test_fraction_is_a_seeded_partition():
    ds = load_dataset("digits", test_fraction=0.25, seed=3)
    assert (ds.n_train, ds.n_test) == (1348, 449)
    rows = torch.cat([ds.x_train, ds.x_test]).reshape(1797, -1).numpy() * 16
    assert sorted(map(bytes, rows.astype(np.uint8))) == sorted(
        map(bytes, SKLEARN.data.astype(np.uint8))
    )
    again = load_dataset("digits", test_fraction=0.25, seed=3)
    other = load_dataset("digits", test_fraction=0.25, seed=4)
    assert torch.equal(ds.x_test, again.x_test)
    assert not torch.equal(ds.x_test, other.x_test)
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("digits", test_fraction=1.0)


def test_class_filter_relabels_in_given_order():
    ds = load_dataset("digits", classes=[3, 1])
    assert ds.n_classes == 2 and ds.classes == ("3", "1")
    target = SKLEARN.target
    assert ds.n_train == np.sum((target == 3) | (target == 1))
    expected = np.where(target[(target == 3) | (target == 1)] == 3, 0, 1)
    assert ds.y_train.tolist() == expected.tolist()
    assert torch.equal(
        ds.x_train[ds.y_train == 0][:, 0], torch.from_numpy(SKLEARN.images[target == 3] / 16)
    )
    assert ds.info["selection"]["classes"] == [3, 1]


def test_first_n_keeps_the_leading_rows():
    full = load_dataset("digits", classes=[0, 1])
    ds = load_dataset("digits", classes=[0, 1], n_train=10)
    assert torch.equal(ds.x_train, full.x_train[:10]) and torch.equal(ds.y_train, full.y_train[:10])


def test_random_n_is_seeded_and_keeps_order():
    full = load_dataset("digits")
    a = load_dataset("digits", n_train=50, subset="random", seed=7)
    b = load_dataset("digits", n_train=50, subset="random", seed=7)
    c = load_dataset("digits", n_train=50, subset="random", seed=8)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    flat = full.x_train.reshape(1797, -1)
    rows = [int(torch.nonzero((flat == r).all(1))[0]) for r in a.x_train.reshape(50, -1)]
    assert rows == sorted(rows) and len(set(rows)) == 50
    assert torch.equal(a.y_train, full.y_train[rows])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_train": 1798}, "n_train=1798 exceeds the 1797"),
        ({"classes": [0], "n_train": 179}, "n_train=179 exceeds the 178"),
        ({"test_fraction": 0.5, "n_test": 1000}, "n_test=1000 exceeds the 898"),
        ({"n_test": 5}, "no test split"),
        ({"n_train": 0}, "n_train must be >= 1"),
        ({"classes": [1, 1]}, "distinct"),
        ({"classes": [10]}, r"0\.\.9"),
        ({"subset": "last"}, "first, random"),
    ],
)
def test_bad_selection_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("digits", **kwargs)


def test_unknown_name_lists_available_names():
    with pytest.raises(ValueError, match="unknown data set 'svhn'.*digits, mnist, fashion-mnist"):
        load_dataset("svhn")
    assert load_dataset(" XOR ").name == "xor" and dataset_params("Fashion_MNIST") == {}


def test_unknown_param_lists_allowed_params():
    with pytest.raises(ValueError, match=r"width.*'clusters'.*n=256, d=15, k=3"):
        load_dataset("clusters", width=3)
    with pytest.raises(ValueError, match="'mnist'; it accepts: none"):
        load_dataset("mnist", n=3)


def test_registry_describes_every_name():
    assert set(DATASETS) == {
        "digits", "mnist", "fashion-mnist", "cifar10", "gaussians", "xor", "clusters", "file"
    }  # fmt: skip
    assert all(isinstance(d, str) and d and "\n" not in d for d in DATASETS.values())
    assert dataset_params("gaussians") == {"n": 200, "d": 10, "margin": 0.5, "test_n": 0}


# ------------------------------------------------------------------------------ synthetic sets


def pm(y: torch.Tensor) -> torch.Tensor:
    return 2.0 * y.double() - 1.0


def test_gaussians_have_the_requested_margin_under_w_star():
    ds = load_dataset("gaussians", n=500, d=7, margin=0.3, test_n=200, seed=5)
    w = torch.tensor(ds.info["w_star"], dtype=torch.float64)
    assert ds.input_shape == (7,) and ds.classes == ("-1", "+1")
    assert abs(w.norm().item() - 1) < 1e-12
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        margins = pm(y) * (x @ w)
        assert margins.min() >= 0.3 - 1e-12
        assert 0.35 < y.double().mean() < 0.65
    assert ds.info["w_star_margin"] == pytest.approx((pm(ds.y_train) * (ds.x_train @ w)).min())
    same = load_dataset("gaussians", n=500, d=7, margin=0.3, test_n=200, seed=5)
    other = load_dataset("gaussians", n=500, d=7, margin=0.3, test_n=200, seed=6)
    assert torch.equal(ds.x_train, same.x_train) and torch.equal(ds.x_test, same.x_test)
    assert not torch.equal(ds.x_train, other.x_train)
    with pytest.raises(ValueError, match="margin"):
        load_dataset("gaussians", margin=-1)


@pytest.mark.parametrize(
    ("name", "params", "features"),
    [("xor", {"n": 10**9}, 2), ("gaussians", {"n": 100, "d": 10**8}, 10**8),
     ("clusters", {"n": 10, "test_n": 10**9, "d": 5}, 5)],
)  # fmt: skip
def test_a_synthetic_draw_larger_than_the_memory_is_refused_before_it_allocates(
    monkeypatch, name, params, features
):
    monkeypatch.setattr("marginlab.memory.available_memory", lambda: 2 * 10**9)
    points = params["n"] + params.get("test_n", 0)
    with pytest.raises(ValueError, match=rf"n, test_n: {points} points of {features} features"):
        load_dataset(name, **params)
    # what fits is drawn: 4 copies of 10**5 points of 2 float64 features are 6.4 MB
    assert load_dataset("xor", n=10**5).n_train == 10**5


def test_a_run_on_a_single_class_is_refused_naming_data_classes():
    config = validate({"data": {"name": "digits", "classes": [3]}, "model": {"kind": "linear"}})
    with pytest.raises(ConfigError, match=r"data.classes: \[3\] selects a single class"):
        build_data(config)
    two = validate({"data": {"name": "digits", "classes": [3, 5]}, "model": {"kind": "linear"}})
    assert build_data(two).n_classes == 2


def test_a_cluster_grid_larger_than_the_memory_is_refused_before_its_tables_are_made(
    monkeypatch,
):
    monkeypatch.setattr("marginlab.memory.available_memory", lambda: 10**9)
    # 10**4 x 10**4 clusters: 10**8 centers and labels, about 10 GB of tables
    with pytest.raises(ValueError, match=r"k: 10000 x 10000 clusters need about"):
        load_dataset("clusters", n=10, k=10**4)
    assert len(load_dataset("clusters", n=10, k=100).info["centers"]) == 100**2


def test_a_draw_that_exhausts_memory_is_refused_naming_the_data_fields(monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("marginlab.build.load_dataset", exhausted)
    config = validate({"data": {"name": "xor"}, "model": {"kind": "two_layer", "width": 4}})
    with pytest.raises(ConfigError, match=r"data: .*data.params.n"):
        build_data(config)


def test_xor_default_is_the_four_points():
    ds = load_dataset("xor")
    assert ds.x_train.tolist() == [[1, 1], [1, -1], [-1, -1], [-1, 1]]
    assert pm(ds.y_train).tolist() == [1, -1, 1, -1]


def test_xor_clusters_are_balanced_and_follow_the_sign_rule():
    ds = load_dataset("xor", n=400, noise=0.1, test_n=40, seed=2)
    assert ds.x_train.shape == (400, 2) and ds.x_test.shape == (40, 2)
    assert torch.bincount(ds.y_train).tolist() == [200, 200]
    assert torch.equal(pm(ds.y_train), torch.sign(ds.x_train[:, 0] * ds.x_train[:, 1]))
    quadrants = torch.bincount(2 * (ds.x_train[:, 0] > 0) + (ds.x_train[:, 1] > 0))
    assert quadrants.tolist() == [100, 100, 100, 100]


def test_cluster_centers_match_the_paper_for_k3():
    centers = cluster_centers(3)
    assert sorted(set(centers[:, 0].tolist())) == [-3 / 8, 0, 3 / 8]
    assert centers[1].tolist() == [0, -3 / 8] and centers[3].tolist() == [-3 / 8, 0]


def nearest_cluster(x: torch.Tensor, k: int) -> np.ndarray:
    centers = cluster_centers(k)
    distances = np.linalg.norm(x[:, None, 1:3].numpy() - centers[None], axis=2)
    return distances.argmin(1), distances.min(1)


@pytest.mark.parametrize("k", [3, 4])
def test_clusters_geometry_and_random_labels(k):
    ds = load_dataset("clusters", n=3000, d=6, k=k, test_n=10, seed=1)
    delta = 1 / (3 * k - 1)
    assert ds.x_train.shape == (3000, 6) and ds.x_test.shape == (10, 6)
    assert ds.info["delta"] == delta
    assert torch.all(ds.x_train[:, 0] == 1)
    assert ds.x_train[:, 1:].abs().max() <= 0.5
    p, dist = nearest_cluster(ds.x_train, k)
    assert dist.max() <= delta + 1e-12
    a = np.array(ds.info["cluster_labels"])
    assert sorted(set(a.tolist())) == [-1, 1] and np.sum(a == -1) == k * k // 2
    assert pm(ds.y_train).numpy().tolist() == a[p].tolist()
    counts = np.bincount(p, minlength=k * k)
    assert counts.min() > 0.7 * 3000 / k**2
    expected_positive = (k * k - k * k // 2) / (k * k)
    assert abs(ds.y_train.double().mean().item() - expected_positive) < 0.04
    spurious = ds.x_train[:, 3:]
    assert spurious.abs().max() <= 0.5 and abs(spurious.mean().item()) < 0.02


def test_clusters_checkerboard_rule_on_informative_coordinates():
    k = 4
    ds = load_dataset("clusters", n=800, d=3, k=k, labels="checkerboard", test_n=0)
    grid = cluster_centers(k)[:k, 0]
    cell = [np.abs(ds.x_train[:, j, None].numpy() - grid).argmin(1) for j in (1, 2)]
    assert ds.y_train.numpy().tolist() == ((cell[0] + cell[1]) % 2 == 0).astype(int).tolist()
    assert torch.bincount(ds.y_train).tolist() == pytest.approx([400, 400], abs=60)


def test_clusters_draws_are_nested_and_distribution_is_separate():
    small = load_dataset("clusters", n=50, test_n=0, seed=4)
    large = load_dataset("clusters", n=100, test_n=0, seed=4)
    assert torch.equal(small.x_train, large.x_train[:50])
    assert load_dataset("clusters").x_test.shape == (4000, 15)
    fixed = [load_dataset("clusters", n=5, distribution=9, seed=s) for s in (0, 1)]
    assert fixed[0].info["cluster_labels"] == fixed[1].info["cluster_labels"]
    assert not torch.equal(fixed[0].x_train, fixed[1].x_train)
    by_seed = {
        tuple(load_dataset("clusters", n=5, seed=s).info["cluster_labels"]) for s in range(6)
    }
    assert len(by_seed) > 1
    with pytest.raises(ValueError, match="d must be >= 3"):
        load_dataset("clusters", d=2)
    with pytest.raises(ValueError, match="labels must be"):
        load_dataset("clusters", labels="stripes")


# ------------------------------------------------------------------------------------ IDX files


def test_read_idx_roundtrip_gz_raw_and_big_endian(tmp_path):
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "a").write_bytes(idx_bytes(images))
    shorts = np.array([-2, 300, 7], dtype=">i2")
    (tmp_path / "s").write_bytes(idx_bytes(shorts, 0x0B))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), images)
    assert np.array_equal(read_idx(tmp_path / "a"), images)
    assert read_idx(tmp_path / "s").tolist() == [-2, 300, 7]


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros(5, np.uint8))[:-1])
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "magic")
    with pytest.raises(ValueError, match="size mismatch"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_from_tiny_files(tmp_path, name, gz):
    arrays = write_fake_idx(tmp_path, name, gz=gz)
    ds = load_dataset(name, data_dir=tmp_path)
    assert ds.x_train.shape == (6, 1, 5, 4) and ds.x_test.shape == (4, 1, 5, 4)
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(arrays["train-images"] / 255.0))
    assert ds.y_test.tolist() == arrays["t10k-labels"].tolist()
    assert ds.classes == (FASHION_MNIST_CLASSES if name == "fashion-mnist" else tuple("0123456789"))
    assert len(ds.info["files"]) == 4 and all(Path(f).is_file() for f in ds.info["files"])


def test_missing_idx_files_error_names_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "mnist/train-images-idx3-ubyte.gz" in message
    assert "mnist/t10k-labels-idx1-ubyte.gz" in message
    assert "--data-dir" in message and "MARGINLAB_DATA" in message


def test_data_dir_resolution_order(tmp_path, monkeypatch):
    write_fake_idx(tmp_path / "env", "mnist")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg" / "marginlab"
    monkeypatch.setenv("MARGINLAB_DATA", str(tmp_path / "env"))
    assert load_dataset("mnist").n_train == 6
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    with pytest.raises(FileNotFoundError, match="explicit"):
        load_dataset("mnist", data_dir=tmp_path / "explicit")


# ----------------------------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("layout", ["xz", "cifar10/cifar-10-batches-bin", "cifar-10-batches-bin"])
def test_cifar_from_tiny_records(tmp_path, layout):
    train, test = write_fake_cifar(tmp_path / "data", layout)
    ds = load_dataset("cifar10", data_dir=tmp_path / "data")
    assert ds.x_train.shape == (7, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    assert ds.y_train.tolist() == train[:, 0].tolist()
    assert torch.equal(ds.x_test.reshape(3, -1), torch.from_numpy(test[:, 1:] / 255.0))
    # the R plane comes first: pixel (row 0, col 1) of the red channel is record byte 2
    assert ds.x_train[0, 0, 0, 1] == train[0, 2] / 255.0
    assert ds.classes == CIFAR10_CLASSES
    assert ("record_order" in ds.info) == (layout == "xz")


def test_cifar_xz_cache_is_reused_and_keyed_by_mtime(tmp_path):
    data = tmp_path / "data"
    _, test = write_fake_cifar(data, "xz")
    x, _, _ = load_cifar10_split("test", data)
    cached = sorted(cache_dir().glob("cifar10-test-*.npy"))
    assert len(cached) == 1 and cache_dir() == tmp_path / "cache"
    assert not list(cache_dir().glob("*.tmp")) and not list(data.rglob("*.npy"))
    np.save(cached[0], np.full_like(test, 9))  # a reused cache returns these bytes
    assert np.all(load_cifar10_split("test", data)[0] == 9)
    source = data / "cifar10" / "test.bin.xz"
    mtime = source.stat().st_mtime_ns + 10**9
    os.utime(source, ns=(mtime, mtime))
    fresh, _, _ = load_cifar10_split("test", data)
    assert np.array_equal(fresh.reshape(3, -1), test[:, 1:])
    assert len(list(cache_dir().glob("cifar10-test-*.npy"))) == 2


def test_cifar_rejects_partial_records(tmp_path):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "test.bin.xz").write_bytes(lzma.compress(bytes(3074)))
    with pytest.raises(ValueError, match="3073-byte records"):
        load_cifar10_split("test", tmp_path)


def test_missing_cifar_error_names_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "cifar10/train.bin.xz" in message
    assert "cifar-10-batches-bin/data_batch_5.bin" in message and "MARGINLAB_DATA" in message


# ------------------------------------------------------------------------ Dataset and checksums


def test_dataset_to_properties_and_validation():
    ds = load_dataset("xor", test_n=8)
    small = ds.to(dtype=torch.float32)
    assert small.x_train.dtype == small.x_test.dtype == torch.float32
    assert small.y_train.dtype == small.y_test.dtype == torch.int64
    assert ds.x_train.dtype == torch.float64  # the original is untouched
    assert (ds.input_shape, ds.n_train, ds.n_test) == ((2,), 4, 8)
    assert repr(ds) == "Dataset(name='xor', n_train=4, n_test=8, input_shape=(2,), n_classes=2)"
    with pytest.raises(ValueError, match="one label per row"):
        Dataset("bad", ds.x_train, ds.y_train[:3], None, None, 2, ("a", "b"), {})
    with pytest.raises(ValueError, match="both"):
        Dataset("bad", ds.x_train, ds.y_train, ds.x_test, None, 2, ("a", "b"), {})


def test_verify_checksums_flags_wrong_and_missing_files(tmp_path):
    write_fake_idx(tmp_path, "mnist")
    assert verify_checksums("mnist", tmp_path) == dict.fromkeys(
        [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ],
        False,
    )
    with pytest.raises(FileNotFoundError, match="fashion-mnist/train-images-idx3-ubyte.gz"):
        verify_checksums("fashion-mnist", tmp_path)


# --------------------------------------------------------------------- real data (MARGINLAB_DATA)


def test_real_mnist():
    root = real_data_dir("mnist")
    ds = load_dataset("mnist", data_dir=root)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert ds.y_test[:3].tolist() == [7, 2, 1]
    assert ds.x_train.min() == 0 and ds.x_train.max() == 1
    assert all(verify_checksums("mnist", root).values())


def test_real_fashion_mnist():
    root = real_data_dir("fashion-mnist")
    ds = load_dataset("fashion-mnist", data_dir=root)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10
    assert all(verify_checksums("fashion-mnist", root).values())


def test_real_cifar10_test_split():
    root = real_data_dir("cifar10")
    images, labels, _ = load_cifar10_split("test", root)
    assert images.shape == (10000, 3, 32, 32)
    assert np.bincount(labels).tolist() == [1000] * 10
    means = images.reshape(10000, 3, -1).mean(axis=(0, 2)) / 255
    assert np.allclose(means, [0.4942, 0.4851, 0.4504], atol=1e-4)


@pytest.mark.parametrize(
    ("model", "key"),
    [({"kind": "two_layer", "width": 10**8}, "model.width"),
     ({"kind": "mlp", "hidden": [10**5, 10**5]}, "model.hidden")],
)  # fmt: skip
def test_a_network_larger_than_the_memory_is_refused_before_it_allocates(monkeypatch, model, key):
    monkeypatch.setattr("marginlab.memory.available_memory", lambda: 10**9)
    config = validate({"data": {"name": "xor"}, "model": model})
    data = build_data(config)
    # without the check torch would try to allocate (and say "cannot be built") or succeed
    with pytest.raises(
        ConfigError, match=rf"model: the network's .* parameters .* need about .*\({key}\)"
    ):
        build_network(config, data)
    small = validate({"data": {"name": "xor"}, "model": {"kind": "two_layer", "width": 10**4}})
    assert sum(p.numel() for p in build_network(small, data).parameters()) == 4 * 10**4


def test_a_network_that_fits_once_but_not_for_training_is_read_but_not_trained(monkeypatch):
    # 4 x 10**6 float64 parameters: 32 MB once (reading a checkpoint), 128 MB to train
    monkeypatch.setattr("marginlab.memory.available_memory", lambda: 64 * 10**6)
    config = validate({"data": {"name": "xor"}, "model": {"kind": "two_layer", "width": 10**6}})
    data = build_data(config)
    with pytest.raises(ConfigError, match=r"\(4 copies in float64 while it trains\) need"):
        build_network(config, data)
    assert sum(p.numel() for p in build_network(config, data, copies=1).parameters()) == 4 * 10**6


def _write_file(path, kind):
    """A data file that cannot be trained on, of one kind of fault."""
    rng = np.random.default_rng(0)
    if kind == "not a zip":
        path.write_text("not a zip archive")
    elif kind == "garbage":
        path.write_bytes(b"zz")
    elif kind == "text inputs":
        np.savez(path, x=np.array(["a"] * 6), y=np.arange(6) % 2)
    elif kind == "signed labels":
        np.savez(path, x=rng.normal(size=(6, 2)), y=np.arange(6) % 2 * 2 - 1)


@pytest.mark.parametrize(
    ("suffix", "kind", "named"),
    [(".npz", "not a zip", r"path: data.npz is not a .npz file"),
     (".pt", "garbage", r"path: data.pt is not a file of tensors .* torch.save"),
     (".safetensors", "garbage", r"path: data.safetensors cannot be read as a .safetensors"),
     (".npz", "text inputs", r"x: the inputs must be numbers"),
     (".npz", "signed labels", r"y: labels must be class indices 0, 1, ...; got -1; .*\(y \+ 1\)")],
)  # fmt: skip
def test_an_unreadable_data_file_is_refused_naming_the_file_and_the_fix(
    tmp_path, suffix, kind, named
):
    path = tmp_path / f"data{suffix}"
    _write_file(path, kind)
    with pytest.raises(ValueError, match=named):
        load_dataset("file", path=path)


def test_a_csv_without_its_label_column_is_refused_and_label_column_names_another(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,0\n3,1\n-1,0\n")
    # the last column could as well be a feature: it is not taken for the class
    with pytest.raises(ValueError, match=r"data.csv has no column 'label' \(its columns: a, b\)"):
        load_dataset("file", path=path)
    named = load_dataset("file", path=path, label_column="b")
    assert named.y_train.tolist() == [0, 1, 0] and named.input_shape == (1,)
