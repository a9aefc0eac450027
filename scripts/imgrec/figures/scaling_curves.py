"""Figure: scaling curves. Measured images/s against device count, with ideal
linear scaling, from whatever ``results/scaling/<name>.json`` exist.

Each file holds ``{"points": [{model, strategy, devices, images_per_s,
emulated, ...}], "note": ...}`` (written by ``imgrec.scaling``). One line per
file, model and strategy; the dashed line of the same colour is ideal linear
scaling from that line's 1-device point; hollow markers are emulated points
(virtual CPU devices sharing one host's cores: overheads, not interconnect).
With no scaling results the figure says so instead of plotting anything. Where the
scaling stage's own ``imgrec.figures.scaling.plot_scaling`` exists, it draws the
figure from the same points; the plot below is the fallback.

CLI::

    python scripts/make_figures.py scaling --out results/figures/scaling [results/scaling/*.json]
"""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from imgrec.figures.common import color_for, placeholder
from imgrec.figures.style import apply_style, plt, save_figure, write_caption

TITLE = "Scaling: measured throughput against device count"


def load_scaling(paths) -> list[dict]:
    """``[{"name": <file stem>, "note": str, "points": [...]}]`` for readable files, sorted by name."""
    out = []
    for path in sorted({str(p) for p in paths}):
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        points = data.get("points") if isinstance(data, dict) else None
        if isinstance(points, list):
            out.append({"name": Path(path).stem, "note": data.get("note", ""), "kind": data.get("kind", ""),
                        "points": [p for p in points if isinstance(p, dict)]})
    return out


def series(results: list[dict]) -> list[dict]:
    lines = {}
    for res in results:
        for p in res["points"]:
            if "images_per_s" not in p or "devices" not in p:
                continue
            key = (res["name"], str(p.get("model", "?")), str(p.get("strategy", "?")))
            lines.setdefault(key, []).append(p)
    return [{"name": k[0], "model": k[1], "strategy": k[2], "points": sorted(v, key=lambda p: p["devices"])}
            for k, v in sorted(lines.items())]


def _shared_plot():
    """``imgrec.figures.scaling.plot_scaling(points, out_stem)`` (the scaling stage's figure), if present."""
    try:
        from imgrec.figures import scaling
    except ImportError:
        return None
    return getattr(scaling, "plot_scaling", None)


def plot_scaling(results: list[dict], out_stem):
    """The figure (a Figure, or None when the scaling stage's own plot_scaling drew and closed it)."""
    lines = series(results)
    if not lines:
        where = ", ".join(r["name"] for r in results) or "results/scaling/ is empty"
        return placeholder(out_stem, TITLE, "No scaling results yet\n(run the scaling sweep to fill this figure)",
                           f"{TITLE}. No scaling results yet ({where}): this figure is drawn from "
                           "results/scaling/*.json and shows measured images/s against device count, with ideal "
                           "linear scaling, once a scaling sweep has written them.")
    shared = _shared_plot()
    if shared is not None:  # the scaling stage's own figure, where that module is present
        shared([p for s in lines for p in s["points"]], out_stem)
        return None
    apply_style()
    fig, ax = plt.subplots()
    devices = sorted({p["devices"] for s in lines for p in s["points"]})
    multi_file = len({s["name"] for s in lines}) > 1
    any_emulated = False
    for i, s in enumerate(lines):
        color = color_for(i)
        xs = [p["devices"] for p in s["points"]]
        ys = [p["images_per_s"] for p in s["points"]]
        label = f"{s['model']} {s['strategy']}" + (f" [{s['name']}]" if multi_file else "")
        ax.plot(xs, ys, "-", color=color, label=label, zorder=3)
        for x, y, p in zip(xs, ys, s["points"]):
            emulated = bool(p.get("emulated"))
            any_emulated |= emulated
            ax.plot([x], [y], "o", ms=8, color=color, markerfacecolor="white" if emulated else color, zorder=4)
        base = next((p["images_per_s"] for p in s["points"] if p["devices"] == 1), None)
        if base:
            ax.plot(xs, [base * x for x in xs], "--", color=color, alpha=0.5, lw=1.5, zorder=2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(devices))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Devices")
    ax.set_ylabel("Training throughput (images/s, log scale)")
    ax.set_title(TITLE, loc="left")
    ax.plot([], [], "--", color="0.4", alpha=0.6, label="ideal linear scaling")
    if any_emulated:
        ax.plot([], [], "o", ms=8, color="0.4", markerfacecolor="white", ls="none", label="emulated (virtual CPU devices)")
    ax.legend(loc="upper left", fontsize=11)
    save_figure(fig, out_stem)
    write_caption(out_stem, caption(results, lines, any_emulated))
    return fig


def caption(results, lines, any_emulated) -> str:
    parts = [f"{TITLE}, from {len(results)} scaling result file(s) ({', '.join(r['name'] for r in results)}): "
             f"{len(lines)} line(s), one per model and parallelism strategy; dashed: ideal linear scaling from "
             "the 1-device point."]
    kinds = sorted({r["kind"] for r in results if r["kind"]})
    if kinds:
        parts.append("Kind: " + "; ".join(kinds) + ".")
    if any_emulated:
        parts.append("Hollow markers are emulated points: virtual CPU devices that share one host's cores show "
                     "overheads, not a real interconnect.")
    notes = sorted({r["note"] for r in results if r["note"]})
    parts += [n if n.endswith(".") else n + "." for n in notes]
    return " ".join(parts)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=TITLE)
    p.add_argument("results", nargs="*", help="results/scaling/<name>.json files (none: a placeholder)")
    p.add_argument("--out", required=True, help="output stem (writes .png .pdf .svg .txt)")
    args = p.parse_args(argv)
    fig = plot_scaling(load_scaling(args.results), args.out)
    if fig is not None:
        plt.close(fig)
    return 0
