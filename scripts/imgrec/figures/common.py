"""Helpers shared by the figure modules: reading results, colours, placeholders."""

from __future__ import annotations

import json
from pathlib import Path

from imgrec.figures.style import apply_style, plt, save_figure, write_caption

# One colour per experiment, in sorted-experiment order (tab10, stable across figures).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
PRECISION_COLORS = {"fp32": "#1f77b4", "bf16": "#ff7f0e"}


def load_results(paths) -> list[dict]:
    """Experiment results (``results/<experiment>.json``), sorted by experiment name.

    Paths that are not experiment results (no ``experiment`` key) are skipped, so a
    glob over ``results/*.json`` is safe too."""
    records = []
    for path in sorted({str(p) for p in paths}):
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(record, dict) and "experiment" in record:
            records.append(record)
    return sorted(records, key=lambda r: r["experiment"])


def color_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def hardware_label(hw: dict) -> str:
    label = f"{hw.get('actual', '?')} x{hw.get('devices', '?')}"
    if hw.get("emulated"):
        label = f"{hw.get('requested')} emulated on {label}"
    return label


def dataset_label(record: dict) -> str:
    ds = record.get("dataset", {})
    name = ds.get("name") or ds.get("key") or "?"
    return f"{name} (synthetic)" if ds.get("synthetic") and "synthetic" not in name else name


def placeholder(out_stem, title: str, message: str, caption: str):
    """A figure that says plainly why there is nothing to plot yet (same size and style)."""
    apply_style()
    fig, ax = plt.subplots()
    ax.set_axis_off()
    ax.set_title(title, loc="left")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=20, color="0.35", wrap=True,
            transform=ax.transAxes)
    save_figure(fig, out_stem)
    write_caption(out_stem, caption)
    return fig


def results_figure_main(title: str, plot, argv=None) -> int:
    """The command line of a figure drawn from result files: ``results... --out STEM``."""
    import argparse

    p = argparse.ArgumentParser(description=title)
    p.add_argument("results", nargs="*", help="results/<experiment>.json files")
    p.add_argument("--out", required=True, help="output stem (writes .png .pdf .svg .txt)")
    args = p.parse_args(argv)
    plt.close(plot(load_results(args.results), args.out))
    return 0
