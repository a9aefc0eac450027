"""Practical matmul peak of this machine, measured with JAX (XLA:CPU).

fp32: float32 x float32 -> float32. bf16: bfloat16 x bfloat16 with float32
accumulation (``preferred_element_type=float32``), the form the bf16 policy's
matmuls and convolutions take. Median GFLOP/s over repeats of ``iters`` back
to back matmuls of ``n x n`` matrices.
"""

from __future__ import annotations

import time

import numpy as np


def matmul_gflops(dtype: str = "fp32", n: int = 2048, iters: int = 5, repeats: int = 5) -> dict:
    import jax
    import jax.numpy as jnp

    jdt = {"fp32": jnp.float32, "bf16": jnp.bfloat16}[dtype]
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((n, n), np.float32), jdt)
    b = jnp.asarray(rng.standard_normal((n, n), np.float32), jdt)

    @jax.jit
    def mm(a, b):
        return jnp.dot(a, b, preferred_element_type=jnp.float32)

    mm(a, b).block_until_ready()  # compile + warm
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            out = mm(a, b)
        out.block_until_ready()
        dt = time.perf_counter() - t0
        rates.append(2.0 * n ** 3 * iters / dt / 1e9)
    return {"dtype": dtype, "n": n, "iters": iters, "repeats": repeats,
            "gflops_median": float(np.median(rates)), "gflops_max": float(np.max(rates)),
            "gflops_all": [round(r, 2) for r in rates]}


def measure_peaks(n: int = 2048, iters: int = 5, repeats: int = 5) -> dict:
    return {dt: matmul_gflops(dt, n, iters, repeats) for dt in ("fp32", "bf16")}


if __name__ == "__main__":  # pragma: no cover
    import json
    print(json.dumps(measure_peaks(), indent=2))
