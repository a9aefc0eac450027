"""Checkpoints with orbax: the whole train state, written atomically."""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    pass


def save(path, state) -> None:
    path = Path(path).absolute()
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(path, jax.device_get(state))
        ckptr.wait_until_finished()


def restore(path, abstract_state):
    """``abstract_state``: a pytree of ``jax.ShapeDtypeStruct`` (``jax.eval_shape`` of the init)."""
    path = Path(path).absolute()
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train the experiment first")
    try:
        with ocp.StandardCheckpointer() as ckptr:
            return ckptr.restore(path, abstract_state)
    except Exception as err:  # orbax raises many types; all mean the same to the user
        raise CheckpointError(f"checkpoint {path} is corrupt or does not match the model/optimizer "
                              f"({type(err).__name__}: {err}); delete it and train again") from err
