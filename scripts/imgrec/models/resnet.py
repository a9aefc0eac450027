"""ResNets: ResNet-50 v1.5 / ResNet-18 (ImageNet) and David Page's ResNet-9 (CIFAR-10).

ResNet-18/50 follow flax's ``examples/imagenet/models.py``: v1.5 (the stride of
a downsampling bottleneck sits on its 3x3 conv, not the first 1x1), bias-free
convs, BatchNorm (momentum 0.9, eps 1e-5) with the last BN scale of every
residual branch zero-initialised, so each block starts as the identity.
ResNet-50 with 1000 classes has 25,557,032 parameters (torchvision's count);
ResNet-18 has 11,689,512.

ResNet-9 is the DAWNBench net from David Page's "How to train your ResNet":
prep conv64 | conv128-pool + residual(conv128, conv128) | conv256-pool |
conv512-pool + residual(conv512, conv512) | global max-pool | linear (no bias)
scaled by 0.125. Every conv is 3x3, bias-free, followed by BN + ReLU. Page's
final ``MaxPool(4)`` is the global max at 32x32; a global max keeps the net
valid at any input size >= 8 (progressive resizing at 16/24/32).
6,573,120 parameters for 10 classes.

Mixed precision: ``dtype`` is the compute dtype, parameters stay float32
(``param_dtype`` default). Flax's BatchNorm computes its batch statistics in
float32 whatever ``dtype`` is (``force_float32_reductions``): a mean/variance
over ~10^5 values in bf16 (8 mantissa bits) would be too coarse; its output is
in the compute dtype.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from imgrec.models import register
from imgrec.models.cnn import max_pool_2x2

ModuleDef = Any


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34)."""

    filters: int
    conv: ModuleDef
    norm: ModuleDef
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = self.conv(self.filters, (3, 3), self.strides)(x)
        y = nn.relu(self.norm()(y))
        y = self.conv(self.filters, (3, 3))(y)
        y = self.norm(scale_init=nn.initializers.zeros_init())(y)
        if residual.shape != y.shape:
            residual = self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual)
            residual = self.norm(name="norm_proj")(residual)
        return nn.relu(residual + y)


class BottleneckBlock(nn.Module):
    """1x1 -> 3x3 (strided, v1.5) -> 1x1 (x4 channels) (ResNet-50/101/152)."""

    filters: int
    conv: ModuleDef
    norm: ModuleDef
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = nn.relu(self.norm()(self.conv(self.filters, (1, 1))(x)))
        y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.strides)(y)))
        y = self.conv(self.filters * 4, (1, 1))(y)
        y = self.norm(scale_init=nn.initializers.zeros_init())(y)
        if residual.shape != y.shape:
            residual = self.conv(self.filters * 4, (1, 1), self.strides, name="conv_proj")(residual)
            residual = self.norm(name="norm_proj")(residual)
        return nn.relu(residual + y)


class ResNet(nn.Module):
    """ImageNet ResNet: 7x7/2 conv, 3x3/2 max-pool, four stages, GAP, Dense."""

    stage_sizes: Sequence[int]
    block_cls: ModuleDef
    num_classes: int = 1000
    num_filters: int = 64
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = partial(nn.Conv, use_bias=False, dtype=self.dtype)
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                       epsilon=1e-5, dtype=self.dtype)
        x = x.astype(self.dtype)
        x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x)
        x = nn.relu(norm(name="bn_init")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, n_blocks in enumerate(self.stage_sizes):
            for j in range(n_blocks):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = self.block_cls(self.num_filters * 2**i, conv=conv, norm=norm, strides=strides)(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=self.dtype)(x)


class ResNet9(nn.Module):
    """David Page's DAWNBench ResNet-9 (see module docstring)."""

    num_classes: int = 10
    width: int = 64  # channels of the prep conv; the stages use 2x, 4x, 8x
    out_scale: float = 0.125
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        def conv_bn(x, features, name):
            x = nn.Conv(features, (3, 3), padding="SAME", use_bias=False, dtype=self.dtype,
                        name=f"{name}_conv")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             dtype=self.dtype, name=f"{name}_bn")(x)
            return nn.relu(x)

        w = self.width
        x = x.astype(self.dtype)
        x = conv_bn(x, w, "prep")
        x = max_pool_2x2(conv_bn(x, 2 * w, "layer1"))
        x = x + conv_bn(conv_bn(x, 2 * w, "res1a"), 2 * w, "res1b")
        x = max_pool_2x2(conv_bn(x, 4 * w, "layer2"))
        x = max_pool_2x2(conv_bn(x, 8 * w, "layer3"))
        x = x + conv_bn(conv_bn(x, 8 * w, "res3a"), 8 * w, "res3b")
        x = jnp.max(x, axis=(1, 2))  # global max-pool: any input size >= 8 works
        x = nn.Dense(self.num_classes, use_bias=False, dtype=self.dtype, name="head")(x)
        return x * jnp.asarray(self.out_scale, x.dtype)


@register("resnet50")
def resnet50(*, num_classes: int, dtype, **kw) -> nn.Module:
    """ResNet-50 v1.5 (25,557,032 params at 1000 classes)."""
    return ResNet(stage_sizes=(3, 4, 6, 3), block_cls=BottleneckBlock,
                  num_classes=num_classes, dtype=dtype, **kw)


@register("resnet18")
def resnet18(*, num_classes: int, dtype, **kw) -> nn.Module:
    """ResNet-18 (11,689,512 params at 1000 classes)."""
    return ResNet(stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock,
                  num_classes=num_classes, dtype=dtype, **kw)


@register("resnet9")
def resnet9(*, num_classes: int, dtype, **kw) -> nn.Module:
    """Page's DAWNBench CIFAR-10 ResNet-9 (6,573,120 params at 10 classes)."""
    return ResNet9(num_classes=num_classes, dtype=dtype, **kw)
