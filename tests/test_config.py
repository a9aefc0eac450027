"""Config validation: every bad input gets a clear message before any work."""

import copy

import pytest
import yaml

from conftest import REPO, TINY_CONFIG
from imgrec import models
from imgrec.config import ConfigError, check_config, load_config, resolve_experiment, validate_schema


def check(config):
    return check_config(validate_schema(config))


def broken(**changes):
    config = copy.deepcopy(TINY_CONFIG)
    exp = config["experiments"]["tiny_mnist"]
    for key, value in changes.items():
        if value is None:
            exp.pop(key)
        else:
            exp[key] = value
    return config


@pytest.mark.parametrize("change, message", [
    ({"model": "resnet1000"}, r"experiments/tiny_mnist/model: 'resnet1000' is not one of"),
    ({"precision": "fp8"}, r"precision: 'fp8' is not one of"),
    ({"dataset": "imagenet_typo"}, r"unknown dataset 'imagenet_typo'; defined datasets: digits"),
    ({"hardware": "tpu-v9"}, r"unknown hardware 'tpu-v9'.*tpu-v3-8"),
    ({"schedule": None}, r"'schedule' is a required property"),
    ({"schedule": {"batch_size": "lots", "epochs": 1, "learning_rate": 0.1}}, r"batch_size: 'lots' is not of type"),
    ({"schedule": {"batch_size": 8, "epochs": 0, "learning_rate": 0.1}}, r"epochs: 0 is less than the minimum"),
    ({"colour": "blue"}, r"Additional properties are not allowed \('colour'"),
])
def test_bad_experiment_is_rejected_clearly(change, message):
    with pytest.raises(ConfigError, match=message):
        check(broken(**change))


def test_unknown_dataset_source():
    config = copy.deepcopy(TINY_CONFIG)
    config["datasets"]["digits"]["source"] = "kaggle"
    with pytest.raises(ConfigError, match=r"datasets/digits/source: 'kaggle' is not one of"):
        check(config)


def test_idx_dataset_needs_a_path():
    config = copy.deepcopy(TINY_CONFIG)
    config["datasets"]["digits"] = {"source": "idx", "name": "fashion_mnist"}
    with pytest.raises(ConfigError, match="'path' is a required property"):
        check(config)


def test_defaults_are_filled():
    config = check(copy.deepcopy(TINY_CONFIG))
    schedule = config["experiments"]["tiny_mnist"]["schedule"]
    assert schedule["lr_schedule"] == "constant" and schedule["eval_batch_size"] == 200
    assert config["data_dir"] == "results/data"


def test_unknown_experiment_lists_the_known_ones(tiny_config):
    with pytest.raises(ConfigError, match=r"'nope' names no experiment; configured experiments: tiny_cifar_bf16"):
        resolve_experiment(tiny_config, "nope")


def test_schema_model_names_match_the_registry():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    names = schema["properties"]["experiments"]["additionalProperties"]["properties"]["model"]["enum"]
    assert sorted(names) == sorted(models.MODELS)


@pytest.mark.parametrize("path", ["config/config.yaml", "config/talk.yaml"])
def test_shipped_configs_are_valid_and_documented(path):
    config = load_config(REPO / path)
    for name, exp in config["experiments"].items():
        assert exp.get("description"), f"{path}: {name} lacks a description (command, hardware, time, accuracy)"
