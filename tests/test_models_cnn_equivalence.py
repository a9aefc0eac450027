"""Alternative formulations in the talk's CNNs give the plain formulation's numbers.

``max_pool_2x2`` (reshape + max, with a custom VJP) against ``nn.max_pool``
(reduce_window, select-and-scatter gradient): forward and gradient, with ties,
in fp32 and bf16, and the whole CNN's loss and gradients with either pool.
``chunked_conv`` and ``patch_conv`` against ``lax.conv_general_dilated``,
``Conv3x3`` against ``nn.Conv``, the bf16 Dense dot against the plain one, the
whole CNNs with every fast path against the plain formulation, and the bf16 CPU
formulation (float32 epilogues, ``round_to_bf16``, parameters cast up front)."""

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


# ------------------------------------------- convolutions: chunked kernel gradient, patch matmul
def plain_conv(x, w, **kw):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), **kw)


def conv_and_grads(conv, x, w, g):
    y, vjp = jax.vjp(conv, x, w)
    return (y, *vjp(g))


def conv_case(shape, features, dtype, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(k1, shape, jnp.float32).astype(dtype)
    w = (jax.random.normal(k2, (3, 3, shape[-1], features), jnp.float32) * 0.2).astype(dtype)
    g = jax.random.normal(k3, (*shape[:3], features), jnp.float32).astype(dtype)
    return x, w, g


@pytest.mark.parametrize("shards", [1, 2])
@pytest.mark.parametrize("shape", [(8, 28, 28, 32), (16, 16, 16, 32), (8, 6, 10, 5)])
def test_chunked_conv_matches_lax_conv_fp32(shape, shards):
    x, w, g = conv_case(shape, 32, jnp.float32)
    dims = jax.lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    chunked = lambda x, w: cnn.chunked_conv(x, w, (1, 1), "SAME", dimension_numbers=dims, batch_shards=shards)
    y, dx, dw = jax.jit(lambda x, w, g: conv_and_grads(chunked, x, w, g))(x, w, g)
    y0, dx0, dw0 = jax.jit(lambda x, w, g: conv_and_grads(plain_conv, x, w, g))(x, w, g)
    np.testing.assert_array_equal(y, y0)  # the same convolution forward and for the input gradient
    np.testing.assert_array_equal(dx, dx0)
    assert dw.dtype == dw0.dtype == jnp.float32
    np.testing.assert_allclose(dw, dw0, rtol=1e-5, atol=1e-5 * float(jnp.abs(dw0).max()))  # the sum in another order


def test_chunked_conv_bf16_accumulates_in_fp32():
    x, w, g = conv_case((16, 12, 12, 32), 32, jnp.bfloat16, seed=1)
    dims = jax.lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    chunked = lambda x, w: cnn.chunked_conv(x, w, (1, 1), "SAME", dimension_numbers=dims)
    _, _, dw = jax.jit(lambda x, w, g: conv_and_grads(chunked, x, w, g))(x, w, g)
    exact = jax.grad(lambda w: jnp.sum(plain_conv(x.astype(jnp.float32), w) * g.astype(jnp.float32)))(
        w.astype(jnp.float32))
    assert dw.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(dw, np.float32), exact, rtol=2 ** -7, atol=1e-2)  # one bf16 rounding


@pytest.mark.parametrize("kwargs,shape,convs", [
    ({"window_strides": (2, 2)}, (8, 8, 8, 4), ("chunked_conv", "patch_conv")),  # strided
    ({"padding": "VALID"}, (8, 8, 8, 4), ("chunked_conv", "patch_conv")),        # other padding
    ({}, (6, 8, 8, 4), ("chunked_conv",)),                                         # batch not a multiple of the chunk
])
def test_fast_convs_fall_back_to_lax_for_other_convolutions(kwargs, shape, convs):
    x, w, g = conv_case(shape, 8, jnp.float32, seed=2)
    args = {"window_strides": (1, 1), "padding": "SAME", **kwargs}
    dims = jax.lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    for conv in (getattr(cnn, name) for name in convs):
        ours = jax.grad(lambda w: jnp.sum(conv(x, w, dimension_numbers=dims, **args) ** 2))(w)
        lax = jax.grad(lambda w: jnp.sum(jax.lax.conv_general_dilated(x, w, dimension_numbers=dims, **args) ** 2))(w)
        np.testing.assert_array_equal(ours, lax)


