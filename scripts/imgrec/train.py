"""The trainer: one loop for every model, dataset, precision and device mesh.

Design points, each for speed or reproducibility:
- Steps are pure functions of (state, batch) compiled once per input shape
  with ``jax.jit`` (ahead of time, so compile time and the XLA FLOP count are
  known before the first step); ``steps_per_call`` > 1 fuses several steps into
  one compiled call (unrolled: see ``multi_step``) to cut dispatch overhead; the
  state buffers are donated.
- Batches are sharded over the mesh's ``data`` axis (``NamedSharding``); the
  state is replicated, or sharded by the experiment's `parallel:` strategy (imgrec.parallel: fsdp,
  tensor or pipeline parallel). The same code runs on 1 CPU, 8 virtual CPUs or a pod.
- Shuffling, augmentation and init derive from the seed alone (per-epoch numpy
  permutation, ``fold_in(key, step)`` for augmentation), so the same config on
  the same hardware gives the same numbers, and a resumed run the same stream.
- Metrics stay on the device until an epoch ends (or a checkpoint is due).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from imgrec import models, parallel
from imgrec.data import PreparedDataset
from imgrec.optim import make_optimizer, make_schedule
from imgrec.precision import get_policy, params_for_compute


class DivergenceError(FloatingPointError):
    pass


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any


# ----------------------------------------------------------------- preprocessing
def normalize(images, mean, std):
    """uint8 NHWC -> float32, per-channel standardized with the train split's statistics."""
    return (images.astype(jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def augment(x, rng, ops):
    """Random horizontal flip and 4-pixel reflect-pad random crop, per example, on device."""
    n, h, w, c = x.shape
    flip_key, crop_key = jax.random.split(rng)
    if "flip" in ops:
        flip = jax.random.bernoulli(flip_key, 0.5, (n, 1, 1, 1))
        x = jnp.where(flip, x[:, :, ::-1, :], x)
    if "crop" in ops:
        pad = 4
        padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        offsets = jax.random.randint(crop_key, (n, 2), 0, 2 * pad + 1)
        x = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, c)))(padded, offsets)
    return x


def resize(x, size: int | None):
    if size is None or size == x.shape[1]:
        return x
    return jax.image.resize(x, (x.shape[0], size, size, x.shape[3]), method="linear")


