"""Times the pipeline's OWN training step: ``imgrec.train.Trainer`` / ``Task``
on synthetic uint8 data (the same compiled multi-step call ``Trainer.fit`` runs).

One ``JaxTrainerBench`` per (model, precision, image shape, batch): ``setup()``
compiles (ahead of time, through ``Trainer.compiled_chunk``) and warms up;
``run_once()`` times ``calls`` compiled calls of ``steps_per_call`` steps each
on a device-resident chunk and returns images/s. FLOPs per step are XLA's own
count (``Trainer.flops_per_step``, from ``cost_analysis`` of one step).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

SHAPES = {"mnist_cnn": (28, 28, 1), "cifar_cnn": (32, 32, 3)}


def synthetic_dataset(image_shape, n_train: int, n_test: int = 256, num_classes: int = 10, seed: int = 0):
    from imgrec.data import PreparedDataset, Split

    rng = np.random.default_rng(seed)
    def split(n):
        return Split(rng.integers(0, 256, (n, *image_shape), dtype=np.uint8),
                     rng.integers(0, num_classes, n).astype(np.int32))
    c = image_shape[-1]
    meta = {"num_classes": num_classes, "image_shape": list(image_shape), "mean": [127.5] * c,
            "std": [73.9] * c, "source": {"name": "synthetic-bench"}}
    return PreparedDataset(Path("<memory>"), meta, split(n_train), split(n_test))


def bench_spec(model: str, precision: str, batch_size: int, steps_per_call: int) -> dict:
    return {"name": f"bench_{model}_{precision}", "model": model, "precision": precision, "seed": 0,
            "model_args": {}, "augment": [],
            "schedule": {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": batch_size, "epochs": 1,
                         "steps_per_call": steps_per_call, "lr_schedule": "constant", "label_smoothing": 0.0,
                         "weight_decay": 0.0, "warmup_epochs": 0}}


class JaxTrainerBench:
    framework = "jax"

    def __init__(self, model: str, precision: str = "fp32", batch_size: int = 128, steps_per_call: int | None = None,
                 image_shape=None, calls: int = 4, warmup_calls: int = 1):
        self.model, self.precision, self.batch_size = model, precision, batch_size
        self.image_shape = tuple(image_shape or SHAPES[model])
        self.steps_per_call_override = steps_per_call
        self.calls, self.warmup_calls = calls, warmup_calls

    def setup(self) -> dict:
        import jax

        from imgrec.train import Trainer

        spec = bench_spec(self.model, self.precision, self.batch_size, self.steps_per_call_override or 1)
        if self.steps_per_call_override is None:  # the trainer's own default
            spec["schedule"].pop("steps_per_call")
        self.steps_per_call = spec["schedule"].get("steps_per_call", 1)
        n_train = self.batch_size * self.steps_per_call
        self.dataset = synthetic_dataset(self.image_shape, n_train)
        self.trainer = Trainer(spec, self.dataset, jax.devices("cpu")[:1], log=lambda *_: None)
        t0 = time.perf_counter()
        self.state = self.trainer.init_state()
        _, self.chunk = next(iter(self.trainer.train_chunks(0)))
        self.fn = self.trainer.compiled_chunk(self.state, self.chunk, None)
        self.compile_seconds = time.perf_counter() - t0
        self.flops_per_step = self.trainer.flops_per_step.get(None)
        for _ in range(self.warmup_calls):
            self._run(1)
        return self.info()

    def _run(self, calls: int) -> float:
        import jax

        t0 = time.perf_counter()
        for _ in range(calls):
            self.state, metrics = self.fn(self.state, self.chunk)
        jax.block_until_ready((self.state, metrics))
        dt = time.perf_counter() - t0
        if not np.all(np.isfinite(np.asarray(metrics["loss"]))):
            raise FloatingPointError(f"{self.model} {self.precision}: non-finite loss in the benchmark")
        return dt

    def run_once(self) -> float:
        """Images per second over ``calls`` compiled calls."""
        dt = self._run(self.calls)
        return self.calls * self.steps_per_call * self.batch_size / dt

    def info(self) -> dict:
        return {"framework": "jax", "model": self.model, "precision": self.precision, "batch_size": self.batch_size,
                "image_shape": list(self.image_shape), "steps_per_call": self.steps_per_call,
                "steps_per_repeat": self.calls * self.steps_per_call,
                "compile_seconds": round(self.compile_seconds, 3), "xla_flops_per_step": self.flops_per_step,
                "xla_flops_per_image": self.flops_per_step / self.batch_size if self.flops_per_step else None}


if __name__ == "__main__":  # pragma: no cover
    import sys
    b = JaxTrainerBench(sys.argv[1] if len(sys.argv) > 1 else "mnist_cnn", sys.argv[2] if len(sys.argv) > 2 else "fp32",
                        steps_per_call=int(sys.argv[3]) if len(sys.argv) > 3 else None)
    print(b.setup())
    print([round(b.run_once()) for _ in range(5)])
