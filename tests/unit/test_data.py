import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from bench import data
from bench.core.errors import DataError


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
    assert ds.sha256.startswith("1adea2bf696df09f")  # what every recorded run's dataset_sha256 says


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
    with pytest.raises(DataError, match=r"is not Keras' mnist.npz \(corrupt, or other data\): SHA-256"):
        data.resolve("mnist")


def test_mnist_from_data_dir_npz_is_checked_against_the_published_checksum(tmp_path, monkeypatch):
    src = _npz_bytes(tmp_path)
    d = tmp_path / "d"
    d.mkdir()
    src.rename(d / "mnist.npz")
    with pytest.raises(DataError, match="is not Keras' mnist.npz"):
        data.resolve("mnist", d)  # the right shapes, but not the published file
    sha = hashlib.sha256((d / "mnist.npz").read_bytes()).hexdigest()
    monkeypatch.setattr(data, "MNIST_SHA256", sha)  # as if it were the published file
    source = data.resolve("mnist", d)
    assert source.files == (("mnist.npz", sha),) and source.notices == ()
    assert data.load(source).y_train.tolist() == list(range(8))


def _published(monkeypatch, name: str, d: Path) -> None:
    """Pretend the IDX files in d are dataset `name`'s published files."""
    table = {stem: hashlib.sha256(data._idx_bytes(next(d.glob(stem + "*")))).hexdigest() for stem in data.IDX_FILES.values()}
    monkeypatch.setitem(data.IDX_CONTENT_SHA256, name, table)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_verify_by_content_whether_gzipped_or_not(tmp_path, monkeypatch, compress):
    plain, gz = tmp_path / "plain", tmp_path / "gz"
    plain.mkdir(), gz.mkdir()
    make_idx_dir(plain)
    make_idx_dir(gz, compress=True)
    _published(monkeypatch, "fashion-mnist", plain)
    source = data.resolve("fashion-mnist", gz if compress else plain)
    assert source.notices == () and len(source.files) == 4  # the same content, stored either way


def test_another_datasets_published_files_are_refused(tmp_path, monkeypatch):
    make_idx_dir(tmp_path)
    _published(monkeypatch, "fashion-mnist", tmp_path)
    with pytest.raises(DataError, match=r"holds fashion-mnist's train-images-idx3-ubyte, not mnist's: content SHA-256"):
        data.resolve("mnist", tmp_path)


def test_idx_content_no_published_file_has_is_accepted_with_a_notice(tmp_path):
    make_idx_dir(tmp_path)
    source = data.resolve("fashion-mnist", tmp_path)
    assert len(source.notices) == 4 and "matches no published fashion-mnist file" in source.notices[0]
    assert data.IDX_CONTENT_SHA256["fashion-mnist"]["train-images-idx3-ubyte"] in source.notices[0]


def test_resume_refuses_data_that_changed_since_the_run_started(tmp_path):
    make_idx_dir(tmp_path)
    source = data.resolve("fashion-mnist", tmp_path)
    assert data.reverify(data.DataSource.from_dict(source.to_dict())) == source
    make_idx_dir(tmp_path, n_train=13)
    with pytest.raises(DataError, match="train-images-idx3-ubyte changed since the run started"):
        data.reverify(source)


@pytest.mark.skipif(not data.FASHION_SYSTEM_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debians_fashion_mnist_is_the_published_content():
    source = data.resolve("fashion-mnist")
    assert source.notices == ()  # recompressed by Debian, the same bytes inside


def test_mnist5k_parses_once_then_reads_its_cache_and_never_trusts_a_bad_one(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNBENCH_DATA_HOME", str(tmp_path))
    src = data.resolve("mnist-5k")
    first = data.load(src)
    (cached,) = tmp_path.glob("mnist-5k-*.npz")
    parses = []
    real = data._parse_mnist5k
    monkeypatch.setattr(data, "_parse_mnist5k", lambda f: parses.append(1) or real(f))
    assert data.load(src).sha256 == first.sha256 and parses == []  # read from the cache
    with np.load(cached) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["y_test"] = arrays["y_test"][::-1].copy()  # other arrays under the recorded fingerprint
    np.savez(cached, **arrays)
    assert data.load(src).sha256 == first.sha256 and parses == [1]  # refused, parsed again
    cached.write_bytes(b"not an npz")
    assert data.load(src).sha256 == first.sha256 and parses == [1, 1]
