"""The trainer: golden numbers after one step, determinism, fused steps, evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imgrec import checkpoint
from imgrec.config import resolve_experiment
from imgrec.train import DivergenceError, Trainer, augment, epoch_order, eval_steps_in_epoch


def make_trainer(tiny_config, prepared, name="tiny_mnist", devices=None, **schedule):
    spec = resolve_experiment(tiny_config, name)
    spec["schedule"].update(schedule)
    return Trainer(spec, prepared[spec["dataset"]], devices or jax.devices()[:1], log=lambda _: None)


def first_chunk(trainer):
    return next(trainer.train_chunks(0))[1]


def test_one_step_golden_numbers(tiny_config, prepared):
    trainer = make_trainer(tiny_config, prepared, steps_per_call=1)
    state = trainer.init_state()
    chunk = first_chunk(trainer)
    state, metrics = trainer.compiled_chunk(state, chunk, None)(state, chunk)
    loss = float(metrics["loss"][0])
    assert loss == pytest.approx(GOLDEN_FIRST_LOSS, rel=1e-4)
    kernel_sum = float(jnp.sum(state.params["Dense_2"]["kernel"]))
    assert kernel_sum == pytest.approx(GOLDEN_HEAD_SUM, rel=1e-3, abs=1e-3)
    assert int(state.step) == 1


GOLDEN_FIRST_LOSS = 2.329125  # measured on CPU, jax 0.10.2
GOLDEN_HEAD_SUM = 3.489757


def test_same_seed_same_numbers(tiny_config, prepared):
    runs = []
    for _ in range(2):
        trainer = make_trainer(tiny_config, prepared, epochs=2)
        state, summary = trainer.fit()
        runs.append(([r["train_loss"] for r in summary["curve"]], [r["test_accuracy"] for r in summary["curve"]],
                     jax.device_get(state.params)))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    jax.tree.map(np.testing.assert_array_equal, runs[0][2], runs[1][2])


def test_other_seed_other_numbers(tiny_config, prepared):
    a = make_trainer(tiny_config, prepared).fit()[1]["curve"][0]["train_loss"]
    tiny_config["experiments"]["tiny_mnist"]["seed"] = 1
    b = make_trainer(tiny_config, prepared).fit()[1]["curve"][0]["train_loss"]
    assert a != b


def test_fused_steps_match_single_steps(tiny_config, prepared):
    params = []
    for k in (1, 3):
        state, _ = make_trainer(tiny_config, prepared, steps_per_call=k).fit(eval_each_epoch=False)
        params.append(jax.device_get(state.params))
    # the same math; XLA may compile the fused call's sums in another order (float rounding only)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=5e-6), *params)


def test_data_parallel_matches_one_device(tiny_config, prepared):
    if len(jax.devices()) < 4:
        pytest.skip("needs JAX_NUM_CPU_DEVICES>=4")
    one = make_trainer(tiny_config, prepared).fit(eval_each_epoch=False)[0]
    four = make_trainer(tiny_config, prepared, devices=jax.devices()[:4]).fit(eval_each_epoch=False)[0]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 jax.device_get(one.params), jax.device_get(four.params))


def test_eval_points_are_evenly_spaced_and_end_the_epoch():
    assert eval_steps_in_epoch(468, 1) == [468]
    assert eval_steps_in_epoch(468, 4) == [117, 234, 351, 468]
    assert eval_steps_in_epoch(3, 5) == [1, 2, 3]  # never more evaluations than steps


def test_evals_per_epoch_evaluates_mid_epoch_without_changing_training(tiny_config, prepared):
    tiny_config["experiments"]["tiny_mnist"]["target_accuracy"] = 1e-6  # reached at the first evaluation
    once_state, once = make_trainer(tiny_config, prepared, epochs=2).fit()
    trainer = make_trainer(tiny_config, prepared, epochs=2, evals_per_epoch=3)
    state, summary = trainer.fit()
    # evaluating is read-only: the same parameters as with one evaluation per epoch
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(once_state.params), jax.device_get(state.params))
    evals = summary["evals"]
    per_epoch = trainer.steps_per_epoch
    assert len(evals) == 6 and [e["step"] for e in evals] == sorted({e["step"] for e in evals})
    assert [e["step"] for e in evals][2::3] == [per_epoch, 2 * per_epoch]
    # the end-of-epoch evaluations are the curve's, and the same as with one evaluation per epoch
    assert [e["test_accuracy"] for e in evals][2::3] == [r["test_accuracy"] for r in summary["curve"]]
    assert [r["test_accuracy"] for r in once["curve"]] == [r["test_accuracy"] for r in summary["curve"]]
    assert 0 < evals[0]["epoch"] < 1 and 0 < evals[0]["elapsed_train_seconds"] < summary["curve"][0]["epoch_seconds"]
    # the target was first reached at the first (mid-epoch) evaluation
    assert summary["time_to_target_seconds"] == evals[0]["elapsed_train_seconds"]
    assert once["time_to_target_seconds"] == once["evals"][0]["elapsed_train_seconds"] > evals[0]["elapsed_train_seconds"]
    assert summary["time_to_target_end_to_end_seconds"] > summary["time_to_target_seconds"]


def test_bf16_policy_keeps_fp32_params(tiny_config, prepared):
    trainer = make_trainer(tiny_config, prepared, name="tiny_cifar_bf16")
    state, summary = trainer.fit()
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.params))
    assert np.isfinite(summary["curve"][-1]["train_loss"])
    assert summary["flops_per_step"] > 0


def test_evaluate_counts_every_example_once(tiny_config, prepared):
    trainer = make_trainer(tiny_config, prepared, eval_batch_size=50)  # 359 test images: padded last batch
    state = trainer.init_state()
    out = trainer.evaluate(state.params, state.batch_stats, trainer.dataset.test)
    assert out["examples"] == len(trainer.dataset.test)
    logits, _ = trainer.task.apply(state.params, state.batch_stats, jnp.asarray(trainer.dataset.test.images),
                                   train=False)
    expected = float(np.mean(np.argmax(np.asarray(logits), -1) == trainer.dataset.test.labels))
    assert out["accuracy"] == pytest.approx(expected)


def test_divergence_names_the_step(tiny_config, prepared):
    trainer = make_trainer(tiny_config, prepared, learning_rate=1e30, optimizer="sgd", steps_per_call=1)
    with pytest.raises(DivergenceError, match=r"at step \d+"):
        trainer.fit(eval_each_epoch=False)


def test_checkpoint_roundtrip(tiny_config, prepared, tmp_path):
    trainer = make_trainer(tiny_config, prepared)
    state, _ = trainer.fit(eval_each_epoch=False)
    checkpoint.save(tmp_path / "ckpt", state)
    restored = checkpoint.restore(tmp_path / "ckpt", trainer.abstract_state())
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state), jax.device_get(restored))


def test_corrupt_checkpoint_is_named(tiny_config, prepared, tmp_path):
    trainer = make_trainer(tiny_config, prepared)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "garbage").write_text("x")
    with pytest.raises(checkpoint.CheckpointError, match="ckpt"):
        checkpoint.restore(tmp_path / "ckpt", trainer.abstract_state())


def test_batch_must_divide_over_devices(tiny_config, prepared):
    if len(jax.devices()) < 8:
        pytest.skip("needs 8 devices")
    with pytest.raises(ValueError, match="not divisible"):
        make_trainer(tiny_config, prepared, devices=jax.devices()[:8], batch_size=60)


def test_epoch_order_is_a_seeded_permutation():
    a, b = epoch_order(100, 0, 1), epoch_order(100, 0, 1)
    np.testing.assert_array_equal(a, b)
    assert sorted(a) == list(range(100)) and not np.array_equal(a, epoch_order(100, 0, 2))


def test_augment_flip_and_crop_keep_shape_and_content():
    x = jnp.arange(2 * 8 * 8 * 1, dtype=jnp.float32).reshape(2, 8, 8, 1)
    y = augment(x, jax.random.key(0), ("flip", "crop"))
    assert y.shape == x.shape
    z = augment(x, jax.random.key(0), ("flip",))
    for i in range(2):
        assert np.array_equal(z[i], x[i]) or np.array_equal(z[i], x[i, :, ::-1])
