"""On-the-fly decoding of record datasets (ImageNet, Imagenette): preprocessing and errors."""

import io

import numpy as np
import pytest
from PIL import Image

from imgrec.data import DatasetError
from imgrec.data.records import RecordSplit, center_crop, open_record_splits, prepare_records, random_resized_crop


def jpeg(h, w, seed):
    array = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def source():
    return [{"image": jpeg(40 + 7 * i, 60 - 3 * i, i), "label": i % 3} for i in range(6)]


def test_gather_decodes_crops_and_is_deterministic(source):
    split = RecordSplit(source, image_size=24, seed=1, workers=3)
    idx = np.array([[0, 5], [2, 3]])
    images, labels = split.gather(idx, epoch=0, train=True)
    assert images.shape == (2, 2, 24, 24, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [[0, 2], [2, 0]])
    again, _ = split.gather(idx, epoch=0, train=True)
    np.testing.assert_array_equal(images, again)
    other, _ = split.gather(idx, epoch=1, train=True)
    assert not np.array_equal(images, other), "augmentation must change with the epoch"
    test_images, _ = split.gather(np.arange(6))
    np.testing.assert_array_equal(test_images, split.gather(np.arange(6))[0])
    np.testing.assert_array_equal(split.labels, [0, 1, 2, 0, 1, 2])


def test_center_crop_keeps_the_middle():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 90:110] = 255
    out = center_crop(Image.fromarray(image), 32)
    assert out.shape == (32, 32, 3) and out[:, 16].mean() > 200 and out[:, 0].mean() < 10


def test_random_resized_crop_shape():
    out = random_resized_crop(Image.fromarray(np.zeros((50, 80, 3), np.uint8)), 16, np.random.default_rng(0))
    assert out.shape == (16, 16, 3)


def test_imagenet_without_manual_files_says_which_go_where(tmp_path):
    with pytest.raises(DatasetError, match=r"missing ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar in .*manual"):
        prepare_records({"source": "tfds", "name": "imagenet2012", "tfds_data_dir": str(tmp_path / "tfds"),
                         "manual_dir": str(tmp_path / "manual")})
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "ILSVRC2012_img_train.tar").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"missing ILSVRC2012_img_val.tar"):
        prepare_records({"source": "tfds", "name": "imagenet2012", "tfds_data_dir": str(tmp_path / "tfds"),
                         "manual_dir": str(tmp_path / "manual")})


def test_record_splits_through_tfds_data_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    meta = {"tfds": {"name": "imagenette", "train_split": "train", "test_split": "validation"},
            "image_shape": [32, 32, 3], "source": {"seed": 0}}
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        train, test = open_record_splits(meta)
        images, labels = train.gather(np.arange(4).reshape(2, 2), epoch=0, train=True)
    assert images.shape == (2, 2, 32, 32, 3) and labels.shape == (2, 2)
    assert len(test) == 6
