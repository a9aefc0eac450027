"""Model registry: every model is built by name from config.

Flax Linen, chosen over NNX because the trainer is built from pure functions
(params pytrees in, params pytrees out): they compose directly with ``jax.jit``
+ ``NamedSharding``, ``shard_map``, ``lax.scan`` over several steps and orbax,
with no graph/state split on the hot path.

A model factory takes ``num_classes`` and ``dtype`` (the compute dtype of the
precision policy; parameters stay float32) plus model-specific keyword
arguments from the experiment's ``model_args``, and returns a Linen module whose
``__call__(x, train: bool)`` maps NHWC images to float logits. Factories
registered with ``takes_layout_hints`` also get the number of devices the batch
is split over (``batch_shards``) and the platform it runs on (``platform``):
hints for how their kernels are formulated, never a change to the math.
Factories registered with ``params_in_compute_dtype`` promise that every layer
casts its parameters to ``dtype``, so the trainer may cast them up front.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn

MODELS: dict[str, Callable[..., nn.Module]] = {}
TAKES_LAYOUT_HINTS: set[str] = set()
PARAMS_IN_COMPUTE_DTYPE: set[str] = set()


def register(name: str, *, takes_layout_hints: bool = False, params_in_compute_dtype: bool = False):
    def wrap(factory):
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = factory
        if takes_layout_hints:
            TAKES_LAYOUT_HINTS.add(name)
        if params_in_compute_dtype:
            PARAMS_IN_COMPUTE_DTYPE.add(name)
        return factory

    return wrap


def create_model(name: str, *, num_classes: int, dtype, batch_shards: int = 1, platform: str = "cpu",
                 **model_args) -> nn.Module:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    if name in TAKES_LAYOUT_HINTS:
        model_args.update(batch_shards=batch_shards, platform=platform)
    return MODELS[name](num_classes=num_classes, dtype=dtype, **model_args)


# Importing the modules fills the registry.
from imgrec.models import cnn, resnet, vit  # noqa: E402,F401
