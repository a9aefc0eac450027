"""The talk's two small CNNs.

Padding is SAME (Flax's default, as in flax's MNIST example): the feature map
keeps its size through each 3x3 conv, so the same definition runs on 8x8
digits, 28x28 MNIST and 32x32 CIFAR, and the CIFAR net's two pools give clean
16x16 and 8x8 maps. The talk's layer list (conv32-conv32-maxpool-dense512-
dense512-dense10) fixes the layers, not the padding.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from imgrec.models import register


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
    dx = jnp.dot(g, kernel.T, preferred_element_type=jnp.float32).astype(x.dtype)
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


class SmallCNN(nn.Module):
    """Conv32(3x3)-relu blocks, a 2x2 max-pool after each group, then
    Dense512-relu-Dense512-relu-Dense(num_classes)."""

    conv_groups: tuple[int, ...]  # number of Conv32 layers before each pool
    num_classes: int = 10
    features: int = 32
    hidden: int = 512
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no dropout or batch norm in the talk's CNNs
        x = x.astype(self.dtype)
        for n_convs in self.conv_groups:
            for _ in range(n_convs):
                x = nn.relu(nn.Conv(self.features, (3, 3), padding="SAME", dtype=self.dtype)(x))
            x = max_pool_2x2(x)
        x = x.reshape(x.shape[0], -1)
        dense = functools.partial(nn.Dense, dtype=self.dtype, dot_general=_dense_dot_general)
        x = nn.relu(dense(self.hidden)(x))
        x = nn.relu(dense(self.hidden)(x))
        return dense(self.num_classes)(x)


@register("mnist_cnn")
def mnist_cnn(*, num_classes: int, dtype, **kw) -> nn.Module:
    """Conv32-Conv32-maxpool-Dense512-Dense512-Dense10 (the talk's MNIST CNN)."""
    return SmallCNN(conv_groups=(2,), num_classes=num_classes, dtype=dtype, **kw)


@register("cifar_cnn")
def cifar_cnn(*, num_classes: int, dtype, **kw) -> nn.Module:
    """Conv32 x2 - maxpool - Conv32 x2 - maxpool - Dense512-Dense512-Dense10."""
    return SmallCNN(conv_groups=(2, 2), num_classes=num_classes, dtype=dtype, **kw)
