"""The talk's two small CNNs.

Padding is SAME (Flax's default, as in flax's MNIST example): the feature map
keeps its size through each 3x3 conv, so the same definition runs on 8x8
digits, 28x28 MNIST and 32x32 CIFAR, and the CIFAR net's two pools give clean
16x16 and 8x8 maps. The talk's layer list (conv32-conv32-maxpool-dense512-
dense512-dense10) fixes the layers, not the padding.
"""

from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from imgrec.models import register
from imgrec.precision import round_to_bf16


def max_pool_2x2(x):
    """2x2/2 max-pool written as reshape + max: the same numbers as
    ``nn.max_pool(x, (2, 2), (2, 2))`` for even sizes, and a formulation XLA:CPU
    compiles (and differentiates) much faster than reduce_window.

    The gradient is ``nn.max_pool``'s too (``_pool_2x2``'s custom VJP): all of
    it to the first maximum of each window, in row-major window order, as
    reduce_window's select-and-scatter does. (Autodiff of ``max`` would split it
    among ties, and XLA:CPU fused that tie count and divide into the preceding
    Dense layer's gradient dot, which then ran several times slower.)
    ``tests/test_models_cnn_equivalence.py`` checks both against ``nn.max_pool``."""
    n, h, w, c = x.shape
    if h % 2 or w % 2:
        return nn.max_pool(x, (2, 2), strides=(2, 2))
    return _pool_2x2(x)


@jax.custom_vjp
def _pool_2x2(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _pool_2x2_fwd(x):
    y = _pool_2x2(x)
    return y, (x, y)


def _pool_2x2_bwd(res, g):
    x, y = res
    n, h, w, c = x.shape
    hit = x.reshape(n, h // 2, 2, w // 2, 2, c) == y[:, :, None, :, None, :]
    h00, h01, h10, h11 = hit[:, :, 0, :, 0], hit[:, :, 0, :, 1], hit[:, :, 1, :, 0], hit[:, :, 1, :, 1]
    first = (h00, h01 & ~h00, h10 & ~(h00 | h01), h11 & ~(h00 | h01 | h10))
    zero = jnp.zeros_like(g)
    s00, s01, s10, s11 = (jnp.where(m, g, zero) for m in first)
    dx = jnp.stack([jnp.stack([s00, s01], axis=3), jnp.stack([s10, s11], axis=3)], axis=2)  # n,h/2,2,w/2,2,c
    return (dx.reshape(n, h, w, c),)


_pool_2x2.defvjp(_pool_2x2_fwd, _pool_2x2_bwd)


@jax.custom_vjp
def bf16_dense_dot(x, kernel):
    """``x @ kernel`` for bfloat16 operands, accumulated in float32, rounded to bfloat16.

    The same numbers as the plain bf16 ``lax.dot_general`` (XLA:CPU computes
    that in float32 and rounds too), but asking for the float32 result is what
    lets XLA:CPU run the matmul natively in bf16 (avx512_bf16, via YNNPACK)
    instead of converting both operands to float32 first. The custom VJP gives
    the two gradient matmuls the same form."""
    return jnp.dot(x, kernel, preferred_element_type=jnp.float32).astype(x.dtype)


def _bf16_dense_dot_fwd(x, kernel):
    return bf16_dense_dot(x, kernel), (x, kernel)


def _bf16_dense_dot_bwd(res, g):
    x, kernel = res
    g = g.astype(x.dtype)
    # (kernel @ g^T)^T rather than g @ kernel^T: XLA:CPU runs the latter in float32 (it converts
    # the transposed bf16 kernel), the former natively (MNIST's first Dense: 0.8 vs 4.4 ms)
    dx = jax.lax.dot_general(kernel, g, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32).T.astype(x.dtype)
    dk = jnp.dot(x.T, g, preferred_element_type=jnp.float32).astype(kernel.dtype)
    return dx, dk


bf16_dense_dot.defvjp(_bf16_dense_dot_fwd, _bf16_dense_dot_bwd)


def _dense_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """``dot_general`` for ``nn.Dense``: bf16 x bf16 2-D matmuls go through ``bf16_dense_dot``."""
    if (lhs.dtype == rhs.dtype == jnp.bfloat16 and lhs.ndim == rhs.ndim == 2 and preferred_element_type is None
            and tuple(map(tuple, dimension_numbers[0])) == ((1,), (0,)) and not any(dimension_numbers[1])):
        return bf16_dense_dot(lhs, rhs)
    return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                               preferred_element_type=preferred_element_type)


NHWC_HWIO = ("NHWC", "HWIO", "NHWC")
WEIGHT_GRAD_CHUNK = 4  # images per weight-gradient convolution; fastest on XLA:CPU (see chunked_conv)


def _is_plain_3x3(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                  feature_group_count, precision=None, preferred_element_type=None, batch_group_count=1, **kw):
    """A 3x3, stride-1, SAME, NHWC/HWIO conv with lax's default precision and output type."""
    if precision is not None or preferred_element_type is not None:
        return False
    ones = lambda v: v is None or all(d == 1 for d in v)
    same = padding == "SAME" or (not isinstance(padding, str) and tuple(map(tuple, padding)) == ((1, 1), (1, 1)))
    return (lhs.ndim == 4 and rhs.ndim == 4 and rhs.shape[:2] == (3, 3) and same and ones(window_strides)
            and ones(lhs_dilation) and ones(rhs_dilation) and feature_group_count == 1 and batch_group_count == 1
            and not kw and dimension_numbers == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC_HWIO))


