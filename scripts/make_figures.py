#!/usr/bin/env python3
"""Render one figure (or table, index page) of the talk's deck.

    python scripts/make_figures.py compute_eras --facts config/facts/compute_eras.csv \\
        --out results/figures/compute_eras results/*.json
    python scripts/make_figures.py scaling     --out results/figures/scaling [results/scaling/*.json]
    python scripts/make_figures.py precision   --out results/figures/precision results/*.json
    python scripts/make_figures.py curves      --out results/figures/training_curves results/*.json
    python scripts/make_figures.py recap_table --recap results/recap.csv --out results/figures/recap_table
    python scripts/make_figures.py rulegraph   --out results/figures/rulegraph [--target all figures]
    python scripts/make_figures.py index       --dir results/figures --out results/figures/index.html
    python scripts/make_figures.py collect     --src results/figures --dest figures FILE ...

Each figure is written as <out>.png (slides), .pdf and .svg (print) and .txt (caption),
byte-for-byte the same when its inputs are. `<figure> --help` shows a figure's options.
"""

import importlib
import sys

COMMANDS = {
    "compute_eras": "imgrec.figures.compute_eras",
    "scaling": "imgrec.figures.scaling_curves",
    "precision": "imgrec.figures.precision",
    "curves": "imgrec.figures.curves",
    "recap_table": "imgrec.figures.recap_table",
    "rulegraph": "imgrec.figures.rulegraph",
}


def _index(argv):
    import argparse

    from imgrec.figures.deck import write_index

    p = argparse.ArgumentParser(prog="make_figures.py index", description="write index.html for the deck")
    p.add_argument("--dir", required=True, help="the directory holding the figures and notebooks")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    print(write_index(args.dir, args.out))
    return 0


def _collect(argv):
    import argparse

    from imgrec.figures.deck import collect

    p = argparse.ArgumentParser(prog="make_figures.py collect", description="copy the deck into its directory")
    p.add_argument("--src", required=True, help="where the files were rendered (paths are kept relative to it)")
    p.add_argument("--dest", required=True)
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    for path in collect(args.src, args.dest, args.files):
        print(path)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    commands = sorted([*COMMANDS, "index", "collect"])
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: make_figures.py {" + ",".join(commands) + "} [options]\n\n" + __doc__.strip())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "index":
        return _index(rest)
    if name == "collect":
        return _collect(rest)
    if name not in COMMANDS:
        print(f"unknown figure {name!r}; one of: {', '.join(commands)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name])
    sys.argv[0] = f"make_figures.py {name}"
    status = module.main(rest)
    if not status and "--out" in rest:
        print(f"{name}: wrote {rest[rest.index('--out') + 1]}.*", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
