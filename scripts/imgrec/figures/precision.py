"""Figure: lower precision. fp32 against bf16 for the same model and data.

Experiments are paired when they share the model and the dataset and differ in
precision; each pair gets test accuracy (left) and training throughput
(right) side by side, with the bf16/fp32 ratio written above the bars.

CLI::

    python scripts/make_figures.py precision --out results/figures/precision results/*.json
"""

from __future__ import annotations

import numpy as np

from imgrec.figures.common import PRECISION_COLORS, dataset_label, hardware_label, placeholder, results_figure_main
from imgrec.figures.style import apply_style, plt, save_figure, write_caption

TITLE = "Lower precision: fp32 against bf16"
PRECISIONS = ("fp32", "bf16")


def find_pairs(records: list[dict]) -> list[dict]:
    """Groups with one experiment per precision, keyed by (model, dataset); sorted.

    Where several experiments share a model, dataset and precision (e.g. other
    hardware), each such group is split by hardware label as well."""
    groups: dict[tuple, dict] = {}
    for r in records:
        key = (r["model"], r["dataset"].get("key") or r["dataset"].get("name"), hardware_label(r["hardware"]))
        groups.setdefault(key, {}).setdefault(r["precision"], r)
    pairs = []
    for (model, dataset, hw), by_precision in sorted(groups.items()):
        if all(p in by_precision for p in PRECISIONS):
            first = by_precision["fp32"]
            pairs.append({"model": model, "dataset": dataset_label(first), "hardware": hw,
                          **{p: by_precision[p] for p in PRECISIONS}})
    return pairs


def plot_precision(records: list[dict], out_stem):
    pairs = find_pairs(records)
    if not pairs:
        names = ", ".join(f"{r['experiment']} ({r['precision']})" for r in records) or "none"
        return placeholder(out_stem, TITLE, "No fp32/bf16 pair of experiments in the results yet",
                           f"{TITLE}. No pair of experiments with the same model and dataset in both fp32 and "
                           f"bf16 was found among the results ({names}); add a bf16 twin of an fp32 "
                           "experiment to the config to fill this figure.")
    apply_style()
    fig, (ax_acc, ax_ips) = plt.subplots(1, 2)
    x = np.arange(len(pairs))
    width = 0.38
    labels = [f"{p['model']}\n{p['dataset']}\n{p['hardware']}" for p in pairs]
    panels = [(ax_acc, "Test accuracy (%)", lambda r: 100.0 * r["test"]["accuracy"], "{:.2f}"),
              (ax_ips, "Training throughput (images/s)", lambda r: r["train"]["images_per_s"], "{:,.0f}")]
    for ax, ylabel, value, fmt in panels:
        top = 0.0
        for i, precision in enumerate(PRECISIONS):
            vals = [value(p[precision]) for p in pairs]
            top = max(top, *vals)
            bars = ax.bar(x + (i - 0.5) * width, vals, width, color=PRECISION_COLORS[precision],
                          label=precision, zorder=3)
            for bar, v in zip(bars, vals):
                ax.annotate(fmt.format(v), (bar.get_x() + bar.get_width() / 2, v), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=11)
        for j, p in enumerate(pairs):
            ratio = value(p["bf16"]) / value(p["fp32"]) if value(p["fp32"]) else float("nan")
            ax.annotate(f"bf16/fp32 = {ratio:.2f}x", (x[j], top * 1.12), ha="center", va="bottom",
                        fontsize=11, color="0.3")
        ax.set_ylim(0, top * 1.25 if top > 0 else 1)
        ax.set_xticks(x, labels, fontsize=11)
        ax.set_ylabel(ylabel)
        ax.grid(False, axis="x")
    ax_acc.legend(loc="lower left")
    fig.suptitle(TITLE, x=0.01, ha="left", fontsize=18, fontweight="bold")
    fig.tight_layout()
    save_figure(fig, out_stem)
    write_caption(out_stem, caption(pairs))
    return fig


def caption(pairs) -> str:
    parts = [f"{TITLE}, for {len(pairs)} model/dataset pair(s): test accuracy (left) and training "
             "throughput in images/s, compilation excluded (right). bf16 means bf16 compute with fp32 "
             "parameters and loss."]
    for p in pairs:
        a, b = p["fp32"], p["bf16"]
        parts.append(
            f"{p['model']} on {p['dataset']} ({p['hardware']}): {a['experiment']} {100 * a['test']['accuracy']:.2f}% at "
            f"{a['train']['images_per_s']:,.0f} img/s, {b['experiment']} {100 * b['test']['accuracy']:.2f}% at "
            f"{b['train']['images_per_s']:,.0f} img/s.")
    if any(p["fp32"]["hardware"].get("actual") == "cpu" for p in pairs):
        parts.append("On a CPU, bf16 has no fast matrix units to use, so it is not expected to be faster there; "
                     "the speed-up of the talk comes from TPUs and recent GPUs.")
    return " ".join(parts)


def main(argv=None) -> int:
    return results_figure_main(TITLE, plot_precision, argv)
