"""The recap table: one row per experiment, our number beside the published one."""

from __future__ import annotations

import json

import pandas as pd

COLUMNS = ["experiment", "model", "dataset", "data_source", "precision", "hardware", "test_accuracy",
           "test_top5_accuracy", "reference_accuracy", "reference_hardware", "reference_time", "train_seconds",
           "time_to_target_seconds", "time_to_target_end_to_end_seconds", "target_accuracy", "images_per_s", "mfu",
           "epochs", "reference_source"]


def hardware_label(hw: dict) -> str:
    label = f"{hw['actual']} x{hw['devices']}"
    if hw.get("emulated"):
        label = f"{hw['requested']} emulated on {label}"
    return label


def build_recap(result_paths, references: pd.DataFrame) -> pd.DataFrame:
    refs = {(r.model, r.dataset): r for r in references.itertuples(index=False)}
    rows = []
    for path in result_paths:
        with open(path) as f:
            result = json.load(f)
        ref = refs.get((result["model"], result["dataset"]["name"]))
        rows.append({
            "experiment": result["experiment"],
            "model": result["model"],
            "dataset": result["dataset"]["name"],
            "data_source": result["dataset"]["source"],
            "precision": result["precision"],
            "hardware": hardware_label(result["hardware"]),
            "test_accuracy": round(result["test"]["accuracy"], 4),
            "test_top5_accuracy": round(result["test"]["top5_accuracy"], 4),
            "reference_accuracy": getattr(ref, "value", None),
            "reference_hardware": getattr(ref, "hardware", None),
            "reference_time": getattr(ref, "time", None),
            "train_seconds": round(result["train"]["train_seconds"], 1),
            "time_to_target_seconds": result["train"].get("time_to_target_seconds"),
            "time_to_target_end_to_end_seconds": result["train"].get("time_to_target_end_to_end_seconds"),
            "target_accuracy": result["train"].get("target_accuracy"),
            "images_per_s": round(result["train"]["images_per_s"], 1),
            "mfu": result["train"].get("mfu"),
            "epochs": result["train"]["epochs"],
            "reference_source": getattr(ref, "source", None),
        })
    frame = pd.DataFrame(rows, columns=COLUMNS).sort_values("experiment", kind="stable")
    return frame.reset_index(drop=True)


def _pct(x):
    return "" if pd.isna(x) else f"{100 * float(x):.2f}%"


def _to_target(r) -> str:
    """'46.6 s to 91%' (end to end: training, evaluations, compilation), '-' without a target,
    'not reached' when the target was missed."""
    target = getattr(r, "target_accuracy", None)  # absent from recap.csv files written before this column
    seconds = getattr(r, "time_to_target_end_to_end_seconds", None)
    if target is None or pd.isna(target):
        return "-"
    percent = f"{100 * float(target):g}%"
    if seconds is None or pd.isna(seconds):
        return f"not reached ({percent})"
    return f"{seconds:.1f} s to {percent}"


def to_markdown(frame: pd.DataFrame) -> str:
    lines = ["| experiment | model | data | precision | hardware | test acc. | reference | time (s) | to target | img/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in frame.itertuples(index=False):
        data = r.dataset if r.data_source in (r.dataset, "tfds") else f"{r.dataset} ({r.data_source})"
        ref = _pct(r.reference_accuracy)
        if ref and isinstance(r.reference_hardware, str):
            ref += f" ({r.reference_hardware}, {r.reference_time})"
        lines.append(f"| {r.experiment} | {r.model} | {data} | {r.precision} | {r.hardware} | "
                     f"{_pct(r.test_accuracy)} | {ref or '-'} | {r.train_seconds:.1f} | {_to_target(r)} | "
                     f"{r.images_per_s:,.0f} |")
    sources = sorted({s for s in frame.reference_source if isinstance(s, str)})
    if sources:
        lines += ["", "References: " + "; ".join(sources) + "."]
    return "\n".join(lines) + "\n"
