"""Precision policy: parameters and optimizer state always float32 (so small
updates are not rounded away), activations in the compute dtype, logits and
loss in float32 (softmax cross-entropy over bf16 logits loses accuracy)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

POLICIES = ("fp32", "bf16")


@dataclasses.dataclass(frozen=True)
class Policy:
    name: str
    compute_dtype: jnp.dtype
    param_dtype: jnp.dtype = jnp.float32
    output_dtype: jnp.dtype = jnp.float32


def get_policy(name: str) -> Policy:
    if name == "fp32":
        return Policy("fp32", jnp.float32)
    if name == "bf16":
        return Policy("bf16", jnp.bfloat16)
    raise ValueError(f"unknown precision {name!r}; known: {', '.join(POLICIES)}")
