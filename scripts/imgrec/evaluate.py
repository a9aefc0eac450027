"""Evaluation: restore a checkpoint, score the test split, assemble the result."""

from __future__ import annotations

from imgrec import checkpoint, provenance
from imgrec.config import config_hash, dataset_identity, validate_schema
from imgrec.data import load_prepared
from imgrec.hardware import select_devices
from imgrec.train import Trainer

RESULT_SCHEMA = "result.schema.json"


def mfu(summary: dict, hardware_spec: dict, precision: str, hardware: dict) -> float | None:
    """Model-FLOPs utilization against the target's data-sheet peak (None where no peak is known,
    and for emulated runs: a virtual CPU device has no TPU peak)."""
    if hardware.get("emulated"):
        return None
    devices = hardware.get("devices", 1)
    peak = (hardware_spec.get("peak_flops") or {}).get(precision)
    if not peak or not summary.get("flops_per_step") or not summary.get("train_seconds"):
        return None
    achieved = summary["flops_per_step"] * summary["steps"] / summary["train_seconds"]
    return achieved / (peak * devices)


def evaluate_experiment(spec: dict, data_dir, checkpoint_dir, summary: dict) -> dict:
    devices, hardware = select_devices(spec["hardware_spec"], spec.get("emulate", False))
    dataset = load_prepared(data_dir)
    trainer = Trainer(spec, dataset, devices)
    state = checkpoint.restore(checkpoint_dir, trainer.abstract_state())
    test = trainer.evaluate(state.params, state.batch_stats, dataset.test, trainer.eval_image_size())
    curve = summary.get("curve", [])
    train_hw = summary.get("hardware", hardware)
    result = {
        "experiment": spec["name"],
        "description": spec.get("description"),
        "model": spec["model"],
        "model_args": spec.get("model_args", {}),
        "dataset": {"key": spec["dataset"], "name": dataset_identity(spec["dataset_spec"]),
                    "source": spec["dataset_spec"]["source"], "synthetic": spec["dataset_spec"]["source"] == "synthetic",
                    "sizes": dataset.meta["sizes"], "image_shape": dataset.meta["image_shape"],
                    "fingerprint": dataset.meta["fingerprint"]},
        "precision": spec["precision"],
        "hardware": train_hw,
        "seed": spec.get("seed", 0),
        "schedule": spec["schedule"],
        "augment": spec.get("augment", []),
        "test": test,
        "train": {
            **{k: summary.get(k) for k in ("epochs", "steps", "batch_size", "train_seconds", "compile_seconds",
                                           "wall_seconds", "images_per_s", "flops_per_step", "total_flops",
                                           "time_to_target_seconds", "time_to_target_end_to_end_seconds")},
            "target_accuracy": spec.get("target_accuracy"),
            "mfu": mfu(summary, spec["hardware_spec"], spec["precision"], train_hw),
            "final_train_loss": curve[-1]["train_loss"] if curve else None,
            "final_train_accuracy": curve[-1]["train_accuracy"] if curve else None,
            "best_test_accuracy": max((r.get("test_accuracy", 0.0) for r in curve), default=None),
            "curve": curve,
            "evals": summary.get("evals", []),
        },
        "provenance": provenance.collect(config_hash(spec), dataset.meta, devices),
    }
    return validate_schema(result, RESULT_SCHEMA, what="result")
