"""Config: schema validation, cross-reference checks and experiment resolution.

Kept free of JAX imports: the Snakefile imports it at parse time, and
``snakemake -n`` should stay fast.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "workflow" / "schemas"


class ConfigError(ValueError):
    """The config is wrong; the message says what and how to fix it."""


def load_yaml(path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _with_defaults(validator_class):
    """jsonschema validator that fills ``default`` values, as Snakemake's validate does."""
    from jsonschema import validators

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(prop, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def validate_schema(instance: dict, schema_name: str = "config.schema.yaml", what: str = "config") -> dict:
    """Validates in place (filling defaults) and returns the instance."""
    from jsonschema import Draft202012Validator

    schema = load_yaml(SCHEMA_DIR / schema_name) if schema_name.endswith(".yaml") else \
        json.loads((SCHEMA_DIR / schema_name).read_text())
    validator = _with_defaults(Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  - at {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:10]]
        raise ConfigError(f"invalid {what} (schema workflow/schemas/{schema_name}):\n" + "\n".join(lines))
    return instance


def load_hardware(config: dict) -> dict:
    path = REPO_ROOT / config.get("hardware_file", "config/hardware.yaml")
    if not path.exists():
        raise ConfigError(f"hardware registry {path} not found (config key `hardware_file`)")
    return load_yaml(path)


def check_config(config: dict) -> dict:
    """Cross-reference checks the schema cannot express. Returns the config."""
    hardware = load_hardware(config)
    datasets = config["datasets"]
    problems = []
    for name, exp in config["experiments"].items():
        if exp["dataset"] not in datasets:
            problems.append(f"experiment {name!r}: unknown dataset {exp['dataset']!r}; "
                            f"defined datasets: {', '.join(sorted(datasets))}")
        if exp["hardware"] not in hardware:
            problems.append(f"experiment {name!r}: unknown hardware {exp['hardware']!r}; "
                            f"targets in {config.get('hardware_file')}: {', '.join(sorted(hardware))}")
        if exp["model"].startswith("vit") and exp["schedule"].get("image_sizes"):
            problems.append(f"experiment {name!r}: progressive resizing (image_sizes) needs a convolutional model; "
                            f"a ViT's position embeddings fix its input size")
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
    return config


def load_config(*paths, overrides: dict | None = None) -> dict:
    """Loads, merges (later files win, per top-level key merge of mappings), validates."""
    config: dict = {}
    for path in paths:
        for key, value in load_yaml(path).items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
    config.update(overrides or {})
    return check_config(validate_schema(config))


def experiment_names(config: dict) -> list[str]:
    return sorted(config["experiments"])


def resolve_experiment(config: dict, name: str) -> dict:
    """Everything one experiment's jobs need, as one JSON-able dict."""
    if name not in config["experiments"]:
        raise ConfigError(f"{name!r} names no experiment; configured experiments: "
                          f"{', '.join(experiment_names(config))}")
    exp = copy.deepcopy(config["experiments"][name])
    hardware = load_hardware(config)
    return {
        "name": name,
        **exp,
        "dataset_spec": {"key": exp["dataset"], **config["datasets"][exp["dataset"]]},
        "hardware_spec": {"name": exp["hardware"], **hardware[exp["hardware"]]},
        "emulate": bool(config.get("emulate", False)),
    }


def dataset_identity(dataset_spec: dict) -> str:
    """Name used to look up published references: TFDS or idx name, else the config key."""
    return dataset_spec.get("name") or dataset_spec.get("key") or dataset_spec["source"]


def config_hash(spec: dict) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
