"""Checks that every strategy computes what one device computes.

For a tiny ViT (ViT-Ti width/MLP, 4 heads so they split over 2 or 4 devices,
4 blocks, 32x32 images, patch 8) and a fixed batch: loss, gradients and the
parameters after 2 SGD-momentum steps under dp, fsdp, tp and pp, each against
the same computation on one device. (SGD, not Adam, for the step check: Adam
divides by sqrt(v), so a gradient that is ~0 up to rounding moves its
parameter by up to the full learning rate, whatever the summation order.) Needs several devices, so run it as::

    JAX_NUM_CPU_DEVICES=8 python -m imgrec.parallel.selfcheck [dp fsdp tp pp] [--layers 4]

It prints one JSON object: per strategy, the mesh and the largest absolute
differences (and the reference magnitudes). It runs unchanged on a GPU host
or a TPU VM, where it checks the real interconnect.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from imgrec import parallel
from imgrec.models.vit import ViT
from imgrec.train import Task, TrainState
from imgrec.optim import make_optimizer

STRATEGIES = {  # name -> Strategy fields for 8 devices
    "dp": {"name": "dp"},
    "fsdp": {"name": "fsdp"},
    "tp": {"name": "tp", "model": 4},
    "pp": {"name": "pp", "stage": 4, "microbatches": 2},
}
BATCH = 16


def tiny_task(num_classes: int = 10, num_layers: int = 4) -> Task:
    spec = {"model": "vit_ti16", "precision": "fp32", "seed": 0,
            "schedule": {"optimizer": "momentum", "learning_rate": 0.1, "batch_size": BATCH, "epochs": 1}}
    task = Task(spec, num_classes, (32, 32, 3), (127.0,) * 3, (64.0,) * 3)
    # ViT-Ti's width and MLP; 4 heads instead of 3 (divisible by the model axis) and 4 blocks instead of 12.
    task.model = ViT(num_classes=num_classes, width=192, num_layers=num_layers, num_heads=4, mlp_dim=768, patch_size=8)
    return task


def tiny_batch(n: int = BATCH, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {"image": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            "label": rng.integers(0, 10, (n,)).astype(np.int32)}


def init_state(task, tx):
    params, batch_stats = task.init_variables()
    # The head is zero-initialised: nudge it so every gradient is non-trivial.
    params = jax.tree_util.tree_map_with_path(
        lambda p, x: x + 0.02 * jax.random.normal(jax.random.key(1), x.shape) if "head" in str(p) else x, params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                      opt_state=tx.init(params))


def loss_fn(task, mesh=None, strategy=None):
    """Mean loss of params on a batch; through the pipeline for pp."""
    if strategy is not None and strategy.name == "pp":
        from imgrec.parallel.pipeline import pipeline_loss
        return lambda params, b: pipeline_loss(task, params, b["image"], b["label"], mesh, strategy.microbatches)

    def f(params, b):
        logits, _ = task.apply(params, {}, b["image"], train=False)
        return task.loss(logits, b["label"]).mean()
    return f


def max_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def max_abs(a) -> float:
    return max(float(np.max(np.abs(np.asarray(x)))) for x in jax.tree.leaves(a))


def run(names=tuple(STRATEGIES), steps: int = 2, num_layers: int = 4) -> dict:
    task = tiny_task(num_layers=num_layers)
    tx = make_optimizer(task.spec["schedule"], steps_per_epoch=100)
    batches = [tiny_batch(seed=i) for i in range(steps)]
    one = jax.devices()[0]
    state0 = jax.device_put(init_state(task, tx), one)

    # reference: one device
    ref_loss, ref_grads = jax.jit(jax.value_and_grad(loss_fn(task)))(state0.params, batches[0])
    ref_step = jax.jit(task.make_train_step(tx))
    ref_state = state0
    for b in batches:
        ref_state, _ = ref_step(ref_state, b)

    out = {"devices": len(jax.devices()), "platform": one.platform, "reference": {
        "loss": float(ref_loss), "max_abs_grad": max_abs(ref_grads),
        "max_abs_param_change": max_diff(ref_state.params, state0.params)}}
    for name in names:
        strategy = parallel.Strategy.from_config(STRATEGIES[name])
        mesh = parallel.make_mesh(None, strategy)
        shardings = parallel.state_shardings(state0, mesh, strategy)
        state = parallel.place_state(jax.device_get(state0), mesh, strategy)
        put = lambda b: jax.device_put(b, parallel.batch_sharding(mesh))  # noqa: E731
        loss, grads = jax.jit(jax.value_and_grad(loss_fn(task, mesh, strategy)))(state.params, put(batches[0]))
        step = jax.jit(parallel.make_train_step(task, tx, mesh, strategy),
                       out_shardings=(shardings, NamedSharding(mesh, P())))
        for b in batches:
            state, _ = step(state, put(b))
        sharded = sum(any(s is not None for s in sh.spec) for sh in jax.tree.leaves(shardings))
        out[name] = {"mesh": dict(mesh.shape), "sharded_leaves": sharded,
                     "leaves": len(jax.tree.leaves(shardings)),
                     "loss_diff": abs(float(loss) - float(ref_loss)),
                     "grad_max_diff": max_diff(grads, ref_grads),
                     "params_max_diff_after_steps": max_diff(state.params, ref_state.params),
                     "opt_state_max_diff_after_steps": max_diff(state.opt_state, ref_state.opt_state),
                     "steps": steps}
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("strategies", nargs="*", default=list(STRATEGIES))
    parser.add_argument("--layers", type=int, default=4, help="ViT blocks (pp needs a multiple of its 4 stages)")
    ns = parser.parse_args()
    print(json.dumps(run(ns.strategies, num_layers=ns.layers), indent=1))
