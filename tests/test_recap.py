"""The recap table: one row per result, the time to target end to end."""

import json

import pandas as pd

from imgrec.recap import COLUMNS, build_recap, to_markdown


def result(name, target=None, end_to_end=None):
    return {"experiment": name, "model": "mnist_cnn", "precision": "fp32",
            "dataset": {"name": "fashion_mnist", "source": "idx"},
            "hardware": {"requested": "cpu", "actual": "cpu", "emulated": False, "devices": 1},
            "test": {"accuracy": 0.9235, "top5_accuracy": 0.999},
            "train": {"train_seconds": 50.0, "images_per_s": 2400.0, "epochs": 2, "target_accuracy": target,
                      "time_to_target_seconds": end_to_end and end_to_end - 9,
                      "time_to_target_end_to_end_seconds": end_to_end}}


def test_recap_reports_time_to_target_end_to_end(tmp_path):
    paths = []
    for r in (result("reached", 0.91, 46.61), result("missed", 0.95), result("no_target")):
        paths.append(tmp_path / f"{r['experiment']}.json")
        paths[-1].write_text(json.dumps(r))
    frame = build_recap(paths, pd.DataFrame(columns=["model", "dataset", "value", "hardware", "time", "source"]))
    assert list(frame.columns) == COLUMNS
    assert frame.set_index("experiment").loc["reached", "time_to_target_end_to_end_seconds"] == 46.61
    rows = {line.split(" | ")[0].strip("| "): line for line in to_markdown(frame).splitlines()[2:] if line}
    assert "| 46.6 s to 91% |" in rows["reached"]
    assert "| not reached (95%) |" in rows["missed"]
    assert "| 50.0 | - |" in rows["no_target"]
