"""The data for training: scikit-learn's embedded digits, MNIST IDX files (small ones the
tests write), a user's arrays."""

import gzip

import numpy as np
import pytest

from exprcompiler.driver.data import (Dataset, from_arrays, load_digits, load_mnist, read_idx, split,
                                      write_idx)


def test_digits_odd_even_and_ten_classes():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits as sk
    ds = load_digits("parity", seed=0)
    assert isinstance(ds, Dataset) and ds.classes == 2 and ds.n_features == 64
    assert len(ds.y_train) + len(ds.y_test) == 1797 and len(ds.y_test) == 449
    assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0
    assert set(np.unique(ds.y_train)) == {0, 1}
    ten = load_digits("digit", seed=0)
    assert ten.classes == 10 and set(np.unique(ten.y_train)) == set(range(10))
    # the same seeded split: odd/even is the digit's parity, example by example
    np.testing.assert_array_equal(ds.y_train, ten.y_train % 2)
    np.testing.assert_array_equal(ds.X_test, ten.X_test)
    # every image appears once, scaled by 1/16
    raw = sk()
    rows = np.concatenate([ds.X_train, ds.X_test]) * 16
    assert sorted(map(tuple, rows)) == sorted(map(tuple, raw.data))
    other = load_digits("parity", seed=1)
    assert not np.array_equal(other.X_test, ds.X_test)
    assert "1348 training and 449 test" in str(ds)


def test_split_is_seeded_disjoint_and_complete():
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10)
    a = split(X, y, test_size=0.3, seed=3)
    b = split(X, y, test_size=0.3, seed=3)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    X_tr, y_tr, X_te, y_te = a
    assert len(y_te) == 3 and sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(10))
    np.testing.assert_array_equal(X_tr[:, 0], 2 * y_tr)  # rows stay with their labels


def test_user_arrays():
    rng = np.random.default_rng(0)
    ds = from_arrays(rng.random((40, 5)), rng.integers(0, 3, 40), test_size=0.25)
    assert ds.classes == 3 and ds.X_train.shape == (30, 5) and ds.y_test.dtype == np.int64
    with pytest.raises(ValueError, match="integer class labels"):
        from_arrays(np.ones((4, 2)), [0.5, 1, 0, 1])
    with pytest.raises(ValueError, match="shape"):
        from_arrays(np.ones((4, 2)), [0, 1, 0])
    with pytest.raises(ValueError, match="labels must be one of"):
        load_digits("odd")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype):
    a = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype == np.uint8:
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    path = tmp_path / "a.idx"
    write_idx(str(path), a)
    b = read_idx(str(path))
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_idx_header_is_the_mnist_layout(tmp_path):
    path = tmp_path / "labels"
    write_idx(str(path), np.array([7, 2, 1], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


def _write_mnist(folder, n_train=12, n_test=5, gz=False):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    parts = {}
    for kind, n, stem in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(str(folder / f"{stem}-images-idx3-ubyte{suffix}"), images)
        write_idx(str(folder / f"{stem}-labels-idx1-ubyte{suffix}"), labels)
        parts[kind] = (images, labels)
    return parts


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loader_on_small_idx_files(tmp_path, gz):
    parts = _write_mnist(tmp_path, gz=gz)
    if gz:
        with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz") as fh:
            assert fh.read(4) == bytes([0, 0, 8, 1])
    ds = load_mnist(str(tmp_path))
    images, labels = parts["train"]
    assert ds.X_train.shape == (12, 784) and ds.X_test.shape == (5, 784) and ds.classes == 2
    np.testing.assert_allclose(ds.X_train, images.reshape(12, 784) / 255.0)
    np.testing.assert_array_equal(ds.y_train, labels % 2)
    ten = load_mnist(str(tmp_path), "digit", limit=4)
    np.testing.assert_array_equal(ten.y_test, parts["test"][1][:4])
    assert ten.classes == 10 and ten.X_train.shape == (4, 784)


def test_mnist_loader_mistakes(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_mnist(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(str(tmp_path))
    bad = tmp_path / "bad"
    bad.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(str(bad))
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(ValueError, match="promises 5 values"):
        read_idx(str(short))
    longer = tmp_path / "longer"
    longer.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]))
    with pytest.raises(ValueError, match="promises 2 values.*holds more"):
        read_idx(str(longer))
    _write_mnist(tmp_path)
    write_idx(str(tmp_path / "train-labels-idx1-ubyte"), np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="do not match"):
        load_mnist(str(tmp_path))


def test_a_compressed_idx_is_read_only_as_far_as_its_header_promises(tmp_path):
    """A gzipped IDX file of a few KB whose data decompress to gigabytes (a header
    promising 4 GB of uint8, then zeros): refused from its header, before its data are
    read; one promising a little, followed by much more, is refused after reading one
    byte past what it promised."""
    import gzip
    import tracemalloc
    huge = tmp_path / "huge.gz"
    with gzip.open(huge, "wb") as fh:
        fh.write(bytes([0, 0, 8, 2]) + (1 << 16).to_bytes(4, "big") * 2)
        for _ in range(64):
            fh.write(bytes(1 << 20))
    assert huge.stat().st_size < 1 << 20
    with pytest.raises(ValueError, match="more than IDX_MAX_BYTES"):
        read_idx(str(huge))
    small = tmp_path / "small.gz"
    with gzip.open(small, "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + (16).to_bytes(4, "big"))
        for _ in range(64):
            fh.write(bytes(1 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="promises 16 values.*holds more"):
            read_idx(str(small))
        assert tracemalloc.get_traced_memory()[1] < 1 << 20   # (the whole file: 64 MB)
    finally:
        tracemalloc.stop()
