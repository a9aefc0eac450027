"""Measure training throughput for 1, 2, 4, 8 devices per model and strategy.

    python scripts/measure_scaling.py --name cpu [--devices 1 2 4 8] [--pairs resnet9-w16:dp vit-tiny:pp]
        [--platform cpu|gpu|tpu] [--requested tpu-v3-8] [--figure results/figures/scaling]

Writes results/scaling/<name>.json (see imgrec.scaling for what is measured).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imgrec import scaling  # noqa: E402


def main(args=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--pairs", nargs="+", default=[f"{m}:{s}" for m, s in scaling.DEFAULT_PAIRS],
                        help=f"model:strategy; models {', '.join(scaling.MODELS)}; "
                             f"strategies {', '.join(scaling.STRATEGIES)}")
    parser.add_argument("--platform", default="cpu", help="cpu: virtual devices per point; else real devices")
    parser.add_argument("--requested", default=None, help="hardware target recorded as requested")
    parser.add_argument("--peak-flops", type=float, default=None, help="per device, for utilization")
    parser.add_argument("--per-device-batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out-dir", default="results/scaling")
    parser.add_argument("--figure", default=None, help="also plot to this stem")
    ns = parser.parse_args(args)
    pairs = [tuple(p.split(":")) for p in ns.pairs]
    result = scaling.sweep(pairs, ns.devices, platform=ns.platform, requested=ns.requested,
                           peak_flops=ns.peak_flops, per_device_batch=ns.per_device_batch, steps=ns.steps)
    path = scaling.write(result, ns.name, ns.out_dir)
    print(f"wrote {path}")
    if ns.figure:
        from imgrec.figures.scaling import plot_scaling
        plot_scaling(result["points"], ns.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
