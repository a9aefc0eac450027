"""Large datasets (ImageNet, Imagenette) stay in TFDS's ArrayRecord files and are
decoded and augmented on the fly, in parallel worker threads (JPEG decoding in
PIL releases the GIL), one step ahead of the trainer.

Standard ImageNet preprocessing: Inception-style random-resized crop (area
8-100%, aspect 3/4-4/3) and horizontal flip for training; resize the shorter
side to size/0.875 and center-crop for evaluation. Per-channel normalization
happens on the device (the trainer's ``normalize``) with ImageNet's statistics.
Each example's augmentation derives from (seed, epoch, index): deterministic,
and independent of worker scheduling.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]
CENTER_CROP_FRACTION = 0.875


def _pil(image):
    from PIL import Image

    if isinstance(image, (bytes, bytearray)):
        return Image.open(io.BytesIO(image)).convert("RGB")
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return Image.fromarray(array.astype(np.uint8)).convert("RGB")


def random_resized_crop(image, size: int, rng: np.random.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    from PIL import Image

    w, h = image.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw, ch = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
            break
    else:  # fall back to a center crop
        cw = ch = min(w, h)
        x, y = (w - cw) // 2, (h - ch) // 2
    image = image.resize((size, size), Image.BILINEAR, box=(x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(image, np.uint8)


def center_crop(image, size: int):
    from PIL import Image

    w, h = image.size
    resize = int(round(size / CENTER_CROP_FRACTION))
    scale = resize / min(w, h)
    image = image.resize((max(resize, int(round(w * scale))), max(resize, int(round(h * scale)))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), np.uint8)


class RecordSplit:
    """A split read from a random-access source (``tfds.data_source``)."""

    def __init__(self, source, image_size: int, seed: int = 0, workers: int | None = None):
        self.source = source
        self.image_size = image_size
        self.seed = seed
        self.pool = ThreadPoolExecutor(workers or min(32, (os.cpu_count() or 2) * 2))
        self._labels = None

    def __len__(self) -> int:
        return len(self.source)

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            self._labels = np.asarray([int(self.source[i]["label"]) for i in range(len(self))], np.int32)
        return self._labels

    def _one(self, index: int, epoch, train: bool):
        record = self.source[int(index)]
        image = _pil(record["image"])
        if train:
            rng = np.random.default_rng([self.seed, epoch or 0, int(index)])
            return random_resized_crop(image, self.image_size, rng), int(record["label"])
        return center_crop(image, self.image_size), int(record["label"])

    def gather(self, indices, epoch=None, train: bool = False):
        flat = np.asarray(indices).reshape(-1)
        out = list(self.pool.map(lambda i: self._one(i, epoch, train), flat))
        images = np.stack([o[0] for o in out]).reshape(*np.shape(indices), self.image_size, self.image_size, 3)
        labels = np.asarray([o[1] for o in out], np.int32).reshape(np.shape(indices))
        return images, labels


def open_record_splits(meta: dict):
    import tensorflow_datasets as tfds

    t = meta["tfds"]
    size = meta["image_shape"][0]
    seed = meta["source"].get("seed", 0)
    return tuple(RecordSplit(tfds.data_source(t["name"], split=t[f"{s}_split"], data_dir=t.get("data_dir")),
                             size, seed=seed) for s in ("train", "test"))


IMAGENET_MANUAL_FILES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


def prepare_records(spec: dict) -> dict:
    """Makes sure the TFDS dataset is prepared as ArrayRecord; returns the prepared meta (no copy of the data)."""
    import hashlib
    import json as _json

    import tensorflow_datasets as tfds

    from imgrec.data.prepared import DatasetError, FORMAT_VERSION
    from imgrec.data.sources import ensure_tfds_prepared

    name = spec["name"]
    if name.startswith("imagenet2012"):
        manual = os.path.expanduser(spec["manual_dir"]) if spec.get("manual_dir") else None
        builder = tfds.builder(name, data_dir=spec.get("tfds_data_dir"))
        if not builder.is_prepared():
            missing = [f for f in IMAGENET_MANUAL_FILES if not manual or not os.path.exists(os.path.join(manual, f))]
            if missing:
                raise DatasetError(
                    f"ImageNet ({name}) is not prepared in {builder.data_dir} and its manual download is incomplete: "
                    f"missing {', '.join(missing)} in {manual or '(no manual_dir set)'}. Download "
                    f"ILSVRC2012_img_train.tar (138 GB) and ILSVRC2012_img_val.tar (6.3 GB) from image-net.org, "
                    f"put both in one directory and set the dataset's `manual_dir:` to it.")
    builder = ensure_tfds_prepared(spec)
    info = builder.info
    num_classes = info.features["label"].num_classes
    sizes = {s: info.splits[spec.get(f"{s}_split", s)].num_examples for s in ("train", "test")}
    digest = hashlib.sha256(_json.dumps({"name": builder.info.full_name, "sizes": sizes,
                                         "files": sorted(str(f) for f in info.splits[spec.get("train_split", "train")]
                                                         .filenames)}, sort_keys=True).encode())
    size = spec.get("image_size", 224)
    return {
        "format_version": FORMAT_VERSION, "format": "tfds_records", "source": spec,
        "tfds": {"name": name, "data_dir": spec.get("tfds_data_dir"), "train_split": spec.get("train_split", "train"),
                 "test_split": spec.get("test_split", "test")},
        "image_shape": [size, size, 3], "num_classes": num_classes, "class_names": None, "sizes": sizes,
        "fingerprint": "sha256:" + digest.hexdigest(), "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
    }
