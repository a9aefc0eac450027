"""Plain Vision Transformer (ViT-Ti/16, S/16, B/16), big_vision style.

patch embedding (a 16x16/16 conv) -> learned position embedding -> pre-LN
encoder blocks (LN-MHA-residual, LN-MLP(GELU)-residual) -> final LN -> pool ->
linear head (zero-initialised, as in big_vision).

``pool="gap"`` (default, big_vision's plain ViT-S/16 recipe) averages the
tokens; ``pool="cls"`` prepends a learned class token and reads it out. The
position embedding is added after the class token is prepended, so it covers
it too (as in the original ViT / timm; this is what gives the published
86,567,656 for ViT-B/16; big_vision's ``tok`` variant skips the class token's
position, 768 fewer). Its shape comes from the input at init
(``(1, tokens, width)``), so a model initialised at one image size must be
applied at that size.

Parameter counts (1000 classes, 224x224x3 input, patch 16 -> 196 tokens;
checked in tests/test_models_resnet_vit.py)::

    model     width depth heads mlp    pool="gap"   pool="cls"
    vit_ti16   192   12     3    768    5,717,032    5,717,416
    vit_s16    384   12     6   1536   22,049,896   22,050,664
    vit_b16    768   12    12   3072   86,566,120   86,567,656

Sharding/pipelining layout: each block is an ``EncoderBlock`` module named
``blocks_{i}`` whose attention is ``attn`` (flax ``MultiHeadDotProductAttention``:
``query``/``key``/``value`` kernels ``(embed, heads, head_dim)``, ``out`` kernel
``(heads, head_dim, embed)``) and whose MLP is ``mlp`` with ``fc1``
``(embed, mlp_dim)`` and ``fc2`` ``(mlp_dim, embed)``. ``ViT.embed``,
``ViT.encode(x, start, stop)`` and ``ViT.classify`` run the stem, a contiguous
range of blocks and the head separately (``model.apply(v, x, method=ViT.embed)``
etc.); a call only touches the parameters of the submodules it runs, so a
pipeline stage needs only its own blocks' parameters.

Mixed precision: ``dtype`` is the compute dtype, parameters stay float32.
LayerNorm statistics are computed in float32 (flax's default
``force_float32_reductions``) and so is the attention softmax
(``force_fp32_for_softmax``): a bf16 mean/variance or exp-sum over hundreds of
values loses most of its 8 mantissa bits and visibly hurts training.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from imgrec.models import register

_xavier = nn.initializers.xavier_uniform()
_tiny_bias = nn.initializers.normal(stddev=1e-6)


class MlpBlock(nn.Module):
    mlp_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        x = nn.Dense(self.mlp_dim, dtype=self.dtype, kernel_init=_xavier, bias_init=_tiny_bias,
                     name="fc1")(x)
        x = nn.gelu(x)
        return nn.Dense(d, dtype=self.dtype, kernel_init=_xavier, bias_init=_tiny_bias,
                        name="fc2")(x)


class EncoderBlock(nn.Module):
    """Pre-LN transformer block: x + MHA(LN(x)), then x + MLP(LN(x))."""

    num_heads: int
    mlp_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no dropout in the plain-ViT recipe
        y = nn.LayerNorm(dtype=self.dtype, name="ln1")(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, dtype=self.dtype, kernel_init=_xavier,
            force_fp32_for_softmax=True, deterministic=True, name="attn")(y)
        x = x + y
        y = nn.LayerNorm(dtype=self.dtype, name="ln2")(x)
        return x + MlpBlock(self.mlp_dim, dtype=self.dtype, name="mlp")(y)


class PatchEmbed(nn.Module):
    """Patchify conv, optional class token, learned position embedding."""

    width: int
    patch_size: int = 16
    pool: str = "gap"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        p = self.patch_size
        x = nn.Conv(self.width, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype,
                    name="embedding")(x)
        n, h, w, c = x.shape
        x = x.reshape(n, h * w, c)
        if self.pool == "cls":
            cls = self.param("cls", nn.initializers.zeros, (1, 1, c))
            x = jnp.concatenate([jnp.tile(cls.astype(x.dtype), (n, 1, 1)), x], axis=1)
        pos = self.param("pos_embedding", nn.initializers.normal(stddev=c**-0.5),
                         (1, x.shape[1], c))
        return x + pos.astype(x.dtype)


class ViT(nn.Module):
    num_classes: int = 1000
    width: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    patch_size: int = 16
    pool: str = "gap"  # "gap" | "cls"
    dtype: Any = jnp.float32

    def setup(self):
        if self.pool not in ("gap", "cls"):
            raise ValueError(f"pool must be 'gap' or 'cls', got {self.pool!r}")
        self.stem = PatchEmbed(self.width, self.patch_size, self.pool, dtype=self.dtype)
        # Named blocks_0 .. blocks_{num_layers-1} in the params tree.
        self.blocks = [EncoderBlock(self.num_heads, self.mlp_dim, dtype=self.dtype)
                       for _ in range(self.num_layers)]
        self.encoder_norm = nn.LayerNorm(dtype=self.dtype)
        self.head = nn.Dense(self.num_classes, dtype=self.dtype,
                             kernel_init=nn.initializers.zeros)

    def embed(self, x):
        """NHWC images -> (N, tokens, width) embedded tokens."""
        return self.stem(x.astype(self.dtype))

    def encode(self, x, start: int = 0, stop: int | None = None, train: bool = False):
        """Run encoder blocks ``start`` .. ``stop - 1`` on tokens."""
        for block in self.blocks[start:stop]:
            x = block(x, train=train)
        return x

    def classify(self, x):
        """Final LN, pool (class token or token mean), linear head -> logits."""
        x = self.encoder_norm(x)
        x = x[:, 0] if self.pool == "cls" else jnp.mean(x, axis=1)
        return self.head(x)

    def __call__(self, x, train: bool = False):
        return self.classify(self.encode(self.embed(x), train=train))


_SIZES = {  # width, depth, heads, mlp_dim
    "ti": (192, 12, 3, 768),
    "s": (384, 12, 6, 1536),
    "b": (768, 12, 12, 3072),
}


def _vit(size: str, *, num_classes: int, dtype, **kw) -> ViT:
    width, depth, heads, mlp = _SIZES[size]
    return ViT(num_classes=num_classes, width=width, num_layers=depth, num_heads=heads,
               mlp_dim=mlp, dtype=dtype, **kw)


@register("vit_ti16")
def vit_ti16(*, num_classes: int, dtype, **kw) -> nn.Module:
    return _vit("ti", num_classes=num_classes, dtype=dtype, **kw)


@register("vit_s16")
def vit_s16(*, num_classes: int, dtype, **kw) -> nn.Module:
    return _vit("s", num_classes=num_classes, dtype=dtype, **kw)


@register("vit_b16")
def vit_b16(*, num_classes: int, dtype, **kw) -> nn.Module:
    return _vit("b", num_classes=num_classes, dtype=dtype, **kw)
