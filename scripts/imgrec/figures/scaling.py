"""Figure: measured training throughput against device count, with ideal linear scaling.

One line per (model, strategy) from ``results/scaling/*.json``; the dotted line
of the same colour is ideal scaling from its 1-device point. Hollow markers are
emulated points (virtual CPU devices sharing one host's cores). Reading the
result files and the command line live in ``imgrec.figures.scaling_curves``
(``python scripts/make_figures.py scaling ...``).
"""

from __future__ import annotations

from pathlib import Path

from imgrec.figures.style import apply_style, plt, save_figure, write_caption


def plot_scaling(points: list[dict], out_stem, title: str = "Scaling: measured vs ideal") -> list[Path]:
    apply_style()
    fig, ax = plt.subplots()
    series: dict = {}
    for p in points:
        series.setdefault((p["model"], p["strategy"]), []).append(p)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, ((model, strategy), pts) in enumerate(sorted(series.items())):
        pts = sorted(pts, key=lambda p: p["devices"])
        c = colors[i % len(colors)]
        n = [p["devices"] for p in pts]
        ax.plot(n, [p["images_per_s"] for p in pts], color=c, label=f"{model} · {strategy}")
        for p in pts:
            ax.plot(p["devices"], p["images_per_s"], "o", ms=8, color=c,
                    markerfacecolor="white" if p.get("emulated") else c)
        one = next((p for p in pts if p["devices"] == 1), None)
        if one:
            ax.plot(n, [one["images_per_s"] * k for k in n], ":", color=c, linewidth=1.5)
    ax.plot([], [], ":", color="gray", label="ideal (linear from 1 device)")
    if any(p.get("emulated") for p in points):
        ax.plot([], [], "o", color="gray", markerfacecolor="white", label="emulated (virtual CPU devices)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    counts = sorted({p["devices"] for p in points})
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.set_xlabel("devices")
    ax.set_ylabel("training throughput (images/s)")
    ax.set_title(title)
    ax.legend(loc="upper left")
    paths = save_figure(fig, out_stem)
    plt.close(fig)
    emulated = sum(bool(p.get("emulated")) for p in points)
    write_caption(out_stem, f"{title}. Weak scaling (fixed batch per device); dotted: ideal linear scaling "
                  f"from each line's 1-device point. {emulated} of {len(points)} points are emulated on "
                  "virtual CPU devices sharing one host's cores (hollow markers): they measure overheads, "
                  "not an interconnect.")
    return paths
