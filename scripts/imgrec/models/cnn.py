"""The talk's two small CNNs.

Padding is SAME (Flax's default, as in flax's MNIST example): the feature map
keeps its size through each 3x3 conv, so the same definition runs on 8x8
digits, 28x28 MNIST and 32x32 CIFAR, and the CIFAR net's two pools give clean
16x16 and 8x8 maps. The talk's layer list (conv32-conv32-maxpool-dense512-
dense512-dense10) fixes the layers, not the padding.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from imgrec.models import register


def max_pool_2x2(x):
    """2x2/2 max-pool written as reshape + max: the same numbers as
    ``nn.max_pool(x, (2, 2), (2, 2))`` for even sizes, and a formulation XLA:CPU
    compiles (and differentiates) much faster than reduce_window."""
    n, h, w, c = x.shape
    if h % 2 or w % 2:
        return nn.max_pool(x, (2, 2), strides=(2, 2))
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


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
        x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype)(x))
        x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype)(x))
        return nn.Dense(self.num_classes, dtype=self.dtype)(x)


@register("mnist_cnn")
def mnist_cnn(*, num_classes: int, dtype, **kw) -> nn.Module:
    """Conv32-Conv32-maxpool-Dense512-Dense512-Dense10 (the talk's MNIST CNN)."""
    return SmallCNN(conv_groups=(2,), num_classes=num_classes, dtype=dtype, **kw)


@register("cifar_cnn")
def cifar_cnn(*, num_classes: int, dtype, **kw) -> nn.Module:
    """Conv32 x2 - maxpool - Conv32 x2 - maxpool - Dense512-Dense512-Dense10."""
    return SmallCNN(conv_groups=(2, 2), num_classes=num_classes, dtype=dtype, **kw)