@pytest.mark.parametrize("channels", [1, 3])
def test_patch_conv_matches_lax_conv(channels):
    x, w, g = conv_case((8, 14, 14, channels), 32, jnp.float32, seed=3)
    dims = jax.lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    patch = lambda x, w: cnn.patch_conv(x, w, (1, 1), "SAME", dimension_numbers=dims)
    for ours, lax in zip(conv_and_grads(patch, x, w, g), conv_and_grads(plain_conv, x, w, g)):
        np.testing.assert_allclose(ours, lax, rtol=1e-5, atol=1e-5 * float(jnp.abs(lax).max()))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name,shape", [("mnist_cnn", (28, 28, 1)), ("cifar_cnn", (32, 32, 3))])
def test_cnn_loss_and_gradients_match_plain_convolutions(name, shape, dtype, monkeypatch):
    """The whole CNN with patch_conv + chunked_conv against lax.conv_general_dilated everywhere."""
    model = create_model(name, num_classes=10, dtype=dtype)
    x = jax.random.normal(jax.random.key(10), (8, *shape))
    labels = jnp.arange(8) % 10
    params = model.init(jax.random.key(11), x[:1])["params"]

    def loss(params):
        logits = model.apply({"params": params}, x).astype(jnp.float32)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    new = jax.jit(jax.value_and_grad(loss))(params)
    monkeypatch.setattr(cnn, "patch_conv", jax.lax.conv_general_dilated)
    monkeypatch.setattr(cnn, "chunked_conv", lambda *a, batch_shards=1, **kw: jax.lax.conv_general_dilated(*a, **kw))
    plain = jax.jit(jax.value_and_grad(loss))(params)
    exact = dtype == jnp.float32
    np.testing.assert_allclose(new[0], plain[0], rtol=1e-5 if exact else 2e-2)
    for a, b in zip(jax.tree.leaves(new[1]), jax.tree.leaves(plain[1])):
        scale = float(jnp.abs(b).max())
        np.testing.assert_allclose(a, b, rtol=1e-4 if exact else 0.1, atol=(1e-5 if exact else 0.03) * scale + 1e-7)


def test_conv3x3_is_nn_conv():
    """Conv3x3 (the CNNs' conv layer) = nn.Conv(features, (3, 3), padding="SAME"): the same
    parameters from the same key, the same outputs, the same gradients."""
    x = jax.random.normal(jax.random.key(12), (4, 10, 10, 3))
    ours, flax_conv = cnn.Conv3x3(16), nn.Conv(16, (3, 3), padding="SAME")
    p_ours, p_flax = ours.init(jax.random.key(13), x)["params"], flax_conv.init(jax.random.key(13), x)["params"]
    jax.tree.map(np.testing.assert_array_equal, p_ours, p_flax)
    params = {"kernel": p_flax["kernel"], "bias": p_flax["bias"] + 0.1}  # a nonzero bias too

    def loss(module):
        return lambda p: jnp.sum(jnp.sin(module.apply({"params": p}, x).astype(jnp.float32)))

    np.testing.assert_array_equal(ours.apply({"params": params}, x), flax_conv.apply({"params": params}, x))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
                 jax.grad(loss(ours))(params), jax.grad(loss(flax_conv))(params))


def test_conv3x3_bf16_bias_gradient_accumulates_in_fp32():
    """In bf16 the bias gradient (a sum over batch and pixels) is accumulated in float32 and
    rounded once: within bf16 rounding of the exact float32 sum."""
    x = jax.random.normal(jax.random.key(12), (4, 10, 10, 3))
    conv = cnn.Conv3x3(16, dtype=jnp.bfloat16)
    params = conv.init(jax.random.key(13), x)["params"]
    g = jax.random.uniform(jax.random.key(16), (4, 10, 10, 16), minval=0.5, maxval=1.0)  # no cancellation
    bias_grad = jax.jit(jax.grad(lambda p: jnp.sum(conv.apply({"params": p}, x).astype(jnp.float32) * g)))(params)
    exact = np.asarray(g.astype(jnp.bfloat16).astype(jnp.float32)).sum(axis=(0, 1, 2))
    np.testing.assert_allclose(bias_grad["bias"], exact, rtol=2 ** -8)


