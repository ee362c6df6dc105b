"""Data for training: the digits that ship inside scikit-learn, MNIST IDX files from a
local folder, or a user's own NumPy arrays — each as a `Dataset` split into a training
and a test part with a seeded shuffle.

    from exprcompiler.driver.data import load_digits, load_mnist, from_arrays
    ds = load_digits(labels="parity", seed=0)        # 1,797 8×8 images in [0, 1]
    ds.X_train.shape, ds.y_train[:5], ds.classes     # (1347, 64), [0 1 ...], 2

Labels: "parity" gives the notes' odd/even task (1 for an odd digit, 0 for an even
one); "digit" gives the ten classes 0–9. Images are flattened to rows and scaled to
[0, 1] (digits: /16; MNIST: /255).

Part of the driver (see driver/__init__.py); read by driver/train.py's callers and
`exprc train`. scikit-learn is only used for its embedded data (the `data` extra:
`pip install 'exprcompiler[data]'`); nothing is downloaded. `read_idx` and
`write_idx` handle the IDX format of the MNIST files (optionally gzipped).
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

LABELS = ("parity", "digit")
MISSING_SKLEARN = ("the digits data set comes with scikit-learn, which is not installed "
                   "(pip install 'exprcompiler[data]')")


@dataclass
class Dataset:
    """Training and test examples: X rows are examples, y integer labels 0..classes−1."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: int
    name: str = "arrays"

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def __str__(self) -> str:
        return (f"{self.name}: {len(self.y_train)} training and {len(self.y_test)} test examples, "
                f"{self.n_features} features, {self.classes} classes")


def relabel(digits: np.ndarray, labels: str) -> tuple[np.ndarray, int]:
    """Digit labels 0–9 as the task asks: (labels, number of classes)."""
    if labels not in LABELS:
        raise ValueError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
    digits = np.asarray(digits).astype(np.int64)
    if labels == "parity":
        return digits % 2, 2
    return digits, 10


def split(X, y, *, test_size: float = 0.25, seed: int = 0):
    """(X_train, y_train, X_test, y_test): a seeded shuffle, then the last `test_size`
    fraction (at least one example on each side) is the test part."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"expected X of shape (n, features) and y of shape (n,), got {X.shape} and {y.shape}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size!r}")
    train, test = holdout(X.shape[0], test_size, np.random.default_rng(seed))
    return X[train], y[train], X[test], y[test]


def holdout(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices: range(n) shuffled by rng, the last `fraction` held
    out (at least one example on each side). The test split and train's validation."""
    held = min(max(1, int(round(fraction * n))), n - 1)
    order = rng.permutation(n)
    return order[:n - held], order[n - held:]


def from_arrays(X, y, *, test_size: float = 0.25, seed: int = 0, name: str = "arrays") -> Dataset:
    """A user's arrays as a Dataset: labels must be integers 0..classes−1."""
    y = np.asarray(y)
    if y.size and (not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y))):
        raise ValueError("y must hold integer class labels 0, 1, ...")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError("y must hold class labels 0, 1, ... (found a negative label)")
    parts = split(X, y, test_size=test_size, seed=seed)
    return Dataset(*parts, classes=max(2, int(y.max()) + 1 if y.size else 2), name=name)


def load_digits(labels: str = "parity", *, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's embedded handwritten digits (1,797 8×8 images; no download),
    pixels scaled from 0..16 to [0, 1]."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise ImportError(MISSING_SKLEARN) from None
    raw = sk_digits()
    y, classes = relabel(raw.target, labels)
    X = raw.data.astype(np.float64) / 16.0
    ds = from_arrays(X, y, test_size=test_size, seed=seed, name=f"digits ({labels})")
    ds.classes = classes
    return ds


# -- MNIST IDX files ------------------------------------------------------------------------
# The IDX header: two zero bytes, a type code, the number of dimensions, then one
# big-endian uint32 per dimension; the data follow, big-endian.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(v).newbyteorder("=").kind + str(np.dtype(v).itemsize): k for k, v in _IDX_TYPES.items()}


def _open(path: str):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str) -> np.ndarray:
    """An IDX file (as the MNIST files are distributed; gzipped or not) as an array.
    The header is read first and the data only as far as it promises (and one byte
    more, to see that the file ends there): a file of a few KB that decompresses to
    gigabytes is refused after reading what its header says, not read whole."""
    with _open(path) as fh:
        head = fh.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
            raise ValueError(f"{path}: not an IDX file (bad magic number)")
        ndim = head[3]
        dims = fh.read(4 * ndim)
        if len(dims) < 4 * ndim:
            raise ValueError(f"{path}: truncated IDX header")
        shape = tuple(int.from_bytes(dims[4 * k: 4 + 4 * k], "big") for k in range(ndim))
        dtype = np.dtype(_IDX_TYPES[head[2]])
        size = math.prod(shape) * dtype.itemsize
        if size > IDX_MAX_BYTES:
            raise ValueError(f"{path}: the header promises {size:,} bytes of shape {shape}, more than "
                             f"IDX_MAX_BYTES ({IDX_MAX_BYTES:,})")
        data = fh.read(size + 1)
    if len(data) != size:
        held = "more" if len(data) > size else str(len(data) // dtype.itemsize)
        raise ValueError(f"{path}: the header promises {size // dtype.itemsize} values of shape {shape}, "
                         f"the file holds {held}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


# The largest IDX data read_idx takes (MNIST's training images: 47 MB; EMNIST's
# largest, 547 MB); a module attribute, to raise for larger files
IDX_MAX_BYTES = 1 << 30


def write_idx(path: str, array) -> None:
    """Write an array as an IDX file (uint8, int8, int16, int32, float32 or float64);
    gzipped when the name ends in .gz."""
    a = np.asarray(array)
    key = a.dtype.kind + str(a.dtype.itemsize)
    if key not in _IDX_CODES:
        raise ValueError(f"IDX cannot hold {a.dtype}")
    code = _IDX_CODES[key]
    body = bytes([0, 0, code, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    body += a.astype(np.dtype(_IDX_TYPES[code])).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(body)


_MNIST = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
          "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def _find(folder: str, stem: str) -> str:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{folder}: no {stem} (or {stem}.gz); expected the four MNIST IDX files "
                            f"{', '.join(_MNIST.values())}")


def load_mnist(folder: str, labels: str = "parity", *, limit: Optional[int] = None) -> Dataset:
    """The four MNIST IDX files in `folder` (gzipped or not), images flattened and
    scaled to [0, 1]; `limit` keeps the first examples of each part."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: not a folder (expected the MNIST IDX files in it)")
    parts = {key: read_idx(_find(folder, stem)) for key, stem in _MNIST.items()}
    out = []
    for kind in ("train", "test"):
        images, digits = parts[f"{kind}_images"], parts[f"{kind}_labels"]
        if images.shape[0] != digits.shape[0] or digits.ndim != 1:
            raise ValueError(f"{folder}: {kind} images {images.shape} and labels {digits.shape} do not match")
        if limit is not None:
            images, digits = images[:limit], digits[:limit]
        scale = 255.0 if images.dtype == np.uint8 else max(1.0, float(np.max(images, initial=1.0)))
        out.append(images.reshape(images.shape[0], -1).astype(np.float64) / scale)
        out.append(digits)
    y_train, classes = relabel(out[1], labels)
    y_test, _ = relabel(out[3], labels)
    return Dataset(out[0], y_train, out[2], y_test, classes=classes, name=f"MNIST ({labels})")
