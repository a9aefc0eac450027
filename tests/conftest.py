"""Shared fixtures: tiny configs and prepared datasets, 8 virtual CPU devices.

JAX_NUM_CPU_DEVICES must be set before JAX starts: with 8 virtual devices the
sharded code paths run here; single-device tests pick ``jax.devices()[:1]``.
"""

import copy
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import pytest  # noqa: E402

TINY_CONFIG = {
    "emulate": True,
    "figures": False,  # `rule all` without the deck here; tests/test_figures.py builds it
    "hardware_file": str(REPO / "config" / "hardware.yaml"),
    "references_file": str(REPO / "config" / "references.csv"),
    "datasets": {
        "digits": {"source": "sklearn_digits"},
        "tiny_synthetic": {"source": "synthetic", "image_shape": [8, 8, 3], "num_classes": 4,
                           "train_size": 256, "test_size": 64, "seed": 0},
    },
    "experiments": {
        "tiny_mnist": {"model": "mnist_cnn", "dataset": "digits", "precision": "fp32", "hardware": "cpu",
                       "seed": 0, "schedule": {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 64,
                                               "epochs": 1, "steps_per_call": 2}},
        "tiny_cifar_bf16": {"model": "cifar_cnn", "dataset": "tiny_synthetic", "precision": "bf16",
                            "hardware": "cpu", "seed": 0,
                            "schedule": {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 32,
                                         "epochs": 2}},
    },
}


@pytest.fixture
def tiny_config():
    from imgrec.config import check_config, validate_schema

    return check_config(validate_schema(copy.deepcopy(TINY_CONFIG)))


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """Prepared tiny datasets, keyed like TINY_CONFIG['datasets']."""
    from imgrec.data import load_prepared, load_source, write_prepared

    root = tmp_path_factory.mktemp("data")
    out = {}
    for key, spec in TINY_CONFIG["datasets"].items():
        write_prepared(root / key, load_source(spec), source={"key": key, **spec})
        out[key] = load_prepared(root / key)
    return out
