"""The arrays an adapter trains on (the same for every framework), and where they came from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    origin: str
    sha256: str  # fingerprint of the raw arrays: proves two rows trained on the same data
    has_labels: bool = True  # False for synthetic data: accuracy would be meaningless


@dataclass(frozen=True)
class DataSource:
    """Where a dataset's files are, found and verified before any case starts."""

    name: str
    path: str | None  # a file (npz) or a directory of IDX files; None for package/generated data
    origin: str  # human-readable: where the data came from
    # (file name, SHA-256 of its content; for .gz files, of the decompressed bytes) of every file
    # the data is read from: what each case's process (or Ray node) checks it reads the same data
    files: tuple[tuple[str, str], ...] = ()
    notices: tuple[str, ...] = ()  # e.g. a file no published checksum matches

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "origin": self.origin,
                "files": [list(f) for f in self.files], "notices": list(self.notices)}

    @classmethod
    def from_dict(cls, d: dict) -> DataSource:
        return cls(d["name"], d.get("path"), d["origin"], tuple(tuple(f) for f in d.get("files", ())),
                   tuple(d.get("notices", ())))
