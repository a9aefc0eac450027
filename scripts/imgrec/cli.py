"""Shared pieces of the entry points in ``scripts/``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from imgrec.config import ConfigError, load_config, resolve_experiment

DEFAULT_CONFIG = "config/config.yaml"


def add_experiment_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("experiment (Snakemake passes --spec; by hand use --experiment)")
    group.add_argument("--spec", help="resolved experiment as JSON (what the Snakemake rule passes)")
    group.add_argument("--experiment", help="experiment name, resolved from --configfile")
    group.add_argument("--configfile", nargs="+", default=[DEFAULT_CONFIG],
                       help=f"config file(s), later ones override (default: {DEFAULT_CONFIG})")


def experiment_spec(args) -> dict:
    if args.spec:
        return json.loads(args.spec)
    if not args.experiment:
        raise ConfigError("give --experiment NAME (or --spec JSON)")
    return resolve_experiment(load_config(*args.configfile), args.experiment)


def write_json_atomic(path, data) -> None:
    """Never leaves a half-written file: write a temp file, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def fail(err: Exception) -> None:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