def test_add_channel_bias_gradient_is_the_sum_over_batch_and_pixels():
    y = jax.random.normal(jax.random.key(14), (3, 5, 7, 4))
    g = jax.random.normal(jax.random.key(15), y.shape)
    _, vjp = jax.vjp(cnn.add_channel_bias, y, jnp.zeros(4))
    dy, db = vjp(g)
    np.testing.assert_array_equal(dy, g)
    np.testing.assert_allclose(db, g.sum(axis=(0, 1, 2)), rtol=1e-5)


@pytest.mark.parametrize("shards,batch", [(1, 64), (2, 128)])
def test_conv_stack_in_chunks_matches_whole_batch(shards, batch, monkeypatch):
    """The conv stack over chunks of images per shard, concatenated back in
    batch order, gives the whole-batch numbers (loss and gradients; the output order too)."""
    model = create_model("cifar_cnn", num_classes=10, dtype=jnp.float32, batch_shards=shards)
    x = jax.random.normal(jax.random.key(17), (batch, 8, 8, 3))
    labels = jnp.arange(batch) % 10
    params = model.init(jax.random.key(18), x[:1])["params"]
    monkeypatch.setattr(cnn, "CONV_STACK_CHUNK_BYTES", 16 * 8 * 8 * 32 * 4)  # 16-image chunks of 8x8x32
    assert cnn.conv_stack_chunk(batch // shards, 8 * 8 * 32 * 4) == 16

    def loss(params):
        logits = model.apply({"params": params}, x)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1)), logits

    (l_new, logits_new), g_new = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    monkeypatch.setattr(cnn, "CONV_STACK_CHUNK_BYTES", 10 ** 12)
    (l_plain, logits_plain), g_plain = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    np.testing.assert_allclose(logits_new, logits_plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(l_new, l_plain, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g_new), jax.tree.leaves(g_plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.abs(b).max()) + 1e-7)


def test_conv_stack_chunk_sizes():
    mnist, cifar = 28 * 28 * 32 * 4, 32 * 32 * 32 * 4
    assert cnn.conv_stack_chunk(128, mnist) == 32 and cnn.conv_stack_chunk(128, cifar) == 16
    assert cnn.conv_stack_chunk(200, mnist) == 25 and cnn.conv_stack_chunk(200, cifar) == 25  # <= 8 chunks
    assert cnn.conv_stack_chunk(16, mnist) == 16  # fits: one chunk
    assert cnn.conv_stack_chunk(127, mnist) == 127  # prime: whole batch
    assert cnn.conv_stack_chunk(1, mnist) == 1


# ------------------------------------------------ bf16 on XLA:CPU: float32 epilogues, fast rounding
def test_round_to_bf16_is_astype_bit_for_bit():
    from imgrec.precision import round_to_bf16

    one = np.float32(1.0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, np.finfo(np.float32).max,  # max -> inf
                        -np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1e-45, -1e-45, 3e-39,
                        one + 2.0 ** -8, one + 3 * 2.0 ** -8, -(one + 2.0 ** -8),  # ties: to even
                        np.nextafter(one + 2.0 ** -8, np.float32(2)), np.nextafter(one + 2.0 ** -8, np.float32(0))],
                       np.float32)
    x = np.concatenate([special, np.asarray(jax.random.normal(jax.random.key(30), (100_000,)) *
                                            jnp.exp2(jax.random.randint(jax.random.key(31), (100_000,), -60, 60)))])
    ours = jax.lax.bitcast_convert_type(jax.jit(round_to_bf16)(x), jnp.uint16)
    ref = jax.lax.bitcast_convert_type(jnp.asarray(x).astype(jnp.bfloat16), jnp.uint16)
    nan = np.isnan(x)
    np.testing.assert_array_equal(np.asarray(ours)[~nan], np.asarray(ref)[~nan])
    assert np.isnan(np.asarray(jax.jit(round_to_bf16)(x[nan]), np.float32)).all()


def test_store_and_load_bf16_gradients_are_casts():
    x = jax.random.normal(jax.random.key(32), (64,)) * 3
    g = jax.random.normal(jax.random.key(33), (64,)) / 3
    y, vjp = jax.vjp(cnn.store_bf16, x)
    assert y.dtype == jnp.bfloat16 and vjp(g.astype(jnp.bfloat16))[0].dtype == jnp.float32
    np.testing.assert_array_equal(y, x.astype(jnp.bfloat16))
    np.testing.assert_array_equal(vjp(g.astype(jnp.bfloat16))[0], g.astype(jnp.bfloat16).astype(jnp.float32))
    y, vjp = jax.vjp(cnn.load_bf16, x.astype(jnp.bfloat16))
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(vjp(g)[0], g.astype(jnp.bfloat16))


