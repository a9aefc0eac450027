"""Figure: the pipeline itself, Snakemake's rule graph.

``snakemake --rulegraph`` gives the graph as DOT text; Graphviz ``dot`` lays it
out (``-Tplain``: node centres and edge splines, the graph first put in a canonical order, with node sizes fixed from the
labels measured here, so the layout does not depend on Graphviz's fonts) and
matplotlib draws it in the slide style, saved through ``save_figure`` (so the
PNG/PDF/SVG are byte-for-byte reproducible, which Graphviz's own PDF, carrying
a creation date, is not). Without ``dot`` on the PATH a built-in layered
layout is used instead, so the figure never fails for lack of Graphviz; the
caption says which layout made it. The DOT text is kept next to the figure.

CLI::

    python scripts/make_figures.py rulegraph --out results/figures/rulegraph \
        [--snakefile Snakefile] [--configfile FILE ...] [--target all ...]
    python scripts/make_figures.py rulegraph --dot graph.dot --out ...   # from saved DOT text
"""

from __future__ import annotations

import colorsys
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from imgrec.figures.style import apply_style, plt, save_figure, write_caption

TITLE = "The pipeline: Snakemake's rule graph"
FONT_SIZE = 14  # points; the layout is in inches, so text and boxes keep their printed sizes
PAD_X, PAD_Y = 0.22, 0.16  # inches around a label inside its box
ARROW_IN = 10 / 72  # Graphviz stops an edge's spline one arrowhead (10 pt) short of the node

_NODE = re.compile(r'^\s*(\w+)\s*\[(.*)\]\s*;?\s*$')
_EDGE = re.compile(r'^\s*(\w+)\s*->\s*(\w+)\s*;?\s*$')
_ATTR = re.compile(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s\]]+)')


# ---------------------------------------------------------------- the graph
def rulegraph_dot(snakefile, directory=".", configfiles=(), targets=(), timeout=300) -> str:
    """``snakemake --rulegraph`` for the given Snakefile, directory, config files and targets."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(directory),
           "--rulegraph", "--nolock"]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    cmd += list(targets)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"snakemake --rulegraph failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    start = proc.stdout.find("digraph")
    if start < 0:
        raise RuntimeError(f"snakemake --rulegraph printed no graph:\n{proc.stdout[-2000:]}")
    return proc.stdout[start:].rstrip() + "\n"


def parse_dot(text: str) -> tuple[dict, list]:
    """Nodes ``{id: {"label", "color"}}`` and edges ``[(tail, head)]`` of Snakemake's DOT output."""
    nodes, edges = {}, []
    for line in text.splitlines():
        m = _EDGE.match(line)
        if m:
            edges.append((m.group(1), m.group(2)))
            continue
        m = _NODE.match(line)
        if m and m.group(1) not in ("graph", "node", "edge"):
            attrs = {k: v.strip('"') for k, v in _ATTR.findall(m.group(2))}
            nodes[m.group(1)] = {"label": attrs.get("label", m.group(1)), "color": attrs.get("color", "0 0 0.5")}
    for tail, head in edges:
        for n in (tail, head):
            nodes.setdefault(n, {"label": n, "color": "0 0 0.5"})
    return canonical(nodes, edges)


def canonical(nodes: dict, edges: list) -> tuple[dict, list]:
    """Nodes renamed n0, n1, ... in label order, edges sorted: Snakemake numbers the rules and
    orders the edges differently from run to run, and the figure must not change with that."""
    order = sorted(nodes, key=lambda n: (nodes[n]["label"], n))
    ids = {n: f"n{i}" for i, n in enumerate(order)}
    new_nodes = {ids[n]: dict(nodes[n]) for n in order}
    new_edges = sorted({(ids[t], ids[h]) for t, h in edges}, key=lambda e: (int(e[0][1:]), int(e[1][1:])))
    return new_nodes, new_edges


def to_dot(nodes: dict, edges: list) -> str:
    """The canonical graph as DOT text (what is saved next to the figure)."""
    lines = ["digraph snakemake_rulegraph {",
             '    node [shape=box, style=rounded, fontname="DejaVu Sans", fontsize=14, penwidth=2];',
             "    edge [penwidth=2, color=grey];"]
    lines += [f'    {n} [label="{spec["label"]}", color="{spec["color"]}"];' for n, spec in nodes.items()]
    lines += [f"    {t} -> {h};" for t, h in edges]
    return "\n".join(lines + ["}"]) + "\n"


def node_color(spec: str):
    """Snakemake writes colours as HSV triples ("0.13 0.6 0.85")."""
    try:
        h, s, v = (float(x) for x in spec.replace(",", " ").split())
        return colorsys.hsv_to_rgb(h, s, v)
    except ValueError:
        return spec


