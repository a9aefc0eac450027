"""Benchmarks: the pipeline's own trainer against a PyTorch reference, measured side by side.

Benchmark-only code: PyTorch is imported only by ``torch_ref`` (``envs/bench.txt``);
the pipeline itself never needs it. Entry point: ``scripts/benchmark.py``.
"""

import statistics


def median(xs):
    return float(statistics.median(xs)) if xs else None
