"""Device meshes with three named axes: ``data``, ``model`` and ``stage``.

A strategy says how many devices go to tensor (``model``) and pipeline
(``stage``) parallelism; the rest form the ``data`` axis. The same code builds
the mesh from real accelerators, a multi-host pod (``jax.devices()`` spans
every process) or virtual CPU devices (``JAX_NUM_CPU_DEVICES``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

AXES = ("data", "stage", "model")  # outermost (slowest links, e.g. across hosts) to innermost
NAMES = ("dp", "fsdp", "tp", "pp")


@dataclasses.dataclass(frozen=True)
class Strategy:
    """How the state and the batch are laid out.

    name: ``dp`` (replicated state), ``fsdp`` (every state leaf sharded over
    ``data``), ``tp`` (ViT heads / MLP units over ``model``), ``pp`` (ViT
    blocks over ``stage``, GPipe). ``fsdp=True`` adds FSDP to tp/pp leaves
    that the strategy leaves replicated.
    """

    name: str = "dp"
    model: int = 1
    stage: int = 1
    microbatches: int = 1
    fsdp: bool = False

    def __post_init__(self):
        if self.name not in NAMES:
            raise ValueError(f"unknown parallel strategy {self.name!r}; one of {', '.join(NAMES)}")
        if self.model > 1 and self.name != "tp" or self.stage > 1 and self.name != "pp":
            raise ValueError(f"strategy {self.name!r} cannot use model={self.model}, stage={self.stage}")

    @classmethod
    def from_config(cls, cfg: Any = None) -> "Strategy":
        """``None`` -> dp; a name (``"fsdp"``); or a mapping with the fields above."""
        if cfg is None:
            return cls()
        if isinstance(cfg, Strategy):
            return cfg
        if isinstance(cfg, str):
            return cls(name=cfg)
        return cls(**cfg)

    @property
    def shards_params_over_data(self) -> bool:
        return self.name == "fsdp" or self.fsdp


def mesh_shape(num_devices: int, strategy: Strategy) -> dict[str, int]:
    inner = strategy.model * strategy.stage
    if num_devices % inner:
        raise ValueError(f"{num_devices} devices cannot be split into model={strategy.model} x "
                         f"stage={strategy.stage} groups")
    return {"data": num_devices // inner, "stage": strategy.stage, "model": strategy.model}


def make_mesh(devices=None, strategy: Any = None):
    """A ``Mesh`` with axes ``data``, ``stage``, ``model`` (Auto axis types, so
    XLA propagates shardings from the placed state and batch)."""
    import jax
    from jax.sharding import AxisType, Mesh

    strategy = Strategy.from_config(strategy)
    devices = list(jax.devices() if devices is None else devices)
    shape = mesh_shape(len(devices), strategy)
    sizes = tuple(shape[a] for a in AXES)
    try:  # topology-aware order on TPU/GPU (and across hosts); plain order elsewhere
        return jax.make_mesh(sizes, AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices)
    except (ValueError, NotImplementedError, AssertionError):
        return Mesh(np.asarray(devices).reshape(sizes), AXES, axis_types=(AxisType.Auto,) * len(AXES))


def axis_size(mesh, name: str) -> int:
    return int(mesh.shape.get(name, 1))