# ---------------------------------------------------------------- layout
def measure_nodes(nodes: dict) -> dict:
    """Box size in inches for each node, from its label rendered at FONT_SIZE."""
    fig = plt.figure()
    renderer = fig.canvas.get_renderer()
    sizes = {}
    for n, spec in nodes.items():
        t = fig.text(0, 0, spec["label"], fontsize=FONT_SIZE)
        bb = t.get_window_extent(renderer)
        sizes[n] = (round(bb.width / fig.dpi + 2 * PAD_X, 3), round(bb.height / fig.dpi + 2 * PAD_Y, 3))
        t.remove()
    plt.close(fig)
    return sizes


def layout_graphviz(nodes, edges, sizes, dot="dot"):
    """Positions (inches) and edge splines from ``dot -Tplain``."""
    lines = ["digraph G {", "  graph [rankdir=TB, nodesep=0.35, ranksep=0.45];",
             "  node [shape=box, fixedsize=true, label=\"\"];"]
    lines += [f'  {n} [width={w}, height={h}];' for n, (w, h) in sizes.items()]
    lines += [f"  {t} -> {h};" for t, h in edges]
    lines.append("}")
    proc = subprocess.run([dot, "-Tplain"], input="\n".join(lines), capture_output=True, text=True, timeout=60)
    if proc.returncode:
        raise RuntimeError(f"dot failed: {proc.stderr[-2000:]}")
    pos, splines = {}, []
    for line in proc.stdout.splitlines():
        f = shlex.split(line)
        if not f:
            continue
        if f[0] == "node":
            pos[f[1]] = (float(f[2]), float(f[3]))
        elif f[0] == "edge":
            n = int(f[3])
            pts = [(float(f[4 + 2 * i]), float(f[5 + 2 * i])) for i in range(n)]
            splines.append((f[1], f[2], pts))
    return pos, splines


def layout_layered(nodes, edges, sizes, nodesep=0.35, ranksep=0.45):
    """A small layered (Sugiyama-style) layout: longest-path ranks, barycentre ordering,
    straight edges. Deterministic; for when Graphviz is not installed."""
    preds = {n: [] for n in nodes}
    for t, h in edges:
        preds[h].append(t)
    rank, visiting = {}, set()

    def depth(n):
        if n not in rank:
            if n in visiting:  # a cycle (not in a rule graph): break it
                return 0
            visiting.add(n)
            rank[n] = 1 + max((depth(p) for p in preds[n]), default=-1)
            visiting.discard(n)
        return rank[n]

    for n in sorted(nodes):
        depth(n)
    layers: dict[int, list] = {}
    for n in sorted(nodes, key=lambda n: (rank[n], nodes[n]["label"])):
        layers.setdefault(rank[n], []).append(n)
    order = {n: i for layer in layers.values() for i, n in enumerate(layer)}
    for _ in range(4):  # barycentre sweeps, top-down
        for r in sorted(layers):
            if r == 0:
                continue
            layers[r].sort(key=lambda n: (sum(order[p] for p in preds[n]) / len(preds[n]) if preds[n] else order[n],
                                          nodes[n]["label"]))
            order.update({n: i for i, n in enumerate(layers[r])})
    pos = {}
    row_h = max(h for _, h in sizes.values()) + ranksep
    top = (len(layers) - 1) * row_h
    for r, layer in layers.items():
        widths = [sizes[n][0] for n in layer]
        x = -(sum(widths) + nodesep * (len(layer) - 1)) / 2
        for n, w in zip(layer, widths):
            pos[n] = (x + w / 2, top - r * row_h)
            x += w + nodesep
    minx = min(pos[n][0] - sizes[n][0] / 2 for n in pos)
    pos = {n: (x - minx, y + sizes[n][1] / 2) for n, (x, y) in pos.items()}
    return pos, None


# ---------------------------------------------------------------- drawing
def _boundary_point(center, size, toward):
    """Where the segment from ``center`` to ``toward`` leaves the node's box."""
    (cx, cy), (w, h) = center, size
    dx, dy = toward[0] - cx, toward[1] - cy
    scale = min((w / 2) / abs(dx) if dx else float("inf"), (h / 2) / abs(dy) if dy else float("inf"))
    return cx + dx * scale, cy + dy * scale


