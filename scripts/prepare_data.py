#!/usr/bin/env python3
"""Prepare one dataset: read it from its source, write the canonical prepared format.

By hand:  python scripts/prepare_data.py --dataset digits --out results/data/digits
"""

import argparse
import json
import sys
import time

from imgrec.cli import DEFAULT_CONFIG, fail
from imgrec.config import ConfigError, load_config
from imgrec.data import DatasetError, load_source, write_prepared
from imgrec.data.sources import class_names_for


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-spec", help="dataset config entry as JSON (what the Snakemake rule passes)")
    parser.add_argument("--dataset", help="dataset name, resolved from --configfile")
    parser.add_argument("--configfile", nargs="+", default=[DEFAULT_CONFIG])
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    try:
        if args.dataset_spec:
            spec = json.loads(args.dataset_spec)
        elif args.dataset:
            datasets = load_config(*args.configfile)["datasets"]
            if args.dataset not in datasets:
                raise ConfigError(f"unknown dataset {args.dataset!r}; defined: {', '.join(sorted(datasets))}")
            spec = {"key": args.dataset, **datasets[args.dataset]}
        else:
            raise ConfigError("give --dataset NAME (or --dataset-spec JSON)")
        t0 = time.perf_counter()
        if spec["source"] == "tfds" and not spec.get("materialize", True):
            from imgrec.data.records import prepare_records
            from imgrec.data.prepared import write_meta

            meta = write_meta(args.out, prepare_records(spec))
        else:
            meta = write_prepared(args.out, load_source(spec), source=spec, class_names=class_names_for(spec))
    except (ConfigError, DatasetError) as err:
        fail(err)
    print(f"prepared {spec.get('key', spec['source'])}: train {meta['sizes']['train']}, test {meta['sizes']['test']}, "
          f"images {meta['image_shape']}, {meta['num_classes']} classes, {meta['fingerprint'][:19]}..., "
          f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
