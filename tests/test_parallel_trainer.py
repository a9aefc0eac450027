"""The trainer with an experiment's ``parallel:`` strategy (the train.py hook):
FSDP over 8 devices trains the tiny MNIST CNN to the parameters one device
reaches (Adam; same tolerance as the trainer's data-parallel test), with the
state really sharded; pp on a CNN fails with a clear message."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from imgrec.config import resolve_experiment
from imgrec.train import Trainer


def make_trainer(tiny_config, prepared, devices, parallel=None, steps=4):
    spec = resolve_experiment(tiny_config, "tiny_mnist")
    if parallel is not None:
        spec["parallel"] = parallel
    trainer = Trainer(spec, prepared[spec["dataset"]], devices, log=lambda _: None)
    trainer.steps_per_epoch = steps  # a few steps are enough to compare
    return trainer


def test_fsdp_trainer_matches_one_device(tiny_config, prepared):
    if len(jax.devices()) < 8:
        pytest.skip("needs JAX_NUM_CPU_DEVICES=8 (tests/conftest.py sets it)")
    one = make_trainer(tiny_config, prepared, jax.devices()[:1]).fit(eval_each_epoch=False)[0]
    fsdp = make_trainer(tiny_config, prepared, jax.devices()[:8], "fsdp")
    state = fsdp.fit(eval_each_epoch=False)[0]
    specs = [x.sharding.spec for x in jax.tree.leaves(state.params)]
    assert sum("data" in tuple(s) for s in specs) >= len(specs) // 2
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 jax.device_get(one.params), jax.device_get(state.params))


def test_pipeline_needs_a_vit(tiny_config, prepared):
    if len(jax.devices()) < 2:
        pytest.skip("needs 2 devices")
    trainer = make_trainer(tiny_config, prepared, jax.devices()[:2], {"name": "pp", "stage": 2})
    with pytest.raises(TypeError, match="implemented for the ViT"):
        trainer.fit(eval_each_epoch=False)
