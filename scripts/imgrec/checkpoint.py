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
        ckptr.save(path, state)  # sharded arrays are written by the processes that hold them
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


class ResumeStore:
    """Periodic checkpoints of a run in progress: the train state plus the
    ``progress`` record (curve so far, partial-epoch accumulators). The data
    position and the RNG derive from the step, so nothing else is needed to
    resume bit for bit. Orbax writes each step atomically: a run killed mid-save
    leaves only a temporary directory, which is ignored."""

    def __init__(self, directory, config_hash: str, log=print):
        self.directory = Path(directory).absolute()
        self.config_hash = config_hash
        self.log = log
        self._manager = None

    @property
    def manager(self) -> ocp.CheckpointManager:
        if self._manager is None:
            options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False,
                                                   cleanup_tmp_directories=True)
            self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "progress"))
        return self._manager

    def restore_latest(self, abstract_state):
        """(state, progress) of the latest checkpoint, or None when there is none to resume."""
        if not self.directory.exists():
            return None
        step = self.manager.latest_step()
        if step is None:
            return None
        where = self.directory / str(step)
        try:
            progress = self.manager.restore(step, args=ocp.args.Composite(progress=ocp.args.JsonRestore()))["progress"]
        except Exception as err:
            raise CheckpointError(f"checkpoint {where} is corrupt ({type(err).__name__}: {err}); delete "
                                  f"{self.directory} to start this experiment from scratch") from err
        if progress.get("config_hash") != self.config_hash:
            self.log(f"checkpoints in {self.directory} belong to a different config; starting afresh")
            self.clear()
            return None
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state)))
        except Exception as err:
            raise CheckpointError(f"checkpoint {where} is corrupt or does not match the model/optimizer "
                                  f"({type(err).__name__}: {err}); delete {self.directory} to start "
                                  f"this experiment from scratch") from err
        return restored["state"], progress["progress"]

    def save(self, state, progress: dict) -> None:
        step = int(jax.device_get(state.step))
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            progress=ocp.args.JsonSave({"config_hash": self.config_hash, "progress": progress})), force=True)
        self.manager.wait_until_finished()

    def clear(self) -> None:
        import shutil

        if self._manager is not None:
            self._manager.close()
            self._manager = None
        shutil.rmtree(self.directory, ignore_errors=True)