def _conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=NHWC_HWIO)


def _weight_grad(x, g):
    """d(sum(conv(x, k) * g))/dk for a 3x3 SAME conv: the correlation of x and g, as the
    convolution XLA's own transpose rule emits (channels as batch, images as features),
    accumulated in float32."""
    return jax.lax.conv_general_dilated(x, g, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("CHWN", "IHWO", "HWNC"),
                                        preferred_element_type=jnp.float32)


def _take(a, shards, i, chunk):
    """Images [i, i + chunk) of every shard's local batch: on a mesh each device keeps its own."""
    local = a.shape[0] // shards
    return a.reshape(shards, local, *a.shape[1:])[:, i:i + chunk].reshape(shards * chunk, *a.shape[1:])


def _untake(parts, shards):
    """Inverse of ``_take`` over consecutive chunks: back to the batch order."""
    parts = [p.reshape(shards, -1, *p.shape[1:]) for p in parts]
    out = jnp.concatenate(parts, axis=1)
    return out.reshape(-1, *out.shape[2:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _chunked_conv(x, kernel, shards, chunk):
    return _conv(x, kernel)


def _chunked_conv_fwd(x, kernel, shards, chunk):
    return _conv(x, kernel), (x, kernel)


def _chunked_conv_bwd(shards, chunk, res, g):
    x, kernel = res
    dx = jax.vjp(lambda x: _conv(x, kernel), x)[1](g)[0]
    # each chunk spans every shard (see _take): on a mesh each device convolves its own
    # images (a batch-sharded conv) and nothing moves but the sum
    local = x.shape[0] // shards
    dk = sum(_weight_grad(_take(x, shards, i, chunk), _take(g, shards, i, chunk)) for i in range(0, local, chunk))
    return dx, dk.astype(kernel.dtype)


_chunked_conv.defvjp(_chunked_conv_fwd, _chunked_conv_bwd)


def chunked_conv(lhs, rhs, window_strides=(1, 1), padding="SAME", lhs_dilation=None, rhs_dilation=None,
                 dimension_numbers=None, feature_group_count=1, precision=None, preferred_element_type=None,
                 *, batch_shards: int = 1, **kw):
    """``lax.conv_general_dilated`` (the signature ``nn.Conv`` calls) whose kernel gradient is
    summed over chunks of ``WEIGHT_GRAD_CHUNK`` images per batch shard (device).

    Same forward pass and input gradient; the kernel gradient is the same sum in another
    order, accumulated in float32. Why: XLA:CPU computes a 3x3 conv's kernel gradient as one
    convolution with an image-sized kernel, which over a batch of 128 runs at about a fifth
    of the forward conv's speed, and over 4 images at a time near it (measured: 54 ms for
    the MNIST CNN's second conv at batch 128, 11 ms in chunks of 4). ``batch_shards`` is
    the number of devices the batch is split over, so that each chunk spans all of them.
    Anything but a 3x3, stride-1, SAME, NHWC conv goes to ``lax.conv_general_dilated``.
    ``tests/test_models_cnn_equivalence.py`` checks values and gradients against it."""
    n = lhs.shape[0]
    opts = {"precision": precision, "preferred_element_type": preferred_element_type}
    if (n % batch_shards or (n // batch_shards) % WEIGHT_GRAD_CHUNK
            or not _is_plain_3x3(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                                 feature_group_count, **kw, **opts)):
        return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                            dimension_numbers, feature_group_count, **kw, **opts)
    return _chunked_conv(lhs, rhs, batch_shards, WEIGHT_GRAD_CHUNK)


def patch_conv(lhs, rhs, window_strides=(1, 1), padding="SAME", lhs_dilation=None, rhs_dilation=None,
               dimension_numbers=None, feature_group_count=1, precision=None, preferred_element_type=None, **kw):
    """A 3x3/1 SAME convolution of an input with few channels (the image) as one matmul: the nine
    shifted copies of the input side by side ([N, H, W, 9*C], small for C = 1 or 3) times the
    kernel reshaped to [9*C, features]; its kernel gradient is then one [N*H*W, 9*C]^T x
    [N*H*W, features] matmul. Measured against ``chunked_conv`` for the first conv (training
    step, batch 128, 6 alternating repeats): MNIST CNN 2,390 vs 2,289 images/s, CIFAR CNN
    1,577 vs 1,565.
    Anything else goes to ``lax.conv_general_dilated``."""
    opts = {"precision": precision, "preferred_element_type": preferred_element_type}
    if not _is_plain_3x3(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                         feature_group_count, **kw, **opts):
        return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                            dimension_numbers, feature_group_count, **kw, **opts)
    n, h, w, c = lhs.shape
    padded = jnp.pad(lhs, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = jnp.concatenate([padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=-1)
    out = jnp.dot(patches.reshape(n * h * w, 9 * c), rhs.reshape(9 * c, rhs.shape[-1]))
    return out.reshape(n, h, w, rhs.shape[-1])


@jax.custom_vjp
def add_channel_bias(y, bias):
    """``y + bias`` over the last axis, as ``nn.Conv`` adds its bias; the bias gradient is summed
    per image first, in float32 (XLA:CPU otherwise rewrites the bf16 model's one big reduction
    into a slow reduce-window)."""
    return y + bias


def _add_channel_bias_fwd(y, bias):
    return y + bias, None


def _add_channel_bias_bwd(_, g):
    per_image = jnp.sum(g.reshape(g.shape[0], -1, g.shape[-1]), axis=1, dtype=jnp.float32)
    return g, jnp.sum(per_image, axis=0).astype(g.dtype)


add_channel_bias.defvjp(_add_channel_bias_fwd, _add_channel_bias_bwd)


@jax.custom_vjp
def store_bf16(x):
    """float32 -> bfloat16 (``round_to_bf16``); the gradient comes back as float32."""
    return round_to_bf16(x)


store_bf16.defvjp(lambda x: (round_to_bf16(x), None), lambda _, g: (g.astype(jnp.float32),))


@jax.custom_vjp
def load_bf16(x):
    """bfloat16 -> float32 (exact); the gradient goes back rounded to bfloat16 (``round_to_bf16``)."""
    return x.astype(jnp.float32)


load_bf16.defvjp(lambda x: (x.astype(jnp.float32), None), lambda _, g: (round_to_bf16(g),))


class Conv3x3(nn.Module):
    """``nn.Conv(features, (3, 3), padding="SAME")`` with the same parameters (names, shapes,
    initializers, dtype promotion), computed by ``conv`` and ``add_channel_bias``."""

    features: int
    dtype: jnp.dtype = jnp.float32
    conv: Callable = jax.lax.conv_general_dilated
    params_rounded_to: jnp.dtype | None = None  # round kernel and bias to this dtype, compute in ``dtype``

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.linear.default_kernel_init, (3, 3, x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        if self.params_rounded_to is not None:
            kernel, bias = (p.astype(self.params_rounded_to) for p in (kernel, bias))
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        dims = jax.lax.conv_dimension_numbers(x.shape, kernel.shape, NHWC_HWIO)
        return add_channel_bias(self.conv(x, kernel, (1, 1), "SAME", dimension_numbers=dims), bias)


# Bytes of one conv layer's float32 output per chunk of images that go through the conv stack
# together. On XLA:CPU each layer otherwise streams batch-sized activations (12.8 MB per MNIST
# layer at batch 128) through main memory; in chunks of about 3 MB they stay in cache from one
# layer to the next. Measured at batch 128 (2-core Xeon): MNIST CNN 2,069 -> 2,576 images/s in
# fp32 with 32-image chunks (16: 2,390, 64: 2,300); CIFAR CNN 1,302 -> about 1,720 with 16
# (32: 1,610). Dense layers keep the whole batch (bigger matmuls).
CONV_STACK_CHUNK_BYTES = 3_300_000
MAX_CONV_STACK_CHUNKS = 8  # compile time grows with the number of chunks


def conv_stack_chunk(local_batch: int, bytes_per_image: int) -> int:
    """Images per conv-stack chunk: the largest divisor of the local batch within the byte
    budget (at least 8 images, at most MAX_CONV_STACK_CHUNKS chunks); the whole batch when
    it fits the budget or nothing else divides it."""
    target = max(8, CONV_STACK_CHUNK_BYTES // bytes_per_image)
    if local_batch <= target:
        return local_batch
    divisors = [d for d in range(8, local_batch + 1) if local_batch % d == 0]
    size = max((d for d in divisors if d <= target), default=local_batch)
    if local_batch // size > MAX_CONV_STACK_CHUNKS:
        size = min(d for d in divisors if d * MAX_CONV_STACK_CHUNKS >= local_batch)
    return size


class SmallCNN(nn.Module):
    """Conv32(3x3)-relu blocks, a 2x2 max-pool after each group, then
    Dense512-relu-Dense512-relu-Dense(num_classes)."""

    conv_groups: tuple[int, ...]  # number of Conv32 layers before each pool
    num_classes: int = 10
    features: int = 32
    hidden: int = 512
    dtype: jnp.dtype = jnp.float32
    batch_shards: int = 1  # devices the batch is split over: chunks (conv stack, kernel gradients) span them all
    platform: str = "cpu"  # where it runs: bf16 convs are formulated for XLA:CPU there (see __call__)

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no dropout or batch norm in the talk's CNNs
        x = x.astype(self.dtype)
        # bf16 on XLA:CPU, which computes bf16 convs in float32 anyway: each conv layer loads its
        # bf16 input as float32, runs conv, bias, relu (and pool) in float32 and stores the result
        # rounded to bf16 once, instead of XLA rounding and re-widening after every op. The same
        # operands (bf16 activations, kernels and biases), fewer roundings in between. Measured
        # (batch 128, 7 alternating repeats): CIFAR CNN 1,686 -> 1,836 img/s; MNIST CNN even.
        epilogue = self.platform == "cpu" and self.dtype == jnp.bfloat16
        conv_dtype, rounded_to = (jnp.float32, jnp.bfloat16) if epilogue else (self.dtype, None)
        convs, channels = [], x.shape[-1]
        for group, n_convs in enumerate(self.conv_groups):
            for _ in range(n_convs):
                # the image-facing conv (1 or 3 channels) as a patch matmul, the rest with chunked
                # kernel gradients: both the same sums as lax's conv, faster on XLA:CPU
                conv = patch_conv if channels <= 4 else functools.partial(chunked_conv, batch_shards=self.batch_shards)
                convs.append((group, Conv3x3(self.features, dtype=conv_dtype, conv=conv, params_rounded_to=rounded_to,
                                             name=f"Conv_{len(convs)}")))
                channels = self.features

        def features(x):
            for i, (group, conv) in enumerate(convs):
                x = nn.relu(conv(load_bf16(x) if epilogue else x))
                if i + 1 == len(convs) or convs[i + 1][0] != group:
                    x = max_pool_2x2(x)
                if epilogue:
                    x = store_bf16(x)
            return x

        # the conv stack runs on chunks of images per shard whose activations stay in cache from
        # one layer to the next (see CONV_STACK_CHUNK_BYTES)
        local = x.shape[0] // self.batch_shards
        size = conv_stack_chunk(local, x.shape[1] * x.shape[2] * self.features * 4)
        if x.shape[0] % self.batch_shards or size == local:
            x = features(x)
        else:
            x = _untake([features(_take(x, self.batch_shards, i, size)) for i in range(0, local, size)],
                        self.batch_shards)
        x = x.reshape(x.shape[0], -1)
        dense = functools.partial(nn.Dense, dtype=self.dtype, dot_general=_dense_dot_general)
        x = nn.relu(dense(self.hidden)(x))
        x = nn.relu(dense(self.hidden)(x))
        return dense(self.num_classes)(x)


@register("mnist_cnn", takes_layout_hints=True, params_in_compute_dtype=True)
def mnist_cnn(*, num_classes: int, dtype, **kw) -> nn.Module:
    """Conv32-Conv32-maxpool-Dense512-Dense512-Dense10 (the talk's MNIST CNN)."""
    return SmallCNN(conv_groups=(2,), num_classes=num_classes, dtype=dtype, **kw)


@register("cifar_cnn", takes_layout_hints=True, params_in_compute_dtype=True)
def cifar_cnn(*, num_classes: int, dtype, **kw) -> nn.Module:
    """Conv32 x2 - maxpool - Conv32 x2 - maxpool - Dense512-Dense512-Dense10."""
    return SmallCNN(conv_groups=(2, 2), num_classes=num_classes, dtype=dtype, **kw)
