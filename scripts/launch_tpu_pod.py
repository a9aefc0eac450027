"""Run a command on every worker of a Cloud TPU slice named in config/hardware.yaml.

    python scripts/launch_tpu_pod.py --target tpu-v3-32 [--dry-run] -- python -m imgrec.cli train ...
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imgrec.config import load_hardware  # noqa: E402
from imgrec.parallel.tpu_pod import launch_argvs  # noqa: E402


def main(args=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True)
    parser.add_argument("--hardware-file", default="config/hardware.yaml")
    parser.add_argument("--no-sync", action="store_true", help="skip copying the checkout to the workers")
    parser.add_argument("--dry-run", action="store_true", help="print the gcloud commands only")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    hardware = load_hardware({"hardware_file": ns.hardware_file})
    argvs = launch_argvs({"name": ns.target, **hardware[ns.target]}, command, sync=not ns.no_sync)
    for argv in argvs:
        print(shlex.join(argv), flush=True)
        if not ns.dry_run:
            subprocess.run(argv, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
