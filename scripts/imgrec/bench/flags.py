"""XLA:CPU flags for the benchmark, applied before JAX is imported (no JAX import here).

Empty by default: every flag tried on this machine (jax 0.10.2: oneDNN custom calls
and fusions, XNNPACK fusions and graph fusion, YNNPACK fusion types, the legacy
non-thunk runtime, fast math) was no faster than XLA's defaults, which already
run dots and convolutions through YNNPACK. ``IMGREC_XLA_FLAGS`` adds flags
for experiments without editing code.
"""

from __future__ import annotations

import os

RECOMMENDED: tuple[str, ...] = ()


def apply_xla_cpu_flags(extra: str | None = None) -> str:
    flags = [f for f in (*RECOMMENDED, *(extra or os.environ.get("IMGREC_XLA_FLAGS", "")).split()) if f]
    current = os.environ.get("XLA_FLAGS", "")
    for f in flags:
        if f.split("=")[0] not in current:
            current = f"{current} {f}".strip()
    if current:
        os.environ["XLA_FLAGS"] = current
    return current
