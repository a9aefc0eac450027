"""Figure: scaling curves. Measured images/s against device count, with ideal
linear scaling, from whatever ``results/scaling/<name>.json`` exist.

Each file holds ``{"points": [{model, strategy, devices, images_per_s,
emulated, ...}], "note": ...}`` (written by ``imgrec.scaling``). One line per
file, model and strategy; the dashed line of the same colour is ideal linear
scaling from that line's 1-device point; hollow markers are emulated points
(virtual CPU devices sharing one host's cores: overheads, not interconnect).
With no scaling results the figure says so instead of plotting anything; otherwise
``imgrec.figures.scaling.plot_scaling`` draws it.

CLI::

    python scripts/make_figures.py scaling --out results/figures/scaling [results/scaling/*.json]
"""

from __future__ import annotations

import json
from pathlib import Path

from imgrec.figures.common import placeholder
from imgrec.figures.style import plt

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


def plot_scaling(results: list[dict], out_stem):
    """The figure (a Figure, or None when the scaling stage's own plot_scaling drew and closed it)."""
    lines = series(results)
    if not lines:
        where = ", ".join(r["name"] for r in results) or "results/scaling/ is empty"
        return placeholder(out_stem, TITLE, "No scaling results yet\n(run the scaling sweep to fill this figure)",
                           f"{TITLE}. No scaling results yet ({where}): this figure is drawn from "
                           "results/scaling/*.json and shows measured images/s against device count, with ideal "
                           "linear scaling, once a scaling sweep has written them.")
    # The scaling stage's own figure draws the measured lines.
    from imgrec.figures.scaling import plot_scaling as draw

    draw([p for line in lines for p in line["points"]], out_stem)
    return None


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
