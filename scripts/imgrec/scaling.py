"""Scaling sweeps: throughput against device count, per model and strategy.

Weak scaling: the batch per device is fixed, so n devices step through n times
the images; ideal throughput is n x the 1-device throughput and scaling
efficiency is measured / ideal. JAX fixes its device count when it starts, so
every point runs in its own process: with ``JAX_NUM_CPU_DEVICES=n`` on a CPU
host (virtual devices that share the host's cores: such points are marked
``emulated`` and say nothing about a real interconnect), or on the first n
accelerators where they exist.

    python scripts/measure_scaling.py --name cpu --devices 1 2 4 8
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]

# Small configs that compile and step in seconds on a CPU core.
MODELS = {
    "resnet9-w16": {"model": "resnet9", "model_args": {"width": 16}, "image_shape": [32, 32, 3]},
    "vit-tiny": {"model": "vit_ti16", "vit": {"width": 192, "num_layers": 4, "num_heads": 4, "mlp_dim": 768,
                                              "patch_size": 8}, "image_shape": [32, 32, 3]},
}
STRATEGIES = {  # name -> strategy for n devices (tp/pp use up to 2 devices for model/stage)
    "dp": lambda n: {"name": "dp"},
    "fsdp": lambda n: {"name": "fsdp"},
    "tp": lambda n: {"name": "tp", "model": min(2, n)},
    "pp": lambda n: {"name": "pp", "stage": min(2, n), "microbatches": 4},
}
DEFAULT_PAIRS = [("resnet9-w16", "dp"), ("resnet9-w16", "fsdp"), ("vit-tiny", "dp"), ("vit-tiny", "tp"),
                 ("vit-tiny", "pp")]


def build_task(model_cfg: dict, num_classes: int = 10):
    import jax

    from imgrec.train import Task

    spec = {"model": model_cfg["model"], "model_args": model_cfg.get("model_args", {}),
            "precision": model_cfg.get("precision", "fp32"), "seed": 0,
            "schedule": {"optimizer": "momentum", "learning_rate": 0.01, "batch_size": 1, "epochs": 1}}
    shape = model_cfg["image_shape"]
    task = Task(spec, num_classes, shape, (127.0,) * shape[-1], (64.0,) * shape[-1], platform=jax.default_backend())
    if "vit" in model_cfg:  # a ViT shape the registry's fixed sizes do not offer
        from imgrec.models.vit import ViT
        task.model = ViT(num_classes=num_classes, dtype=task.policy.compute_dtype, **model_cfg["vit"])
    return task


def measure(model: str, strategy: str, devices: int, per_device_batch: int = 16, steps: int = 5,
            warmup: int = 2, requested: str | None = None, peak_flops: float | None = None) -> dict:
    """One point, in this process, on the first ``devices`` JAX devices."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P

    from imgrec import parallel
    from imgrec.optim import make_optimizer
    from imgrec.train import TrainState

    available = jax.devices()
    if len(available) < devices:
        return {"model": model, "strategy": strategy, "devices": devices, "skipped":
                f"only {len(available)} {available[0].platform} device(s)"}
    cfg, strat = MODELS[model], parallel.Strategy.from_config(STRATEGIES[strategy](devices))
    task = build_task(cfg)
    tx = make_optimizer(task.spec["schedule"], 1)
    mesh = parallel.make_mesh(available[:devices], strat)

    def init():
        params, batch_stats = task.init_variables()
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                          opt_state=tx.init(params))
    state = parallel.init_sharded(init, mesh, strat)
    n = per_device_batch * devices
    rng = np.random.default_rng(0)
    batch = jax.device_put({"image": rng.integers(0, 256, (n, *cfg["image_shape"]), dtype=np.uint8),
                            "label": rng.integers(0, 10, (n,)).astype(np.int32)}, parallel.batch_sharding(mesh))
    step = jax.jit(parallel.make_train_step(task, tx, mesh, strat), donate_argnums=0,
                   out_shardings=(parallel.state_shardings(state, mesh, strat), NamedSharding(mesh, P())))
    # Model FLOPs: the plain one-device step's, lowered (not compiled) from shapes; the same for
    # every strategy (a sharded lowering counts a shard_map body once, not per device).
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), (state, batch))
    cost = jax.jit(task.make_train_step(tx)).lower(*abstract).cost_analysis()
    t0 = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        state, metrics = compiled(state, batch)
    jax.block_until_ready(state)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        state, metrics = compiled(state, batch)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t)
    step_s = statistics.median(times)
    flops = float(cost.get("flops", 0.0)) if cost else None
    platform = available[0].platform
    return {
        "model": model, "strategy": strategy, "parallel": {**vars(strat)}, "mesh": dict(mesh.shape),
        "devices": devices, "per_device_batch": per_device_batch, "global_batch": n,
        "step_time_s": step_s, "step_times_s": times, "images_per_s": n / step_s, "compile_s": compile_s,
        "flops_per_step": flops, "requested": requested or platform, "actual": platform,
        "device_kind": available[0].device_kind,
        "emulated": platform == "cpu" and devices > 1, "host_cpus": os.cpu_count(),
        "utilization": flops / step_s / (peak_flops * devices) if flops and peak_flops else None,
        "loss": float(metrics["loss"]),
    }


def run_point(model: str, strategy: str, devices: int, *, platform: str = "cpu", timeout: int = 600,
              **kw) -> dict:
    """``measure`` in a fresh process (a CPU host gets n virtual devices)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")])}
    if platform == "cpu":
        env.update(JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES=str(devices))
    args = json.dumps({"model": model, "strategy": strategy, "devices": devices, **kw})
    proc = subprocess.run([sys.executable, "-m", "imgrec.scaling", args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"scaling point {model}/{strategy}/{devices} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def add_efficiency(points: list[dict]) -> list[dict]:
    """Scaling efficiency: throughput / (devices x the 1-device throughput of the same model and strategy)."""
    base = {(p["model"], p["strategy"]): p["images_per_s"] for p in points
            if p.get("devices") == 1 and "images_per_s" in p}
    for p in points:
        b = base.get((p["model"], p["strategy"]))
        if "images_per_s" in p and b:
            p["ideal_images_per_s"] = b * p["devices"]
            p["scaling_efficiency"] = p["images_per_s"] / p["ideal_images_per_s"]
    return points


def sweep(pairs=DEFAULT_PAIRS, device_counts=(1, 2, 4, 8), *, platform: str = "cpu", log=print, **kw) -> dict:
    points = []
    for model, strategy in pairs:
        for n in device_counts:
            p = run_point(model, strategy, n, platform=platform, **kw)
            log(f"{model:>12} {strategy:>4} x{n}: " + (p.get("skipped") or
                f"{p['images_per_s']:8.1f} img/s  step {1e3 * p['step_time_s']:7.1f} ms"
                f"{'  (emulated)' if p['emulated'] else ''}"))
            points.append(p)
    return {"kind": "weak scaling (fixed batch per device)", "platform": platform,
            "note": ("emulated points run on virtual CPU devices that share this host's "
                     f"{os.cpu_count()} cores: they show overheads, not a real interconnect"
                     if platform == "cpu" else ""),
            "points": add_efficiency(points)}


def write(result: dict, name: str, out_dir="results/scaling") -> Path:
    path = Path(out_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


if __name__ == "__main__":  # worker: python -m imgrec.scaling '{"model": ..., "strategy": ..., "devices": n}'
    print(json.dumps(measure(**json.loads(sys.argv[1]))))