def draw(nodes, edges, sizes, pos, splines, engine: str, out_stem):
    apply_style()
    xs = [pos[n][0] + s * sizes[n][0] / 2 for n in nodes for s in (-1, 1)]
    ys = [pos[n][1] + s * sizes[n][1] / 2 for n in nodes for s in (-1, 1)]
    for _, _, pts in splines or []:  # Graphviz may route an edge around the nodes
        xs += [x for x, _ in pts]
        ys += [y for _, y in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    margin = 0.2
    width, height = (x1 - x0) + 2 * margin, (y1 - y0) + 2 * margin
    fig = plt.figure(figsize=(max(width, 4.0), height + 0.7))
    ax = fig.add_axes((0, 0, 1, height / (height + 0.7)))
    ax.set_xlim(x0 - margin - (max(width, 4.0) - width) / 2, x1 + margin + (max(width, 4.0) - width) / 2)
    ax.set_ylim(y0 - margin, y1 + margin)
    ax.set_aspect("equal")
    ax.set_axis_off()
    edge_kw = dict(color="0.55", lw=1.8, zorder=1)
    if splines is not None:
        for tail, head, pts in splines:
            codes = [MplPath.MOVETO] + [MplPath.CURVE4] * (len(pts) - 1)
            ax.add_patch(FancyArrowPatch(path=MplPath(pts, codes), arrowstyle="-", **edge_kw))
            (ax_, ay_), (bx, by) = pts[-2], pts[-1]
            norm = ((bx - ax_) ** 2 + (by - ay_) ** 2) ** 0.5 or 1.0
            tip = (bx + (bx - ax_) / norm * ARROW_IN, by + (by - ay_) / norm * ARROW_IN)
            ax.annotate("", xy=tip, xytext=(bx, by),
                        arrowprops=dict(arrowstyle="-|>,head_length=0.6,head_width=0.3", shrinkA=0, shrinkB=0,
                                        **edge_kw))
    else:
        row = min(sizes[n][1] for n in nodes)
        for tail, head in edges:
            start = _boundary_point(pos[tail], sizes[tail], pos[head])
            end = _boundary_point(pos[head], sizes[head], pos[tail])
            # an edge skipping ranks bends aside rather than crossing the boxes between
            skips = abs(pos[tail][1] - pos[head][1]) > 2.5 * row
            ax.annotate("", xy=end, xytext=start,
                        arrowprops=dict(arrowstyle="-|>,head_length=0.6,head_width=0.3", shrinkA=0, shrinkB=0,
                                        connectionstyle=f"arc3,rad={0.45 if skips else 0}", **edge_kw))
    for n in sorted(nodes):
        (cx, cy), (w, h) = pos[n], sizes[n]
        color = node_color(nodes[n]["color"])
        ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.1",
                                    facecolor="white", edgecolor=color, lw=2.2, zorder=2))
        ax.text(cx, cy, nodes[n]["label"], ha="center", va="center", fontsize=FONT_SIZE, zorder=3)
    fig.suptitle(TITLE, x=0.01, ha="left", fontsize=18, fontweight="bold")
    save_figure(fig, out_stem)
    write_caption(out_stem, caption(nodes, edges, engine))
    Path(str(out_stem) + ".dot").write_text(to_dot(nodes, edges), encoding="utf-8")
    return fig


def caption(nodes, edges, engine) -> str:
    labels = sorted(spec["label"] for spec in nodes.values())
    how = ("laid out by Graphviz dot" if engine == "graphviz"
           else "laid out by a built-in layered layout (Graphviz's dot was not installed)")
    return (f"{TITLE}: {len(nodes)} rules ({', '.join(labels)}) and {len(edges)} dependencies, from "
            f"`snakemake --rulegraph`, {how}. Each arrow reads 'the outputs of this rule feed that one'; "
            "every number in the talk is made by one path through this graph.")


def plot_rulegraph(dot_text: str, out_stem, engine: str = "auto"):
    """Render DOT text from ``snakemake --rulegraph``; ``engine``: auto, graphviz or layered."""
    nodes, edges = parse_dot(dot_text)
    if not nodes:
        raise ValueError("the rule graph has no nodes")
    sizes = measure_nodes(nodes)
    dot = shutil.which("dot")
    if engine == "graphviz" or (engine == "auto" and dot):
        if not dot:
            raise RuntimeError("Graphviz's dot is not installed (Debian: apt-get install graphviz)")
        pos, splines = layout_graphviz(nodes, edges, sizes, dot)
        engine = "graphviz"
    else:
        pos, splines = layout_layered(nodes, edges, sizes)
        engine = "layered"
    return draw(nodes, edges, sizes, pos, splines, engine, out_stem)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=TITLE)
    p.add_argument("--out", required=True, help="output stem (writes .png .pdf .svg .txt .dot)")
    p.add_argument("--dot", help="read DOT text from this file instead of running snakemake --rulegraph")
    p.add_argument("--snakefile", default="Snakefile")
    p.add_argument("--directory", default=".")
    p.add_argument("--configfile", nargs="*", default=[])
    p.add_argument("--target", nargs="*", default=[], help="targets whose rule graph to draw (default: the default target)")
    p.add_argument("--engine", choices=["auto", "graphviz", "layered"], default="auto")
    args = p.parse_args(argv)
    if args.dot:
        text = Path(args.dot).read_text(encoding="utf-8")
    else:
        text = rulegraph_dot(args.snakefile, args.directory, args.configfile, args.target)
    plt.close(plot_rulegraph(text, args.out, args.engine))
    return 0
