"""Dataset sources: each turns a config entry into train/test ``Split``s.

Sources (chosen by ``source:`` in a dataset's config):

- ``tfds``: a TensorFlow Datasets dataset by name (mnist, fashion_mnist,
  cifar10, ...), read through ``tfds.data_source`` (ArrayRecord, no TensorFlow
  needed when already prepared). Downloading and preparing image datasets needs
  TensorFlow (``pip install -r envs/tfds.txt``); offline, we fail in seconds
  instead of TFDS's minutes of retries.
- ``idx``: a directory of MNIST-format IDX files (e.g. Debian's
  ``dataset-fashion-mnist``), gzipped or not.
- ``sklearn_digits``: scikit-learn's 8x8 handwritten digits (1,797 real images
  that ship inside the pip package): the offline default for the MNIST stage.
- ``synthetic``: seeded class-conditional images with learnable structure, for
  stages whose real data cannot ship. Always named ``synthetic`` in results.
"""

from __future__ import annotations

import gzip
import os
import socket
import struct
from pathlib import Path

import numpy as np

from imgrec.data.prepared import DatasetError, Split

SOURCES = ("tfds", "idx", "sklearn_digits", "synthetic")


# --------------------------------------------------------------------------- idx
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: np.uint8}


def _find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise DatasetError(
        f"IDX directory {directory} has no {stem} (or {stem}.gz). It must hold the four MNIST-format files "
        f"{', '.join(f for pair in IDX_FILES.values() for f in pair)} (gzipped or not); on Debian, "
        f"`apt-get install dataset-fashion-mnist` provides them in /usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DatasetError(f"cannot read IDX file {path}: {err} (truncated or not gzip?)") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path} is truncated: header cut short")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DatasetError(f"{path} is truncated or padded: header says shape {shape} ({expected} bytes), "
                           f"file holds {len(data) - header} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_idx(path: str) -> dict[str, Split]:
    directory = Path(path)
    if not directory.is_dir():
        raise DatasetError(f"IDX directory {directory} does not exist; set the dataset's `path:` to a directory of "
                           f"MNIST-format IDX files (Debian: `apt-get install dataset-fashion-mnist`, then "
                           f"/usr/share/datasets/fashion-mnist)")
    splits = {}
    for split, (images_stem, labels_stem) in IDX_FILES.items():
        images = read_idx(_find_idx(directory, images_stem))
        labels = read_idx(_find_idx(directory, labels_stem))
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DatasetError(f"{directory}: {split} images {images.shape} and labels {labels.shape} do not match")
        splits[split] = Split(images[..., None], labels.astype(np.int32))
    return splits


# ------------------------------------------------------------------ sklearn digits
def load_sklearn_digits(test_fraction: float = 0.2, seed: int = 0) -> dict[str, Split]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 0..16 grey levels -> 0..255 uint8, as MNIST stores them.
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return {"train": Split(images[train], labels[train]), "test": Split(images[test], labels[test])}


# ----------------------------------------------------------------------- synthetic
def make_synthetic(image_shape, num_classes: int, train_size: int, test_size: int, seed: int = 0,
                   noise: float = 0.5) -> dict[str, Split]:
    """Each class is a fixed random low-frequency pattern. A sample is its
    class's pattern at a random strength, overlaid with a distractor pattern of
    another class at a random, sometimes stronger, strength, randomly shifted
    and buried in noise. The distractor bounds the attainable accuracy well
    below 100% (about 80%), so precision and recipe differences stay visible."""
    h, w, c = image_shape
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(num_classes, max(h // 4, 2), max(w // 4, 2), c))
    templates = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)[:, :h, :w, :]
    templates = np.pad(templates, ((0, 0), (0, h - templates.shape[1]), (0, w - templates.shape[2]), (0, 0)),
                       mode="wrap")

    def sample(n, rng):
        labels = rng.integers(0, num_classes, size=n).astype(np.int32)
        distractors = (labels + rng.integers(1, num_classes, size=n)) % num_classes
        strength = rng.uniform(0.4, 1.0, size=(n, 1, 1, 1))
        distraction = rng.uniform(0.0, 0.8, size=(n, 1, 1, 1))
        x = strength * templates[labels] + distraction * templates[distractors]
        shifts = rng.integers(-3, 4, size=(n, 2))
        x = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(x, shifts)])
        x = x + rng.normal(scale=noise, size=x.shape)
        images = np.clip(128 + 50 * x, 0, 255).astype(np.uint8)
        return Split(images, labels)

    return {"train": sample(train_size, np.random.default_rng([seed, 1])),
            "test": sample(test_size, np.random.default_rng([seed, 2]))}


