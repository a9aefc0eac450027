"""Data sources and the prepared format."""

import gzip
import struct
import time

import numpy as np
import pytest

from imgrec.data import DatasetError, load_prepared, load_source, write_prepared
from imgrec.data import sources
from imgrec.data.prepared import Split


def write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    for (images, labels), n in zip(sources.IDX_FILES.values(), (20, 10)):
        write_idx(tmp_path / images, rng.integers(0, 256, (n, 28, 28)), gz=True)
        write_idx(tmp_path / labels, rng.integers(0, 10, (n,)), gz=False)
    return tmp_path


def test_idx_reads_gzipped_and_plain(idx_dir):
    splits = sources.load_idx(str(idx_dir))
    assert splits["train"].images.shape == (20, 28, 28, 1)
    assert splits["test"].labels.shape == (10,)
    assert splits["train"].labels.dtype == np.int32


def test_idx_missing_file_names_it(idx_dir):
    (idx_dir / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.*dataset-fashion-mnist"):
        sources.load_idx(str(idx_dir))


def test_idx_truncated_file(idx_dir):
    path = idx_dir / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DatasetError, match="truncated"):
        sources.load_idx(str(idx_dir))


def test_idx_truncated_gzip(idx_dir):
    path = idx_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match="train-images"):
        sources.load_idx(str(idx_dir))


def test_idx_missing_directory(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        sources.load_idx(str(tmp_path / "nope"))


def test_sklearn_digits_is_real_and_split_deterministically():
    a = sources.load_sklearn_digits()
    b = sources.load_sklearn_digits()
    assert len(a["train"]) + len(a["test"]) == 1797
    assert a["train"].images.shape[1:] == (8, 8, 1) and a["train"].images.max() == 255
    np.testing.assert_array_equal(a["test"].labels, b["test"].labels)


def test_synthetic_is_seeded_and_learnable_above_chance():
    a = sources.make_synthetic((8, 8, 3), 4, 400, 100, seed=3)
    b = sources.make_synthetic((8, 8, 3), 4, 400, 100, seed=3)
    np.testing.assert_array_equal(a["train"].images, b["train"].images)
    # nearest class mean in pixel space already beats chance: the classes have structure
    x = a["train"].images.reshape(400, -1).astype(float)
    means = np.stack([x[a["train"].labels == c].mean(0) for c in range(4)])
    xt = a["test"].images.reshape(100, -1).astype(float)
    pred = np.argmin(((xt[:, None] - means[None]) ** 2).sum(-1), 1)
    assert (pred == a["test"].labels).mean() > 0.4


def test_prepared_roundtrip_fingerprint_and_stats(tmp_path):
    splits = sources.make_synthetic((4, 4, 1), 3, 30, 9)
    meta = write_prepared(tmp_path / "ds", splits, source={"source": "synthetic"})
    ds = load_prepared(tmp_path / "ds")
    assert ds.meta == meta and ds.num_classes == 3 and ds.image_shape == (4, 4, 1)
    np.testing.assert_array_equal(ds.train.images, splits["train"].images)
    assert meta["fingerprint"].startswith("sha256:")
    assert meta["mean"][0] == pytest.approx(splits["train"].images.mean(), rel=1e-5)
    again = write_prepared(tmp_path / "ds2", splits, source={"source": "synthetic"})
    assert again["fingerprint"] == meta["fingerprint"]
    splits["test"].images[0, 0, 0, 0] ^= 1
    assert write_prepared(tmp_path / "ds3", splits, source={})["fingerprint"] != meta["fingerprint"]


def test_failed_write_leaves_nothing(tmp_path):
    bad = {"train": Split(np.zeros((3, 4, 4, 1), np.uint8), np.zeros(3, np.int32)),
           "test": Split(np.zeros((3, 5, 5, 1), np.uint8), np.zeros(3, np.int32))}
    with pytest.raises(DatasetError, match="shapes differ"):
        write_prepared(tmp_path / "ds", bad, source={})
    assert list(tmp_path.iterdir()) == []


def test_load_prepared_missing_says_how_to_make_it(tmp_path):
    with pytest.raises(DatasetError, match="run the prepare rule"):
        load_prepared(tmp_path / "nothing")


def test_tfds_through_data_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        splits = load_source({"source": "tfds", "name": "mnist", "download": False})
    assert splits["train"].images.shape == (12, 28, 28, 1)
    assert splits["train"].images.dtype == np.uint8


def test_tfds_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "network_reachable", lambda *a, **k: False)
    t0 = time.perf_counter()
    with pytest.raises(DatasetError, match=r"'cifar10'.*no network.*tfds build cifar10"):
        load_source({"source": "tfds", "name": "cifar10", "tfds_data_dir": str(tmp_path)})
    assert time.perf_counter() - t0 < 10


def test_network_probe_is_bounded():
    t0 = time.perf_counter()
    sources.network_reachable(timeout=2.0)
    assert time.perf_counter() - t0 < 8
