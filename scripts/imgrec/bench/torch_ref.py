"""The talk's two CNNs in PyTorch: the reference the JAX trainer is measured against.

Same layers, padding (SAME = 1 for 3x3 stride 1), parameter counts and shapes
(up to PyTorch's [out, in] storage of Linear weights and OIHW conv kernels),
Adam(lr=1e-3), cross-entropy on uint8 images normalized inside the step, as
in the JAX trainer. The flatten before the first Dense is in H, W, C order
(as Flax's NHWC reshape), which is free for channels_last tensors.

Configurations: ``eager`` (NCHW), ``eager_cl`` (channels_last memory format),
``compile_cl`` (``torch.compile`` of the whole training step, optimizer included)
and ``compile_model_cl`` (``torch.compile`` of the model only), both channels_last,
the compiled ones only where inductor works on this machine. ``best_config`` picks
the fastest. Benchmark-only: PyTorch is never needed by the pipeline.
"""

from __future__ import annotations

import time

import numpy as np

SHAPES = {"mnist_cnn": (28, 28, 1), "cifar_cnn": (32, 32, 3)}
GROUPS = {"mnist_cnn": (2,), "cifar_cnn": (2, 2)}
CONFIGS = ("eager", "eager_cl", "compile_cl", "compile_model_cl")


def build_model(name: str, image_shape, num_classes: int = 10, features: int = 32, hidden: int = 512):
    import torch
    from torch import nn

    class Flatten(nn.Module):
        def forward(self, x):  # NCHW logical -> NHWC order, as Flax flattens
            return x.permute(0, 2, 3, 1).flatten(1)

    h, w, c = image_shape
    layers, cin = [], c
    for n_convs in GROUPS[name]:
        for _ in range(n_convs):
            layers += [nn.Conv2d(cin, features, 3, padding=1), nn.ReLU()]
            cin = features
        layers.append(nn.MaxPool2d(2, 2))
        h, w = h // 2, w // 2
    layers += [Flatten(), nn.Linear(h * w * features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
               nn.Linear(hidden, num_classes)]
    torch.manual_seed(0)
    return nn.Sequential(*layers)


def param_shapes(model) -> list[tuple]:
    return [tuple(p.shape) for p in model.parameters()]


class TorchBench:
    framework = "torch"

    def __init__(self, model: str, config: str = "eager_cl", precision: str = "fp32", batch_size: int = 128,
                 image_shape=None, steps: int = 8, warmup_steps: int = 3, threads: int | None = None):
        if precision not in ("fp32", "bf16"):
            raise ValueError(precision)
        self.model_name, self.config, self.precision, self.batch_size = model, config, precision, batch_size
        self.image_shape = tuple(image_shape or SHAPES[model])
        self.steps, self.warmup_steps, self.threads = steps, warmup_steps, threads

    def setup(self) -> dict:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        cl = self.config.endswith("_cl")
        fmt = torch.channels_last if cl else torch.contiguous_format
        self.net = build_model(self.model_name, self.image_shape).to(memory_format=fmt)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        net = torch.compile(self.net) if self.config.startswith("compile_model") else self.net
        rng = np.random.default_rng(0)
        h, w, c = self.image_shape
        images = torch.from_numpy(rng.integers(0, 256, (self.batch_size, h, w, c), dtype=np.uint8))
        self.images = images.permute(0, 3, 1, 2)  # NHWC storage = channels_last NCHW view
        if not cl:
            self.images = self.images.contiguous()
        self.labels = torch.from_numpy(rng.integers(0, 10, self.batch_size).astype(np.int64))
        mean, std = 127.5, 73.9
        opt, loss_fn = self.opt, torch.nn.CrossEntropyLoss()
        amp = self.precision == "bf16"

        def step(images, labels):
            x = (images.float() - mean) / std
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                logits = net(x)
            loss = loss_fn(logits.float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        self.step = step
        if self.config.startswith("compile_cl"):
            self.step = torch.compile(step)
        t0 = time.perf_counter()
        for _ in range(self.warmup_steps):
            loss = self.step(self.images, self.labels)
        if not torch.isfinite(loss):
            raise FloatingPointError("torch reference: non-finite loss")
        self.compile_seconds = time.perf_counter() - t0
        return self.info()

    def run_once(self) -> float:
        t0 = time.perf_counter()
        for _ in range(self.steps):
            loss = self.step(self.images, self.labels)
        float(loss.detach())
        return self.steps * self.batch_size / (time.perf_counter() - t0)

    def info(self) -> dict:
        import torch
        return {"framework": "torch", "model": self.model_name, "config": self.config, "precision": self.precision,
                "batch_size": self.batch_size, "image_shape": list(self.image_shape), "steps_per_repeat": self.steps,
                "threads": torch.get_num_threads(), "warmup_seconds": round(self.compile_seconds, 3),
                "param_shapes": param_shapes(self.net)}


def available_configs(model: str, image_shape=None, batch_size: int = 8, log=lambda *_: None) -> list[str]:
    """The configurations that run here (torch.compile needs a working C++ toolchain)."""
    ok = []
    for config in CONFIGS:
        try:
            TorchBench(model, config, batch_size=batch_size, image_shape=image_shape, steps=1, warmup_steps=1).setup()
            ok.append(config)
        except Exception as err:  # noqa: BLE001 - a config that does not work here is skipped, with the reason
            log(f"torch config {config} unavailable: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
    return ok


if __name__ == "__main__":  # pragma: no cover
    import sys
    model = sys.argv[1] if len(sys.argv) > 1 else "mnist_cnn"
    for cfg in sys.argv[2:] or CONFIGS:
        b = TorchBench(model, cfg)
        print(cfg, b.setup()["warmup_seconds"], [round(b.run_once()) for _ in range(5)])
