"""GPipe pipeline parallelism for the ViT over the mesh's ``stage`` axis.

The stem and the head run as ordinary (data-parallel) jitted code; the encoder
blocks are split evenly into S stages, stage s holding blocks
``[s*L/S, (s+1)*L/S)``. The batch is cut into M micro-batches; at tick t stage
0 takes micro-batch t, every stage runs its blocks, and ``ppermute`` hands each
stage's output to the next (GPipe schedule: M + S - 1 ticks, a bubble of
(S-1)/(M+S-1)). The backward pass is the transpose JAX derives (reverse
``ppermute``), so loss and gradients equal the plain model's.

Built on ``jax.shard_map`` (top-level since JAX 0.7; the old
``jax.experimental.shard_map.shard_map`` is gone in 0.10).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from imgrec.models.vit import ViT
from imgrec.parallel.mesh import axis_size


def stack_stages(params, num_layers: int, stages: int):
    """``blocks_0..L-1`` -> one pytree with leaves of shape (stages, L/stages, ...)."""
    if num_layers % stages:
        raise ValueError(f"{num_layers} ViT blocks cannot be split evenly into {stages} stages")
    per = num_layers // stages
    blocks = [params[f"blocks_{i}"] for i in range(num_layers)]
    return jax.tree.map(lambda *xs: jnp.stack(xs).reshape(stages, per, *xs[0].shape), *blocks)


def pipeline_apply(model: ViT, params, x, mesh, microbatches: int):
    """``model.apply({'params': params}, x)`` with the blocks pipelined over ``stage``."""
    if not isinstance(model, ViT):
        raise TypeError(f"pipeline parallelism is implemented for the ViT, not {type(model).__name__}")
    S, M = axis_size(mesh, "stage"), microbatches
    per = model.num_layers // S
    h = model.apply({"params": params}, x, method=ViT.embed)  # (B, T, D)
    B = h.shape[0]
    if B % (M * axis_size(mesh, "data")):
        raise ValueError(f"batch {B} is not divisible by {M} micro-batches x {axis_size(mesh, 'data')} data shards")
    # Micro-batch m = examples m, m+M, ...: keeps each data shard's examples on it.
    xs = h.reshape(B // M, M, *h.shape[1:]).swapaxes(0, 1)  # (M, B/M, T, D)
    shift = [(i, (i + 1) % S) for i in range(S)]

    def stage_fn(stage_params, xs):
        local = {f"blocks_{j}": jax.tree.map(lambda a: a[0, j], stage_params) for j in range(per)}
        run = lambda h: model.apply({"params": local}, h, 0, per, method=ViT.encode)  # noqa: E731
        s = jax.lax.axis_index("stage")
        state, outs = jnp.zeros_like(xs[0]), jnp.zeros_like(xs)
        for t in range(M + S - 1):  # unrolled: M + S - 1 is small
            if t < M:
                state = jnp.where(s == 0, xs[t], state)
            state = run(state)
            if t >= S - 1:  # the last stage finishes micro-batch t - S + 1
                outs = outs.at[t - S + 1].set(state)
            if t < M + S - 2:
                state = jax.lax.ppermute(state, "stage", shift)
        return jax.lax.psum(jnp.where(s == S - 1, outs, jnp.zeros_like(outs)), "stage")

    out = jax.shard_map(stage_fn, mesh=mesh, in_specs=(P("stage"), P(None, "data")),
                        out_specs=P(None, "data"))(stack_stages(params, model.num_layers, S), xs)
    h = out.swapaxes(0, 1).reshape(B, *out.shape[2:])
    return model.apply({"params": params}, h, method=ViT.classify)


class PipelinedViT:
    """Stands in for the ViT inside ``Task``: same ``apply`` signature, pipelined."""

    def __init__(self, model: ViT, mesh, microbatches: int):
        self.model, self.mesh, self.microbatches = model, mesh, microbatches

    def apply(self, variables, x, train: bool = False, **_):
        return pipeline_apply(self.model, variables["params"], x, self.mesh, self.microbatches)


def pipelined_task(task, mesh, microbatches: int):
    """A copy of ``task`` whose forward pass runs through the pipeline; its
    ``make_train_step`` is then the trainer's own step, pipelined."""
    piped = copy.copy(task)
    piped.model = PipelinedViT(task.model, mesh, microbatches)
    return piped


def pipeline_loss(task, params, images, labels, mesh, microbatches: int):
    """Mean training loss of ``task`` (no augmentation) through the pipeline."""
    logits, _ = pipelined_task(task, mesh, microbatches).apply(params, {}, images, train=False)
    return task.loss(logits.astype(jnp.float32), labels).mean()
