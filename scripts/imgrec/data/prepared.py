"""The canonical prepared dataset that training and evaluation read.

A prepared dataset is a directory::

    meta.json                      source, shapes, classes, content fingerprint
    train_images.npy  uint8 NHWC   train_labels.npy  int32
    test_images.npy   uint8 NHWC   test_labels.npy   int32

Plain ``.npy`` files are memory-mapped, so loading costs nothing and batches
are gathered straight from the page cache, far faster than any trainer here
consumes them. Writing goes through a temporary directory renamed into place,
so an interrupted ``prepare`` never leaves a half-written dataset behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

SPLITS = ("train", "test")
FORMAT_VERSION = 1


class DatasetError(RuntimeError):
    """A dataset cannot be read or provided; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [N, H, W, C]
    labels: np.ndarray  # int32 [N]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def gather(self, indices, epoch=None, train: bool = False):
        """(images, labels) at ``indices`` (any shape). In-memory data is stored
        preprocessed, so ``epoch`` and ``train`` only matter for record splits."""
        return self.images[indices], self.labels[indices]


@dataclasses.dataclass(frozen=True)
class PreparedDataset:
    path: Path
    meta: dict
    train: Split
    test: Split

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.meta["image_shape"])


def fingerprint(splits: dict[str, Split]) -> str:
    """sha256 over the exact bytes (and shapes) of every split."""
    digest = hashlib.sha256()
    for name in SPLITS:
        split = splits[name]
        for array in (split.images, split.labels):
            digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return "sha256:" + digest.hexdigest()


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (for input normalization)."""
    total = np.zeros(images.shape[-1]); total_sq = np.zeros(images.shape[-1]); n = 0
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk].astype(np.float64).reshape(-1, images.shape[-1])
        total += block.sum(0); total_sq += (block ** 2).sum(0); n += block.shape[0]
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean ** 2, 1e-12))
    return [round(float(m), 6) for m in mean], [round(float(s), 6) for s in std]


def _check_split(name: str, split: Split) -> Split:
    images = np.asarray(split.images)
    labels = np.asarray(split.labels)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.dtype != np.uint8:
        raise DatasetError(f"{name} images must be uint8 [N,H,W,C], got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DatasetError(f"{name}: {images.shape[0]} images but labels of shape {labels.shape}")
    return Split(images, labels.astype(np.int32))


def write_prepared(out_dir: str | os.PathLike, splits: dict[str, Split], *, source: dict,
                   class_names: list[str] | None = None) -> dict:
    """Atomically writes a prepared dataset and returns its meta."""
    out_dir = Path(out_dir)
    splits = {name: _check_split(name, splits[name]) for name in SPLITS}
    shapes = {splits[name].images.shape[1:] for name in SPLITS}
    if len(shapes) != 1:
        raise DatasetError(f"train and test image shapes differ: {sorted(shapes)}")
    num_classes = int(max(int(s.labels.max()) for s in splits.values()) + 1)
    mean, std = channel_stats(splits["train"].images)
    meta = {
        "format_version": FORMAT_VERSION,
        "source": source,
        "image_shape": list(shapes.pop()),
        "num_classes": num_classes,
        "class_names": class_names,
        "sizes": {name: len(splits[name]) for name in SPLITS},
        "fingerprint": fingerprint(splits),
        "mean": mean,
        "std": std,
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name in SPLITS:
            np.save(tmp / f"{name}_images.npy", splits[name].images)
            np.save(tmp / f"{name}_labels.npy", splits[name].labels)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def write_meta(out_dir, meta: dict) -> dict:
    """A prepared dataset that is only a pointer (records read in place)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / "meta.json")
    return meta


def load_prepared(path: str | os.PathLike) -> PreparedDataset:
    path = Path(path)
    if path.name == "meta.json":
        path = path.parent
    meta_file = path / "meta.json"
    if not meta_file.exists():
        raise DatasetError(f"no prepared dataset at {path} (missing meta.json); run the prepare rule, "
                           f"e.g. `snakemake --cores 1 {meta_file}`")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") == "tfds_records":
        from imgrec.data.records import open_record_splits

        train, test = open_record_splits(meta)
        return PreparedDataset(path, meta, train, test)
    splits = {}
    for name in SPLITS:
        try:
            images = np.load(path / f"{name}_images.npy", mmap_mode="r")
            labels = np.load(path / f"{name}_labels.npy")
        except (OSError, ValueError) as err:
            raise DatasetError(f"prepared dataset {path} is incomplete or corrupt ({err}); "
                               f"delete the directory and prepare it again") from err
        splits[name] = Split(images, labels)
    return PreparedDataset(path, meta, splits["train"], splits["test"])
