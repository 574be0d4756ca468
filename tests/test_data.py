import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from bench import data
from bench.errors import DataError


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def make_idx_dir(d: Path, n_train=12, n_test=5, compress=False) -> None:
    rng = np.random.default_rng(0)
    write_idx(d / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)), compress)
    write_idx(d / "train-labels-idx1-ubyte", rng.integers(0, 10, n_train), compress)
    write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)), compress)
    write_idx(d / "t10k-labels-idx1-ubyte", rng.integers(0, 10, n_test), compress)


def test_mnist5k_split_shapes_range_and_balance():
    ds = data.load(data.resolve("mnist-5k"))
    assert ds.x_train.shape == (4000, 28, 28) and ds.x_test.shape == (1000, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert np.bincount(ds.y_train).tolist() == [400] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.has_labels
    # the split is fixed: the same fingerprint every time
    assert ds.sha256 == data.load(data.resolve("mnist-5k")).sha256


def test_synthetic_has_no_meaningful_labels():
    ds = data.load(data.resolve("synthetic"))
    assert ds.x_train.shape == (data.SYNTHETIC_TRAIN, 28, 28)
    assert not ds.has_labels


@pytest.mark.parametrize("compress", [False, True])
def test_idx_directory_loads_for_fashion(tmp_path, compress):
    make_idx_dir(tmp_path, compress=compress)
    src = data.resolve("fashion-mnist", tmp_path)
    ds = data.load(src)
    assert ds.x_train.shape == (12, 28, 28) and ds.y_test.shape == (5,)


def test_truncated_idx_file_is_reported_by_name(tmp_path):
    make_idx_dir(tmp_path)
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(DataError, match="train-images-idx3-ubyte is truncated or corrupt"):
        data.load(data.resolve("fashion-mnist", tmp_path))


def test_bad_magic_is_reported(tmp_path):
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="not an IDX file"):
        data.load(data.resolve("fashion-mnist", tmp_path))


def test_missing_fashion_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FASHION_SYSTEM_DIR", tmp_path / "nowhere")
    with pytest.raises(DataError) as exc:
        data.resolve("fashion-mnist", tmp_path)
    assert str(tmp_path) in str(exc.value) and "dataset-fashion-mnist" in str(exc.value)


def test_unknown_dataset_and_missing_dir():
    with pytest.raises(
        DataError, match="unknown dataset 'cifar'; valid datasets: 'mnist-5k', 'mnist', 'fashion-mnist' or 'synthetic'"
    ):
        data.resolve("cifar")
    with pytest.raises(DataError, match="is not a directory"):
        data.resolve("mnist", "/no/such/dir")


def _npz_bytes(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    p = tmp_path / "src.npz"
    np.savez(
        p,
        x_train=rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        y_train=np.arange(8) % 10,
        x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        y_test=np.arange(4),
    )
    return p


def test_mnist_download_is_checksum_verified_and_cached(tmp_path, monkeypatch):
    src = _npz_bytes(tmp_path)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RNNBENCH_DATA_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RNNBENCH_MNIST_URL", src.as_uri())
    monkeypatch.setattr(data, "MNIST_SHA256", sha)
    resolved = data.resolve("mnist")
    assert resolved.path == str(tmp_path / "cache" / "mnist.npz")
    assert data.load(resolved).x_train.shape == (8, 28, 28)
    # second time: found in the cache, verified, no download needed
    monkeypatch.setenv("RNNBENCH_MNIST_URL", (tmp_path / "gone.npz").as_uri())
    assert data.resolve("mnist").path == resolved.path


def test_mnist_download_with_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    src = _npz_bytes(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RNNBENCH_DATA_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RNNBENCH_MNIST_URL", src.as_uri())
    with pytest.raises(DataError, match="SHA-256 .* expected 731c5ac6"):
        data.resolve("mnist")
    assert list((tmp_path / "cache").iterdir()) == []


def test_mnist_offline_error_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RNNBENCH_DATA_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RNNBENCH_MNIST_URL", (tmp_path / "missing.npz").as_uri())
    with pytest.raises(DataError) as exc:
        data.resolve("mnist")
    msg = str(exc.value)
    assert "downloading" in msg and "--data-dir" in msg and ".keras" in msg


def test_corrupt_cached_mnist_is_rejected(tmp_path, monkeypatch):
    cache = tmp_path / "home" / ".keras" / "datasets"
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes(b"not really")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DataError, match="is corrupt: SHA-256"):
        data.resolve("mnist")


def test_mnist_from_data_dir_npz(tmp_path):
    src = _npz_bytes(tmp_path)
    d = tmp_path / "d"
    d.mkdir()
    src.rename(d / "mnist.npz")
    ds = data.load(data.resolve("mnist", d))
    assert ds.y_train.tolist() == list(range(8))
