"""Alternative formulations in the talk's CNNs give the plain formulation's numbers.

``max_pool_2x2`` (reshape + max, with a custom VJP) against ``nn.max_pool``
(reduce_window, select-and-scatter gradient): forward and gradient, with ties,
in fp32 and bf16, and the whole CNN's loss and gradients with either pool."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imgrec.models import cnn, create_model


def plain_pool(x):
    return nn.max_pool(x, (2, 2), strides=(2, 2))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("shape", [(3, 8, 8, 5), (2, 28, 28, 32), (1, 2, 4, 1)])
def test_pool_forward_and_gradient_match_nn_max_pool(shape, dtype):
    key = jax.random.key(0)
    x = jax.random.normal(key, shape, jnp.float32)
    # many ties (including all-zero windows after a relu, and exact positive ties)
    x = jnp.where(jax.random.bernoulli(jax.random.fold_in(key, 1), 0.4, shape), 0.0, jnp.round(x * 2) / 2)
    x = jnp.maximum(x, 0).astype(dtype)
    weights = jax.random.normal(jax.random.fold_in(key, 2), (shape[0], shape[1] // 2, shape[2] // 2, shape[3]))

    def loss(pool):
        return lambda x: jnp.sum(pool(x).astype(jnp.float32) * weights)

    np.testing.assert_array_equal(cnn.max_pool_2x2(x), plain_pool(x))
    g_new, g_plain = jax.grad(loss(cnn.max_pool_2x2))(x), jax.grad(loss(plain_pool))(x)
    assert g_new.dtype == g_plain.dtype == dtype
    np.testing.assert_array_equal(np.asarray(g_new, np.float32), np.asarray(g_plain, np.float32))


def test_pool_jit_and_odd_sizes():
    x = jax.random.normal(jax.random.key(3), (2, 7, 9, 4))
    np.testing.assert_array_equal(jax.jit(cnn.max_pool_2x2)(x), plain_pool(x))  # odd: falls back to nn.max_pool
    y = jax.random.normal(jax.random.key(4), (2, 6, 6, 4))
    np.testing.assert_array_equal(jax.jit(jax.grad(lambda x: cnn.max_pool_2x2(x).sum()))(y),
                                  jax.grad(lambda x: plain_pool(x).sum())(y))


@pytest.mark.parametrize("name,shape", [("mnist_cnn", (28, 28, 1)), ("cifar_cnn", (32, 32, 3))])
def test_cnn_loss_and_gradients_match_plain_pooling(name, shape, monkeypatch):
    model = create_model(name, num_classes=10, dtype=jnp.float32)
    x = jax.random.normal(jax.random.key(5), (8, *shape))
    labels = jnp.arange(8) % 10
    params = model.init(jax.random.key(6), x[:1])["params"]

    def loss(params):
        logits = model.apply({"params": params}, x)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    new = jax.jit(jax.value_and_grad(loss))(params)
    monkeypatch.setattr(cnn, "max_pool_2x2", plain_pool)
    plain = jax.jit(jax.value_and_grad(loss))(params)
    np.testing.assert_allclose(new[0], plain[0], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(new[1]), jax.tree.leaves(plain[1])):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_bf16_dense_dot_matches_plain_bf16_dot_general():
    """f32 accumulation + bf16 rounding (the native bf16 path) = XLA's plain bf16 dot, forward and gradients."""
    k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
    x = jax.random.normal(k1, (64, 300), jnp.float32).astype(jnp.bfloat16)
    w = (jax.random.normal(k2, (300, 40), jnp.float32) * 0.1).astype(jnp.bfloat16)
    g = jax.random.normal(k3, (64, 40), jnp.float32).astype(jnp.bfloat16)
    plain = lambda x, w: jax.lax.dot_general(x, w, (((1,), (0,)), ((), ())))
    y_new, vjp_new = jax.vjp(cnn.bf16_dense_dot, x, w)
    y_plain, vjp_plain = jax.vjp(plain, x, w)
    assert y_new.dtype == y_plain.dtype == jnp.bfloat16
    # both accumulate in f32 and round once; only the summation order may differ (<= 1 bf16 ulp)
    for a, b in [(y_new, y_plain), *zip(vjp_new(g), vjp_plain(g))]:
        assert a.dtype == b.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=2 ** -7, atol=1e-3)


@pytest.mark.parametrize("name,shape", [("mnist_cnn", (28, 28, 1)), ("cifar_cnn", (32, 32, 3))])
def test_bf16_cnn_matches_plain_dense_and_pool(name, shape, monkeypatch):
    """The bf16 model with the native-bf16 Dense dot and custom pool vs plain lax.dot_general + nn.max_pool."""
    model = create_model(name, num_classes=10, dtype=jnp.bfloat16)
    x = jax.random.normal(jax.random.key(8), (8, *shape))
    params = model.init(jax.random.key(9), x[:1])["params"]

    def loss(params):
        return jnp.mean(model.apply({"params": params}, x).astype(jnp.float32) ** 2)

    new = jax.jit(jax.value_and_grad(loss))(params)
    monkeypatch.setattr(cnn, "_dense_dot_general", jax.lax.dot_general)
    monkeypatch.setattr(cnn, "max_pool_2x2", plain_pool)
    model = create_model(name, num_classes=10, dtype=jnp.bfloat16)
    plain = jax.jit(jax.value_and_grad(loss))(params)
    np.testing.assert_allclose(new[0], plain[0], rtol=2e-2)
    for a, b in zip(jax.tree.leaves(new[1]), jax.tree.leaves(plain[1])):
        assert a.dtype == b.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=0.1, atol=0.02 * float(jnp.abs(b).max()) + 1e-6)
