#!/usr/bin/env python3
"""Run one command as several local JAX processes (multi-host emulation).

Each process gets a share of virtual CPU devices and joins one process group
through a local coordinator (jax.distributed, gloo CPU collectives): 4 processes
x 8 devices stand in for a TPU v3-32's 4 hosts. Exits non-zero if any process does.

    python scripts/launch_local.py --processes 4 --devices-per-process 8 -- python scripts/train_model.py ...
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imgrec.parallel.multihost import launch_local  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--devices-per-process", type=int, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    procs = launch_local(args.processes, args.devices_per_process, command)
    codes = [p.wait() for p in procs]
    failed = [i for i, c in enumerate(codes) if c]
    if failed:
        print(f"launch_local: process(es) {failed} failed with {[codes[i] for i in failed]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
