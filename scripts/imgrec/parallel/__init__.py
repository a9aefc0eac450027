"""Data, FSDP, tensor and pipeline parallelism on one ``data``/``stage``/``model`` mesh.

Trainer integration::

    strategy = parallel.Strategy.from_config(spec.get("parallel"))
    mesh = parallel.make_mesh(devices, strategy)
    state = parallel.place_state(state, mesh, strategy)          # or init_sharded(init_fn, ...)
    step = parallel.make_train_step(task, tx, mesh, strategy, image_size)
    jax.jit(step, out_shardings=(parallel.state_shardings(state, mesh, strategy), replicated))
    batch = jax.device_put(batch, parallel.batch_sharding(mesh))
"""

from __future__ import annotations

from imgrec.parallel.mesh import AXES, Strategy, axis_size, make_mesh, mesh_shape
from imgrec.parallel.sharding import (batch_sharding, global_batch, init_sharded, place_state,
                                      state_shardings)


def make_train_step(task, tx, mesh, strategy=None, image_size=None):
    """The trainer's step for this strategy: ``Task.make_train_step`` itself,
    with the ViT forward pass pipelined when the strategy is ``pp``. dp, fsdp
    and tp need no code of their own: the shardings of state and batch decide."""
    strategy = Strategy.from_config(strategy)
    if strategy.name == "pp":
        from imgrec.parallel.pipeline import pipelined_task
        task = pipelined_task(task, mesh, strategy.microbatches)
    return task.make_train_step(tx, image_size)


__all__ = ["AXES", "Strategy", "axis_size", "batch_sharding", "global_batch", "init_sharded", "make_mesh",
           "make_train_step", "mesh_shape", "place_state", "state_shardings"]
