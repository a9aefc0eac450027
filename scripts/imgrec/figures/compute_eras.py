"""Figure: "Two Distinct Eras of Compute Usage in Training AI Systems".

Training compute (petaflop/s-days, log scale) against publication date, after
OpenAI's "AI and Compute" (2018) and its 2019 addendum: a ~2-year doubling time
before 2012 and a 3.4-month doubling time after. Each trend line has its slope
fixed to the stated doubling time; only its intercept is fitted (least squares
in log space) to the points of that era. The pipeline's own training runs
(XLA-counted FLOPs) are overlaid as "this pipeline".

CLI::

    python -m imgrec.figures.compute_eras --facts config/facts/compute_eras.csv \
        [--epoch-csv PATH_OR_URL] [--results-dir results] [results/<experiment>.json ...] \
        --out results/figures/compute_eras
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib.dates as mdates
from matplotlib.text import Text
import numpy as np
import pandas as pd

from imgrec.figures.style import apply_style, plt, save_figure, write_caption

TITLE = "Two Distinct Eras of Compute Usage in Training AI Systems"
FLOP_PER_PFS_DAY = 1e15 * 86400  # 8.64e19 FLOP
ERA_BOUNDARY = pd.Timestamp("2012-01-01")
DOUBLING_YEARS = {"first": 2.0, "modern": 3.4 / 12.0}
ERA_LABEL = {"first": "First era", "modern": "Modern era"}
COLORS = {"first": "#1f77b4", "modern": "#d62728", "own": "#2ca02c"}
MAX_LABELLED_POINTS = 40  # beyond this (e.g. the full Epoch table) labels are skipped


# ---------------------------------------------------------------- loading
def load_facts(path) -> pd.DataFrame:
    """The shipped fact table: ``system,date,pfs_days,era,source``."""
    df = pd.read_csv(path)
    df["date"] = pd.to_datetime(df["date"])
    return _with_era(df)


def load_epoch_csv(path_or_url) -> pd.DataFrame:
    """Epoch AI's ``notable_ai_models.csv`` (file path or URL) as a facts table.

    Keeps ``Model``, ``Publication date``, ``Training compute (FLOP)``; drops
    rows without a date or compute and converts FLOP to pfs-days.
    """
    raw = pd.read_csv(path_or_url)
    df = pd.DataFrame(
        {
            "system": raw["Model"].astype(str),
            "date": pd.to_datetime(raw["Publication date"], errors="coerce"),
            "flop": pd.to_numeric(raw["Training compute (FLOP)"], errors="coerce"),
        }
    )
    df = df.dropna(subset=["date", "flop"])
    df = df[df["flop"] > 0]
    df["pfs_days"] = df["flop"] / FLOP_PER_PFS_DAY
    df["source"] = "Epoch AI notable models database (CC-BY 4.0)"
    df = df.drop(columns="flop").sort_values(["date", "system"]).reset_index(drop=True)
    return _with_era(df)


def _with_era(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    derived = np.where(df["date"] < ERA_BOUNDARY, "first", "modern")
    if "era" in df.columns:
        df["era"] = df["era"].fillna(pd.Series(derived, index=df.index))
    else:
        df["era"] = derived
    return df


def _get(record: dict, dotted: str):
    """``record['a']['b']`` or ``record['a.b']``; None if absent."""
    if dotted in record:
        return record[dotted]
    node = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def load_own_runs(results_dir) -> pd.DataFrame:
    """Own runs from ``<results_dir>/*.json`` with ``experiment``,
    ``train.total_flops`` and ``provenance.created``; anything else is skipped."""
    return load_own_runs_from(Path(results_dir).glob("*.json"))


def load_own_runs_from(paths) -> pd.DataFrame:
    """Own runs from the given result files (as ``load_own_runs``)."""
    rows = []
    for path in sorted(Path(p) for p in paths):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        flops, created = _get(record, "train.total_flops"), _get(record, "provenance.created")
        try:
            flops = float(flops)
            date = pd.to_datetime(created, utc=True).tz_localize(None)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(flops) or flops <= 0 or pd.isna(date):
            continue
        rows.append({"system": str(record.get("experiment") or path.stem), "date": date, "flops": flops})
    return pd.DataFrame(rows, columns=["system", "date", "flops"])


# ---------------------------------------------------------------- fitting
def decimal_year(dates) -> np.ndarray:
    d = pd.to_datetime(pd.Series(dates)).reset_index(drop=True)
    start = pd.to_datetime(d.dt.year.astype(str) + "-01-01")
    end = pd.to_datetime((d.dt.year + 1).astype(str) + "-01-01")
    return (d.dt.year + (d - start) / (end - start)).to_numpy(dtype=float)


def fit_fixed_slope(years: np.ndarray, pfs_days: np.ndarray, doubling_years: float):
    """Intercept-only least squares of log10(pfs_days) = a + b*year with
    b = log10(2)/doubling_years fixed. Returns (a, b)."""
    slope = math.log10(2.0) / doubling_years
    intercept = float(np.mean(np.log10(pfs_days) - slope * years))
    return intercept, slope


def _year_to_timestamp(year: float) -> pd.Timestamp:
    y = int(math.floor(year))
    start, end = pd.Timestamp(f"{y}-01-01"), pd.Timestamp(f"{y + 1}-01-01")
    return start + (end - start) * (year - y)


# ---------------------------------------------------------------- plotting
_OFFSETS = [(8, 4), (8, -14), (-8, 4), (-8, -14), (14, 16), (-14, 16), (14, -26), (-14, -26),
            (30, 0), (-30, 0), (30, -18), (-30, -18), (30, 18), (-30, 18), (45, -32), (-45, -32),
            (45, 32), (-45, 32), (60, 0), (-60, 0), (60, -45), (-60, -45), (60, 45), (-60, 45)]


def _place_labels(fig, ax, xs, ys, names, color, taken, point_px):
    """Greedy non-overlapping label placement (deterministic); ``taken`` holds
    the boxes of labels already placed, ``point_px`` all markers in pixels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for x, y, name in zip(xs, ys, names):
        best = None
        for dx, dy in _OFFSETS:
            ann = ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points",
                              fontsize=10, color=color, va="center",
                              ha="left" if dx > 0 else ("right" if dx < 0 else "center"),
                              arrowprops=dict(arrowstyle="-", color=color, lw=0.6, alpha=0.7,
                                              shrinkA=1, shrinkB=4))
            ann.update_positions(renderer)
            bb = Text.get_window_extent(ann, renderer).expanded(1.04, 1.15)  # text only
            overlap = sum(_overlap(bb, t) for t in taken)
            overlap += sum(bb.contains(px, py) for px, py in point_px) * 50.0
            axbb = ax.get_window_extent(renderer)
            outside = bb.x0 < axbb.x0 or bb.x1 > axbb.x1 or bb.y0 < axbb.y0 or bb.y1 > axbb.y1
            score = overlap + (1e6 if outside else 0.0)
            if best is None or score < best[0]:
                if best is not None:
                    best[1].remove()
                best = (score, ann, bb)
            else:
                ann.remove()
            if score == 0:
                break
        taken.append(best[2])


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if (w > 0 and h > 0) else 0.0


def plot_compute_eras(facts: pd.DataFrame, own_runs: pd.DataFrame | None, out_stem):
    """Render the figure, save png/pdf/svg + caption at ``out_stem``; return the Figure."""
    apply_style()
    facts = _with_era(facts.assign(date=pd.to_datetime(facts["date"])))
    facts = facts.sort_values(["date", "system"]).reset_index(drop=True)
    own = None
    if own_runs is not None and len(own_runs):
        own = own_runs.assign(date=pd.to_datetime(own_runs["date"]),
                              pfs_days=own_runs["flops"].astype(float) / FLOP_PER_PFS_DAY)
        own = own.sort_values(["date", "system"]).reset_index(drop=True)

    fig, ax = plt.subplots()
    ax.set_yscale("log")
    label_points = len(facts) <= MAX_LABELLED_POINTS
    fits = {}
    for era in ("first", "modern"):
        sub = facts[facts["era"] == era]
        if sub.empty:
            continue
        ax.scatter(sub["date"], sub["pfs_days"], s=55 if label_points else 18, color=COLORS[era],
                   zorder=3, edgecolor="white", linewidth=0.6,
                   label=f"{ERA_LABEL[era]} ({'before' if era == 'first' else 'from'} 2012)")
        years = decimal_year(sub["date"])
        a, b = fit_fixed_slope(years, sub["pfs_days"].to_numpy(float), DOUBLING_YEARS[era])
        fits[era] = (a, b, len(sub))
        x0, x1 = years.min(), years.max()
        if era == "first":
            x1 = max(x1, 2012.0)
        else:
            x0 = min(x0, 2012.0)
        grid = np.linspace(x0, x1, 200)
        doubling = "2-year" if era == "first" else "3.4-month"
        ax.plot([_year_to_timestamp(g) for g in grid], 10 ** (a + b * grid), "--",
                color=COLORS[era], alpha=0.8, zorder=2, label=f"{doubling} doubling (fit)")

    if own is not None:
        ax.scatter(own["date"], own["pfs_days"], marker="*", s=260, color=COLORS["own"],
                   edgecolor="black", linewidth=0.6, zorder=4, label="this pipeline (XLA-counted FLOPs)")

    # Axis limits: whole decades around everything shown, own runs included.
    all_y = facts["pfs_days"].to_numpy(float)
    all_dates = list(facts["date"])
    if own is not None:
        all_y = np.concatenate([all_y, own["pfs_days"].to_numpy(float)])
        all_dates += list(own["date"])
    lo = 10.0 ** (math.floor(math.log10(all_y.min())) - 1)
    hi = 10.0 ** (math.ceil(math.log10(all_y.max())) + 1)
    ax.set_ylim(lo, hi)
    xmin = pd.Timestamp(f"{min(all_dates).year - 2}-01-01")
    xmax = pd.Timestamp(f"{max(all_dates).year + 3}-01-01")
    ax.set_xlim(xmin, xmax)
    ax.axvline(ERA_BOUNDARY, color="0.5", linestyle=":", linewidth=1.5, zorder=1)
    ax.axvspan(ERA_BOUNDARY, xmax, color=COLORS["modern"], alpha=0.04, zorder=0)

    from matplotlib.ticker import LogLocator, NullFormatter
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=30))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("Training compute (petaflop/s-days, log scale)")
    ax.set_xlabel("Publication date")
    ax.set_title(TITLE, loc="left")
    ax.legend(loc="upper left")
    ax.grid(True, which="major", axis="y")
    ax.grid(False, axis="x")

    fig.canvas.draw()
    taken = [ax.get_legend().get_window_extent(fig.canvas.get_renderer())]
    pts = facts[["date", "pfs_days"]] if own is None else pd.concat(
        [facts[["date", "pfs_days"]], own[["date", "pfs_days"]]])
    point_px = ax.transData.transform(
        np.column_stack([mdates.date2num(pts["date"]), pts["pfs_days"].to_numpy(float)]))
    if label_points:
        for era in ("first", "modern"):
            sub = facts[facts["era"] == era]
            _place_labels(fig, ax, list(sub["date"]), list(sub["pfs_days"]), list(sub["system"]),
                          COLORS[era], taken, point_px)
    if own is not None and len(own) <= 5:
        _place_labels(fig, ax, list(own["date"]), list(own["pfs_days"]), list(own["system"]),
                      "#1a6e1a", taken, point_px)

    save_figure(fig, out_stem)
    write_caption(out_stem, caption(facts, own, fits))
    return fig


def caption(facts, own, fits) -> str:
    sources = ""
    if "source" in facts:  # the part before ";" names the source, the rest is a note
        sources = "; ".join(sorted({str(x).split(";")[0].strip() for x in facts["source"].dropna()}))
    parts = [
        f"{TITLE}. Training compute in petaflop/s-days (1 pfs-day = 10^15 FLOP/s x 86,400 s "
        f"= 8.64e19 FLOP, log scale) against publication date for {len(facts)} systems.",
        "Trend lines follow OpenAI's \"AI and Compute\" (2018) and its 2019 addendum: "
        "their slopes are fixed to the stated doubling times (about 2 years before 2012, "
        "3.4 months from 2012) and only each line's intercept is fitted, by least squares "
        "on log10(compute), to that era's points"
        + "".join(f" ({ERA_LABEL[e].lower()}: n={fits[e][2]})" for e in ("first", "modern") if e in fits)
        + ".",
    ]
    if own is not None and len(own):
        parts.append(
            f"Stars: {len(own)} training run(s) of this pipeline, compute from XLA-counted FLOPs "
            f"({own['pfs_days'].min():.2g} to {own['pfs_days'].max():.2g} pfs-days).")
    if sources:
        parts.append(f"Data: {sources}.")
    return " ".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=TITLE)
    p.add_argument("--facts", default="config/facts/compute_eras.csv")
    p.add_argument("--epoch-csv", default=None,
                   help="Epoch AI notable_ai_models.csv (path or URL); replaces --facts")
    p.add_argument("--results-dir", default=None, help="read own runs from <dir>/*.json")
    p.add_argument("results", nargs="*", help="read own runs from these result files")
    p.add_argument("--out", required=True, help="output stem (writes .png .pdf .svg .txt)")
    args = p.parse_args(argv)
    facts = load_epoch_csv(args.epoch_csv) if args.epoch_csv else load_facts(args.facts)
    own = load_own_runs(args.results_dir) if args.results_dir else None
    if args.results:
        files = load_own_runs_from(args.results)
        own = files if own is None else pd.concat([own, files], ignore_index=True)
    fig = plot_compute_eras(facts, own, args.out)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
