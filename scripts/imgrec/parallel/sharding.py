"""Sharding rules for the train state and the batch.

- ``dp``: every state leaf replicated.
- ``fsdp``: every state leaf (params and optimizer moments alike) sharded over
  ``data`` on its largest dimension that the axis divides; XLA all-gathers the
  parameters where they are used and reduce-scatters the gradients.
- ``tp`` (ViT): attention heads (q/k/v kernels and biases, the out kernel's
  head dimension) and MLP hidden units (``fc1`` out, ``fc2`` in) over
  ``model`` -- the Megatron layout: one all-reduce after attention and one
  after the MLP, which XLA inserts from these shardings.
- ``pp``: the state stays replicated (or FSDP); the pipeline moves each stage's
  blocks to its devices inside the step (see ``pipeline.py``).

Rules match flax parameter paths, so optimizer states that mirror the params
(Adam's ``mu``/``nu``, momentum traces) get the same layout as their params.
"""

from __future__ import annotations

import re

import jax
from jax.sharding import NamedSharding, PartitionSpec as P

from imgrec.parallel.mesh import Strategy, axis_size

_BLOCK = r"blocks_\d+/"
TP_RULES = (  # (path suffix regex, spec by dimension)
    (_BLOCK + r"attn/(query|key|value)/kernel$", (None, "model", None)),  # (embed, heads, head_dim)
    (_BLOCK + r"attn/(query|key|value)/bias$", ("model", None)),          # (heads, head_dim)
    (_BLOCK + r"attn/out/kernel$", ("model", None, None)),                # (heads, head_dim, embed)
    (_BLOCK + r"mlp/fc1/kernel$", (None, "model")),                       # (embed, mlp)
    (_BLOCK + r"mlp/fc1/bias$", ("model",)),                              # (mlp,)
    (_BLOCK + r"mlp/fc2/kernel$", ("model", None)),                       # (mlp, embed)
)


def path_str(path) -> str:
    """``.opt_state[0].mu['blocks_0']['attn']`` -> ``opt_state/0/mu/blocks_0/attn``."""
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def leaf_spec(path: str, shape: tuple, mesh, strategy: Strategy) -> P:
    spec = [None] * len(shape)
    if strategy.name == "tp":
        m = axis_size(mesh, "model")
        for pattern, rule in TP_RULES:
            if re.search(pattern, path) and len(rule) == len(shape):
                dim = rule.index("model")
                if shape[dim] % m:
                    raise ValueError(f"{path}: dimension {dim} of size {shape[dim]} (heads or MLP units) is not "
                                     f"divisible by the model axis ({m}); pick a model axis size that divides it")
                spec = list(rule)
                break
    if strategy.shards_params_over_data:
        d = axis_size(mesh, "data")
        free = [i for i, s in enumerate(spec) if s is None and shape[i] % d == 0 and shape[i] >= d]
        if d > 1 and free:
            spec[max(free, key=lambda i: (shape[i], -i))] = "data"  # largest; first on ties
    return P(*spec)


def state_shardings(abstract_state, mesh, strategy=None):
    """A pytree of ``NamedSharding`` with the structure of ``abstract_state``
    (a TrainState of arrays or ``ShapeDtypeStruct``s)."""
    strategy = Strategy.from_config(strategy)
    return jax.tree_util.tree_map_with_path(
        lambda p, leaf: NamedSharding(mesh, leaf_spec(path_str(p), tuple(leaf.shape), mesh, strategy)),
        abstract_state)


def place_state(state, mesh, strategy=None):
    """Puts a host/one-device state onto the mesh with the strategy's layout.

    On several processes every process must pass the same values (same seed)."""
    shardings = state_shardings(state, mesh, strategy)
    if jax.process_count() == 1:
        return jax.device_put(state, shardings)
    import numpy as np

    def put(x, s):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, s, lambda idx: x[idx])
    return jax.tree.map(put, state, shardings)


def init_sharded(init_fn, mesh, strategy=None):
    """Runs ``init_fn()`` (returning a state) straight into its shardings: no
    device ever holds the whole FSDP/TP state."""
    shardings = state_shardings(jax.eval_shape(init_fn), mesh, strategy)
    return jax.jit(init_fn, out_shardings=shardings)()


def batch_sharding(mesh, leading: int = 0) -> NamedSharding:
    """Batch dimension (after ``leading`` stacked dims) over ``data``; replicated over ``model``/``stage``."""
    return NamedSharding(mesh, P(*([None] * leading), "data"))


def global_batch(local_batch, mesh, leading: int = 0):
    """This process's slice of the batch -> one global array (multi-host input
    feeding: each host loads only its own examples)."""
    sharding = batch_sharding(mesh, leading)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)