# ---------------------------------------------------------------------------- tfds
TFDS_PROBE_HOST = ("storage.googleapis.com", 443)


def network_reachable(host=TFDS_PROBE_HOST, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def load_tfds(name: str, data_dir: str | None = None, train_split: str = "train",
              test_split: str = "test", download: bool = True, manual_dir: str | None = None) -> dict[str, Split]:
    import tensorflow_datasets as tfds

    spec = {"name": name, "tfds_data_dir": data_dir, "download": download, "manual_dir": manual_dir}
    try:
        return {split: _tfds_split(tfds, name, tfds_split, data_dir)
                for split, tfds_split in (("train", train_split), ("test", test_split))}
    except Exception as err:  # TFDS signals "not prepared" with several exception types
        if tfds.builder(name, data_dir=data_dir).is_prepared():
            raise DatasetError(f"TFDS dataset {name!r} cannot be read with tfds.data_source ({err}); it must be "
                               f"prepared in ArrayRecord format: `tfds build {name} --file_format=array_record`"
                               ) from err
    ensure_tfds_prepared(spec)
    return {split: _tfds_split(tfds, name, tfds_split, data_dir)
            for split, tfds_split in (("train", train_split), ("test", test_split))}


def ensure_tfds_prepared(spec: dict):
    """Returns the prepared TFDS builder; downloads and prepares it when possible, and
    otherwise fails in seconds (not after TFDS's minutes of retries) saying how to provide it."""
    import tensorflow_datasets as tfds

    name = spec["name"]
    builder = tfds.builder(name, data_dir=spec.get("tfds_data_dir"))
    if builder.is_prepared():
        return builder
    where = builder.data_dir
    how = (f"Provide it by running `tfds build {name} --file_format=array_record` (with "
           f"`pip install -r envs/tfds.txt`) on a machine with internet and copying its data directory to "
           f"{where}, or set `tfds_data_dir:` in the config to where it already is.")
    manual = os.path.expanduser(spec["manual_dir"]) if spec.get("manual_dir") else None
    if not spec.get("download", True):
        raise DatasetError(f"TFDS dataset {name!r} is not prepared in {where} and download is disabled. {how}")
    if not manual and not network_reachable():
        raise DatasetError(f"TFDS dataset {name!r} is not prepared in {where} and cannot be downloaded: "
                           f"no network ({TFDS_PROBE_HOST[0]} unreachable). {how}")
    try:
        import tensorflow  # noqa: F401  (TFDS needs it to encode image features)
    except ImportError as err:
        raise DatasetError(f"preparing TFDS dataset {name!r} needs TensorFlow: "
                           f"`pip install -r envs/tfds.txt`. {how}") from err
    config = tfds.download.DownloadConfig(manual_dir=manual) if manual else None
    builder.download_and_prepare(file_format="array_record", download_config=config)
    return builder


def _tfds_split(tfds, name, split, data_dir) -> Split:
    source = tfds.data_source(name, split=split, data_dir=data_dir)
    n = len(source)
    first = source[0]
    images = np.empty((n, *np.asarray(first["image"]).shape), np.uint8)
    labels = np.empty((n,), np.int32)
    for i in range(n):
        record = source[i]
        images[i] = record["image"]
        labels[i] = record["label"]
    return Split(images, labels)


def class_names_for(spec: dict) -> list[str] | None:
    if spec["source"] == "sklearn_digits":
        return [str(i) for i in range(10)]
    return spec.get("class_names")


def load_source(spec: dict) -> dict[str, Split]:
    """``spec`` is one entry of the config's ``datasets:`` mapping."""
    source = spec["source"]
    if source == "idx":
        return load_idx(spec["path"])
    if source == "sklearn_digits":
        return load_sklearn_digits(seed=spec.get("seed", 0))
    if source == "synthetic":
        return make_synthetic(tuple(spec["image_shape"]), spec["num_classes"], spec["train_size"],
                              spec["test_size"], seed=spec.get("seed", 0))
    if source == "tfds":
        return load_tfds(spec["name"], data_dir=spec.get("tfds_data_dir"),
                         train_split=spec.get("train_split", "train"), test_split=spec.get("test_split", "test"),
                         download=spec.get("download", True), manual_dir=spec.get("manual_dir"))
    raise DatasetError(f"unknown dataset source {source!r}; known sources: {', '.join(SOURCES)}")