def cnn_loss_and_grads(name, dtype, platform, params, x, labels):
    model = create_model(name, num_classes=10, dtype=dtype, platform=platform)

    def loss(params):
        logits = model.apply({"params": params}, x).astype(jnp.float32)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize("name,shape", [("mnist_cnn", (28, 28, 1)), ("cifar_cnn", (32, 32, 3))])
def test_bf16_cpu_formulation_matches_plain_bf16(name, shape):
    """On CPU each bf16 conv layer runs conv, bias, relu and pool in float32 between bf16 loads
    and stores (fewer roundings); elsewhere (platform="gpu") the plain bf16 layers. They agree
    on the loss within bf16 rounding, and the CPU formulation's gradients are no further from
    the float32 model's than the plain ones."""
    x = jax.random.normal(jax.random.key(34), (16, *shape))
    labels = jnp.arange(16) % 10
    params = create_model(name, num_classes=10, dtype=jnp.float32).init(jax.random.key(35), x[:1])["params"]
    params = jax.tree_util.tree_map_with_path(  # nonzero biases: otherwise the two roundings coincide
        lambda path, p: p + 0.05 * jax.random.normal(jax.random.key(len(p)), p.shape)
        if jax.tree_util.keystr(path).endswith("['bias']") else p, params)
    cpu = cnn_loss_and_grads(name, jnp.bfloat16, "cpu", params, x, labels)
    plain = cnn_loss_and_grads(name, jnp.bfloat16, "gpu", params, x, labels)
    uses_fast_rounding = {platform: "bitcast_convert_type" in str(jax.make_jaxpr(
        create_model(name, num_classes=10, dtype=jnp.bfloat16, platform=platform).apply)({"params": params}, x))
        for platform in ("cpu", "gpu")}
    assert uses_fast_rounding == {"cpu": True, "gpu": False}
    fp32 = cnn_loss_and_grads(name, jnp.float32, "cpu", params, x, labels)
    np.testing.assert_allclose(cpu[0], plain[0], rtol=2e-2)
    assert abs(cpu[0] - fp32[0]) <= 1.5 * abs(plain[0] - fp32[0]) + 1e-3 * abs(fp32[0])
    for a, b, c in zip(jax.tree.leaves(cpu[1]), jax.tree.leaves(plain[1]), jax.tree.leaves(fp32[1])):
        assert a.dtype == b.dtype == jnp.float32
        scale = float(jnp.abs(c).max())
        # bf16 gradients at 16 examples are noisy (errors of 10-35% of the largest entry, in
        # either formulation): each is compared with the float32 gradient, not with the other
        err_cpu, err_plain = float(jnp.abs(a - c).max()), float(jnp.abs(b - c).max())
        assert err_cpu <= 1.25 * err_plain + 0.01 * scale and err_cpu <= 0.5 * scale


def test_params_cast_up_front_change_nothing():
    """The trainer casts a CNN's float32 parameters to bf16 before the model (on CPU with
    ``round_to_bf16``): the same loss and gradients as letting each layer cast them."""
    from imgrec.precision import get_policy, params_for_compute

    x = jax.random.normal(jax.random.key(36), (16, 32, 32, 3))
    labels = jnp.arange(16) % 10
    model = create_model("cifar_cnn", num_classes=10, dtype=jnp.bfloat16)
    params = model.init(jax.random.key(37), x[:1])["params"]

    def loss(params, up_front):
        if up_front:
            params = params_for_compute(params, get_policy("bf16"), "cpu")
            assert all(p.dtype == jnp.bfloat16 for p in jax.tree.leaves(params))
        logits = model.apply({"params": params}, x).astype(jnp.float32)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    cast, layer = (jax.jit(jax.value_and_grad(loss), static_argnums=1)(params, f) for f in (True, False))
    np.testing.assert_array_equal(cast[0], layer[0])
    jax.tree.map(np.testing.assert_array_equal, cast[1], layer[1])
    assert params_for_compute(params, get_policy("bf16"), "gpu") is params
    assert params_for_compute(params, get_policy("fp32"), "cpu") is params
