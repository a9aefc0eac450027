"""Table: the recap (results/recap.csv) rendered for a slide, plus a Markdown copy.

Our test accuracy beside the published reference, and the hardware each ran on
(ours, and the reference's where the source states it).

CLI::

    python scripts/make_figures.py recap_table --recap results/recap.csv --out results/figures/recap_table
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from imgrec.figures.style import apply_style, plt, save_figure, write_caption
from imgrec.recap import to_markdown

TITLE = "Recap: our numbers and the published ones"
HEADER = ["experiment", "model", "data", "precision", "our hardware", "our test acc.", "reference acc.",
          "reference hardware, time", "train time", "images/s"]
HEADER_COLOR = "#2b3f5c"
OURS_COLOR = "#e8f1fb"
REF_COLOR = "#fdf1e3"


def read_recap(path) -> pd.DataFrame:
    return pd.read_csv(path)


def _text(x, fmt="{}") -> str:
    return "-" if x is None or (isinstance(x, float) and pd.isna(x)) or x == "" else fmt.format(x)


def rows(frame: pd.DataFrame) -> list[list[str]]:
    out = []
    for r in frame.itertuples(index=False):
        data = r.dataset if r.data_source in (r.dataset, "tfds") else f"{r.dataset} ({r.data_source})"
        ref_hw = ", ".join(_text(v) for v in (r.reference_hardware, r.reference_time) if _text(v) != "-") or "-"
        out.append([r.experiment, r.model, data, r.precision, r.hardware,
                    _text(r.test_accuracy, "{:.2%}"), _text(r.reference_accuracy, "{:.2%}"), ref_hw,
                    _text(r.train_seconds, "{:.1f} s"), _text(r.images_per_s, "{:,.0f}")])
    return out


def plot_recap_table(frame: pd.DataFrame, out_stem):
    apply_style()
    cells = rows(frame) or [["(no results)"] + [""] * (len(HEADER) - 1)]
    row_h = 0.5  # inches
    table_h = row_h * (len(cells) + 1)
    fig_h = table_h + 0.9
    # Column widths follow the longest text in each column (header words may wrap onto two lines).
    lengths = [max([max(len(w) for w in h.split()) + 2] + [len(str(r[c])) + 2 for r in cells])
               for c, h in enumerate(HEADER)]
    fig_w = max(12.8, 0.11 * sum(lengths))
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.0, 0.0, 1.0, table_h / fig_h))
    ax.set_axis_off()
    header = ["\n".join(textwrap.wrap(h, max(lengths[c] - 2, 4))) for c, h in enumerate(HEADER)]
    table = ax.table(cellText=cells, colLabels=header, bbox=(0, 0, 1, 1), cellLoc="center",
                     colWidths=[n / sum(lengths) for n in lengths])
    table.auto_set_font_size(False)
    table.set_fontsize(10.5)
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor("0.8")
        if row == 0:
            cell.set_facecolor(HEADER_COLOR)
            cell.get_text().set_color("white")
            cell.get_text().set_fontweight("bold")
        elif col == 5:
            cell.set_facecolor(OURS_COLOR)
            cell.get_text().set_fontweight("bold")
        elif col in (6, 7):
            cell.set_facecolor(REF_COLOR)
    fig.suptitle(TITLE, x=0.0, y=1.0 - 0.15 / fig_h, ha="left", va="top", fontsize=18, fontweight="bold")
    refs = sorted({s for s in frame.get("reference_source", pd.Series(dtype=object)) if isinstance(s, str)})
    if refs:
        ax.text(0.0, -0.04, textwrap.fill("References: " + "; ".join(refs), 180), fontsize=9, color="0.35",
                va="top", ha="left", transform=ax.transAxes)
    save_figure(fig, out_stem)
    write_caption(out_stem, caption(frame, refs))
    return fig


def caption(frame, refs) -> str:
    synthetic = [r.experiment for r in frame.itertuples(index=False) if r.data_source == "synthetic"]
    parts = [f"{TITLE}: {len(frame)} experiment(s), our test accuracy (blue) beside the published reference "
             "for the same model and dataset (orange) where one exists, the hardware each ran on, training time "
             "(compilation excluded) and throughput."]
    if synthetic:
        parts.append(f"Trained on synthetic data, so not comparable with any published number: {', '.join(synthetic)}.")
    if refs:
        parts.append("References: " + "; ".join(refs) + ".")
    return " ".join(parts)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="The recap table for a slide (PNG/PDF/SVG) and as Markdown")
    p.add_argument("--recap", default="results/recap.csv")
    p.add_argument("--out", required=True, help="output stem (writes .png .pdf .svg .txt .md)")
    args = p.parse_args(argv)
    frame = read_recap(args.recap)
    plt.close(plot_recap_table(frame, args.out))
    Path(args.out + ".md").write_text(f"# {TITLE}\n\n" + to_markdown(frame), encoding="utf-8")
    return 0