# -------------------------------------------------------------------- the model
class Task:
    """A model + precision policy + input statistics: the pure functions the loops compile."""

    def __init__(self, spec: dict, num_classes: int, image_shape, mean, std, batch_shards: int = 1,
                 platform: str = "cpu"):
        self.spec = spec
        self.platform = platform
        self.policy = get_policy(spec["precision"])
        self.num_classes = num_classes
        self.image_shape = tuple(image_shape)
        self.mean, self.std = tuple(mean), tuple(std)
        self.model = models.create_model(spec["model"], num_classes=num_classes, dtype=self.policy.compute_dtype,
                                         batch_shards=batch_shards, platform=platform,
                                         **spec.get("model_args", {}))
        self.label_smoothing = spec["schedule"].get("label_smoothing", 0.0)
        self.augment_ops = tuple(spec.get("augment", ()))
        self.base_key = jax.random.key(spec.get("seed", 0))

    def init_variables(self):
        dummy = jnp.zeros((1, *self.image_shape), jnp.float32)
        variables = self.model.init(jax.random.fold_in(self.base_key, 0x1417), dummy, train=False)
        return variables["params"], variables.get("batch_stats", {})

    def apply(self, params, batch_stats, images, *, train: bool, image_size=None, rng=None):
        x = normalize(images, self.mean, self.std)
        if train and self.augment_ops:
            x = augment(x, rng, self.augment_ops)
        x = resize(x, image_size)
        if self.spec["model"] in models.PARAMS_IN_COMPUTE_DTYPE:
            params = params_for_compute(params, self.policy, self.platform)
        variables = {"params": params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
            if train:
                logits, updates = self.model.apply(variables, x, train=True, mutable=["batch_stats"])
                return logits.astype(jnp.float32), updates["batch_stats"]
        logits = self.model.apply(variables, x, train=train)
        return logits.astype(self.policy.output_dtype), batch_stats

    def loss(self, logits, labels):
        targets = jax.nn.one_hot(labels, self.num_classes)
        if self.label_smoothing:
            targets = optax.smooth_labels(targets, self.label_smoothing)
        return optax.softmax_cross_entropy(logits, targets)

    def make_train_step(self, tx: optax.GradientTransformation, image_size=None) -> Callable:
        def train_step(state: TrainState, batch):
            rng = jax.random.fold_in(self.base_key, state.step)

            def loss_fn(params):
                logits, batch_stats = self.apply(params, state.batch_stats, batch["image"], train=True,
                                                 image_size=image_size, rng=rng)
                return self.loss(logits, batch["label"]).mean(), (logits, batch_stats)

            (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            correct = jnp.sum(jnp.argmax(logits, -1) == batch["label"])
            new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                      opt_state=opt_state)
            return new_state, {"loss": loss, "correct": correct}

        return train_step

    def eval_step(self, params, batch_stats, batch, image_size=None):
        """Sums over the valid (mask == 1) examples: loss, top-1 and top-5 correct."""
        logits, _ = self.apply(params, batch_stats, batch["image"], train=False, image_size=image_size)
        labels, mask = batch["label"], batch["mask"]
        top1 = jnp.argmax(logits, -1) == labels
        k = min(5, self.num_classes)
        topk = jnp.any(jax.lax.top_k(logits, k)[1] == labels[:, None], axis=-1)
        return {"loss": jnp.sum(self.loss(logits, labels) * mask), "correct": jnp.sum(top1 * mask),
                "correct_top5": jnp.sum(topk * mask), "count": jnp.sum(mask)}


def multi_step(train_step):
    """Runs ``train_step`` over a leading axis of batches inside one compiled call.

    Unrolled in Python rather than ``lax.scan``: on XLA:CPU a convolution inside
    a while loop runs about 20x slower than the same convolution at top level
    (measured: 178 vs 9 ms per MNIST-CNN step), and unrolling keeps every step
    on the fast path. Compile time grows with the unroll, so keep it small."""
    def run(state, batches):
        metrics = []
        for i in range(batches["label"].shape[0]):
            state, m = train_step(state, jax.tree.map(lambda a: a[i], batches))
            metrics.append(m)
        return state, jax.tree.map(lambda *xs: jnp.stack(xs), *metrics)
    return run


# ------------------------------------------------------------------ data feeding
def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def prefetch(generator, size: int = 2):
    """Runs the host side of the input pipeline one step ahead in a thread."""
    q: queue.Queue = queue.Queue(maxsize=size)
    done = object()

    def worker():
        try:
            for item in generator:
                q.put(item)
        except BaseException as err:  # surfaced in the consumer
            q.put(err)
        q.put(done)

    threading.Thread(target=worker, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def image_size_for_epoch(schedule: dict, epoch: int):
    sizes = schedule.get("image_sizes")
    if not sizes:
        return None
    return sizes[min(epoch * len(sizes) // schedule["epochs"], len(sizes) - 1)]


# ----------------------------------------------------------------------- the loop
def new_epoch_progress() -> dict:
    return {"losses": [], "correct": 0, "seen": 0, "seconds": 0.0}


def new_progress() -> dict:
    return {"curve": [], "evals": [], "train_seconds": 0.0, "eval_seconds": 0.0, "images_seen": 0,
            "time_to_target": None, "time_to_target_end_to_end": None, "epoch": new_epoch_progress()}


def eval_steps_in_epoch(steps_per_epoch: int, evals_per_epoch: int) -> list[int]:
    """Steps into an epoch after which the test set is evaluated: ``evals_per_epoch`` evenly
    spaced points, the last at the epoch's end. (With several steps per compiled call an
    evaluation waits for the call that reaches its step.)"""
    n = max(1, min(evals_per_epoch, steps_per_epoch))
    return sorted({max(1, round(k * steps_per_epoch / n)) for k in range(1, n + 1)})


class Trainer:
    def __init__(self, spec: dict, dataset: PreparedDataset, devices: list, log=print):
        self.spec = spec
        self.schedule = spec["schedule"]
        self.dataset = dataset
        self.log = log
        self.strategy = parallel.Strategy.from_config(spec.get("parallel"))  # dp | fsdp | tp | pp
        self.mesh = parallel.make_mesh(devices, self.strategy)
        self.batch_size = self.schedule["batch_size"]
        if self.batch_size % len(devices):
            raise ValueError(f"batch_size {self.batch_size} is not divisible by the {len(devices)} devices of the "
                             f"mesh; choose a multiple of {len(devices)}")
        self.steps_per_epoch = len(dataset.train) // self.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch_size {self.batch_size} exceeds the {len(dataset.train)} training examples")
        mean, std = dataset.meta["mean"], dataset.meta["std"]
        self.task = Task(spec, dataset.num_classes, dataset.image_shape, mean, std,
                         batch_shards=parallel.axis_size(self.mesh, "data"), platform=devices[0].platform)
        self.tx = make_optimizer(self.schedule, self.steps_per_epoch)
        self.lr_schedule = make_schedule(self.schedule, self.steps_per_epoch)
        self.replicated = NamedSharding(self.mesh, P())
        self._compiled: dict = {}
        self.compile_seconds = 0.0
        self.flops_per_step: dict = {}

    # state ------------------------------------------------------------------
    def _new_state(self) -> TrainState:
        params, batch_stats = self.task.init_variables()
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                          opt_state=self.tx.init(params))

    def init_state(self) -> TrainState:
        return parallel.place_state(self._new_state(), self.mesh, self.strategy)

    def abstract_state(self):
        """Shapes, dtypes and shardings of the state on this mesh: a restore target that
        puts a checkpoint straight onto the devices, whatever topology wrote it."""
        shapes = jax.eval_shape(self._new_state)
        shardings = parallel.state_shardings(shapes, self.mesh, self.strategy)
        return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), shapes, shardings)

    # compiled functions -----------------------------------------------------
    def _to_devices(self, batch, leading: int):
        """Host batch -> global array sharded over ``data``. With several processes
        (multi-host), each loads the whole index list but feeds only its own rows."""
        if jax.process_count() == 1:
            return jax.device_put(batch, parallel.batch_sharding(self.mesh, leading))
        count, index = jax.process_count(), jax.process_index()

        def mine(x):
            rows = x.shape[leading] // count
            return np.take(x, np.arange(index * rows, (index + 1) * rows), axis=leading)

        return parallel.global_batch(jax.tree.map(mine, batch), self.mesh, leading)

    def compiled_chunk(self, state, chunk, image_size):
        """AOT-compiled multi-step function for this chunk length and image size."""
        key = ("train", chunk["label"].shape[0], image_size)
        if key not in self._compiled:
            t0 = time.perf_counter()
            step = parallel.make_train_step(self.task, self.tx, self.mesh, self.strategy, image_size)
            fn = jax.jit(multi_step(step), donate_argnums=0,
                         out_shardings=(parallel.state_shardings(state, self.mesh, self.strategy), self.replicated))
            self._compiled[key] = fn.lower(state, chunk).compile()
            if image_size not in self.flops_per_step:
                one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), chunk)
                cost = jax.jit(step).lower(state, one).cost_analysis()
                self.flops_per_step[image_size] = float(cost.get("flops", 0.0)) if cost else None
            self.compile_seconds += time.perf_counter() - t0
        return self._compiled[key]

    def compiled_eval(self, params, batch_stats, batch, image_size):
        key = ("eval", batch["label"].shape[0], image_size)
        if key not in self._compiled:
            t0 = time.perf_counter()
            fn = jax.jit(lambda p, s, b: self.task.eval_step(p, s, b, image_size))
            self._compiled[key] = fn.lower(params, batch_stats, batch).compile()
            self.compile_seconds += time.perf_counter() - t0
        return self._compiled[key]

    # data ---------------------------------------------------------------------
    def train_chunks(self, epoch: int, start_step: int = 0):
        """Yields (first step in epoch, device-sharded chunk of K batches)."""
        k = self.schedule.get("steps_per_call", 1)
        order = epoch_order(len(self.dataset.train), self.spec.get("seed", 0), epoch)
        bs = self.batch_size
        step = start_step
        while step < self.steps_per_epoch:
            n = min(k, self.steps_per_epoch - step)
            idx = np.sort(order[step * bs:(step + n) * bs].reshape(n, bs), axis=1)
            images, labels = self.dataset.train.gather(idx, epoch=epoch, train=True)
            chunk = {"image": images, "label": labels}
            yield step, self._to_devices(chunk, 1)
            step += n

    def eval_batches(self, split):
        bs = self.schedule.get("eval_batch_size", 200)
        bs = max(len(self.mesh.devices.flat), bs - bs % len(self.mesh.devices.flat))
        n = len(split)
        for start in range(0, n, bs):
            images, labels = split.gather(np.arange(start, min(start + bs, n)))
            images, labels = np.asarray(images), np.asarray(labels)
            mask = np.ones(len(labels), np.float32)
            if len(labels) < bs:  # pad the last batch: one compiled shape
                pad = bs - len(labels)
                images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
                labels = np.concatenate([labels, np.zeros(pad, labels.dtype)])
                mask = np.concatenate([mask, np.zeros(pad, np.float32)])
            yield self._to_devices({"image": images, "label": labels, "mask": mask}, 0)

    # evaluation -----------------------------------------------------------------
    def evaluate(self, params, batch_stats, split, image_size=None) -> dict:
        totals = None
        for batch in prefetch(self.eval_batches(split)):
            out = self.compiled_eval(params, batch_stats, batch, image_size)(params, batch_stats, batch)
            totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
        totals = jax.device_get(totals)
        count = float(totals["count"])
        return {"loss": float(totals["loss"]) / count, "accuracy": float(totals["correct"]) / count,
                "top5_accuracy": float(totals["correct_top5"]) / count, "examples": int(count)}

    # training ---------------------------------------------------------------------
    def fit(self, state: TrainState | None = None, metrics_path: Path | None = None,
            eval_each_epoch: bool = True, progress: dict | None = None,
            checkpoint: Callable | None = None, checkpoint_every_steps: int = 0) -> tuple[TrainState, dict]:
        """Trains to the configured number of epochs, from ``state`` if given.

        ``progress`` carries what a resumed run needs besides the state (the curve
        so far and the partial epoch's accumulators); ``checkpoint(state, progress)``
        is called at chunk boundaries every ``checkpoint_every_steps`` steps and at
        the end of every epoch, so a killed run resumes bit for bit."""
        state = self.init_state() if state is None else state
        progress = new_progress() if progress is None else progress
        epochs = self.schedule["epochs"]
        start_step = int(jax.device_get(state.step))
        first_epoch = start_step // self.steps_per_epoch
        target = self.spec.get("target_accuracy")
        wall_start = time.perf_counter()
        if metrics_path:  # rewritten from the progress record, so a resumed run never duplicates lines
            Path(metrics_path).write_text("".join(json.dumps(r) + "\n" for r in progress["curve"]))
        last_checkpoint = start_step
        eval_points = eval_steps_in_epoch(self.steps_per_epoch, self.schedule.get("evals_per_epoch", 1))

        def evaluate_now(state, train_seconds: float) -> dict:
            """Evaluates on the test split, records it in progress["evals"] and the time to target."""
            t_eval, compile_before_eval = time.perf_counter(), self.compile_seconds
            test = self.evaluate(state.params, state.batch_stats, self.dataset.test, self.eval_image_size())
            # the first evaluation's compilation is counted once, in compile_seconds
            progress["eval_seconds"] = (progress.get("eval_seconds", 0.0) + time.perf_counter() - t_eval
                                        - (self.compile_seconds - compile_before_eval))
            step = int(jax.device_get(state.step))
            progress.setdefault("evals", []).append(
                {"step": step, "epoch": step / self.steps_per_epoch, "elapsed_train_seconds": train_seconds,
                 "test_loss": test["loss"], "test_accuracy": test["accuracy"]})
            if target and progress["time_to_target"] is None and test["accuracy"] >= target:
                progress["time_to_target"] = train_seconds
                # what a user waits: training + evaluations so far + this process's compilation
                progress["time_to_target_end_to_end"] = train_seconds + progress["eval_seconds"] + self.compile_seconds
            return test

        for epoch in range(first_epoch, epochs):
            image_size = image_size_for_epoch(self.schedule, epoch)
            in_epoch = start_step - epoch * self.steps_per_epoch if epoch == first_epoch else 0
            part = progress["epoch"] if in_epoch else new_epoch_progress()
            losses, correct = [], 0
            # evaluation points inside this epoch still ahead (the epoch's end is evaluated below)
            mid_epoch_evals = [s for s in eval_points[:-1] if s > in_epoch]
            compile_before = self.compile_seconds
            t0 = time.perf_counter()

            def flush():  # pulls the epoch's metrics so far to the host (a sync point)
                nonlocal losses, correct
                part["losses"] += [float(x) for l in jax.device_get(losses) for x in np.atleast_1d(l)]
                part["correct"] += int(jax.device_get(correct))
                losses, correct = [], 0
                now = time.perf_counter()
                part["seconds"] += now - t0 - (self.compile_seconds - compile_before)
                return now

            for first, chunk in prefetch(self.train_chunks(epoch, in_epoch)):
                fn = self.compiled_chunk(state, chunk, image_size)
                state, metrics = fn(state, chunk)
                losses.append(metrics["loss"])
                correct = correct + metrics["correct"].sum()
                part["seen"] += chunk["label"].size
                done = first + chunk["label"].shape[0]  # steps into the epoch, counted on the host (no sync)
                if eval_each_epoch and mid_epoch_evals and mid_epoch_evals[0] <= done:
                    mid_epoch_evals = [s for s in mid_epoch_evals if s > done]
                    t0, compile_before = flush(), self.compile_seconds
                    self._check_finite(part["losses"], epoch, epoch * self.steps_per_epoch)
                    test = evaluate_now(state, progress["train_seconds"] + part["seconds"])
                    self.log(f"[{self.spec.get('name', '')}] epoch {progress['evals'][-1]['epoch']:>6.2f}/{epochs}  "
                             f"test_loss {test['loss']:.4f}  test_acc {test['accuracy']:.4f}")
                    t0, compile_before = time.perf_counter(), self.compile_seconds
                if checkpoint and checkpoint_every_steps:
                    step = int(jax.device_get(state.step))
                    if step - last_checkpoint >= checkpoint_every_steps and step % self.steps_per_epoch:
                        t0, compile_before = flush(), self.compile_seconds
                        self._check_finite(part["losses"], epoch, epoch * self.steps_per_epoch)
                        progress["epoch"] = part
                        checkpoint(state, progress)
                        last_checkpoint = step
            jax.block_until_ready(state)
            flush()  # throughput counts input feeding (it overlaps) but not compilation
            self._check_finite(part["losses"], epoch, epoch * self.steps_per_epoch)
            seconds = max(part["seconds"], 1e-9)
            progress["train_seconds"] += seconds
            progress["images_seen"] += part["seen"]
            step = int(jax.device_get(state.step))
            record = {"epoch": epoch + 1, "step": step,
                      "train_loss": float(np.mean(part["losses"])),
                      "train_accuracy": part["correct"] / part["seen"],
                      "images_per_s": part["seen"] / seconds, "epoch_seconds": seconds,
                      "image_size": image_size or self.dataset.image_shape[0],
                      "lr": float(self.lr_schedule(max(step - 1, 0)))}
            if eval_each_epoch:
                test = evaluate_now(state, progress["train_seconds"])
                record.update(test_loss=test["loss"], test_accuracy=test["accuracy"])
            record["elapsed_train_seconds"] = progress["train_seconds"]
            progress["curve"].append(record)
            progress["epoch"] = new_epoch_progress()
            self.log(f"[{self.spec.get('name', '')}] " + self._progress_line(record, epochs))
            if metrics_path:
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
            if checkpoint and epoch + 1 < epochs:
                checkpoint(state, progress)
                last_checkpoint = step
        flops = self.flops_per_step.get(image_size_for_epoch(self.schedule, epochs - 1))
        total_steps = int(jax.device_get(state.step))
        summary = {
            "epochs": epochs, "steps": total_steps, "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.batch_size,
            "train_seconds": progress["train_seconds"], "compile_seconds": self.compile_seconds,
            "wall_seconds": time.perf_counter() - wall_start,
            "images_per_s": progress["images_seen"] / progress["train_seconds"] if progress["train_seconds"] else None,
            "flops_per_step": flops,
            "total_flops": flops * total_steps if flops else None,
            "time_to_target_seconds": progress["time_to_target"],
            "time_to_target_end_to_end_seconds": progress.get("time_to_target_end_to_end"),
            "curve": progress["curve"],
            "evals": progress.get("evals", []),
        }
        return state, summary

    @staticmethod
    def _check_finite(losses, epoch, first_step):
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            raise DivergenceError(f"loss became {losses[bad[0]]} at step {first_step + int(bad[0]) + 1} (epoch "
                                  f"{epoch + 1}); lower the learning rate or check the data")

    def eval_image_size(self):
        """Evaluation runs at the last (largest) progressive-resizing size, else the native one."""
        sizes = self.schedule.get("image_sizes")
        return sizes[-1] if sizes else None

    @staticmethod
    def _progress_line(r, epochs):
        line = (f"epoch {r['epoch']:>3}/{epochs}  loss {r['train_loss']:.4f}  acc {r['train_accuracy']:.4f}  "
                f"{r['images_per_s']:,.0f} img/s")
        if "test_accuracy" in r:
            line += f"  test_loss {r['test_loss']:.4f}  test_acc {r['test_accuracy']:.4f}"
        return line


def log_to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
