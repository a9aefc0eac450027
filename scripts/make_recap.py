#!/usr/bin/env python3
"""Write the recap table (CSV and Markdown) from results/<experiment>.json files.

By hand:  python scripts/make_recap.py --csv /tmp/recap.csv --md /tmp/recap.md results/*.json
"""

import argparse

import pandas as pd

from imgrec.recap import build_recap, to_markdown


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="result JSON files")
    parser.add_argument("--references", default="config/references.csv", help="published reference figures")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--md", required=True)
    args = parser.parse_args(argv)
    frame = build_recap(args.results, pd.read_csv(args.references))
    frame.to_csv(args.csv, index=False)
    markdown = to_markdown(frame)
    with open(args.md, "w") as f:
        f.write(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
