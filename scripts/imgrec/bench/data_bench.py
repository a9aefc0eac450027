"""Input pipeline and workflow overhead: is anything but the step the bottleneck?

``data_loading``: writes a synthetic prepared dataset (``imgrec.data.write_prepared``)
to a temporary directory, loads it memory-mapped (``load_prepared``) and times the
trainer's own batch feeding (``Trainer.train_chunks``: shuffled, sorted gather of
``steps_per_call`` batches from the page cache plus ``device_put``) over whole epochs.

``snakemake_overhead``: times ``snakemake -n`` (dry run; the talk's full config when
``config/talk.yaml`` exists) and, only where the dry run finds nothing to do, a
no-op rebuild. Both run with ``--nolock --ignore-incomplete`` so they never touch another run's
lock or stumble on its files in progress.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from imgrec.bench import median

REPO_ROOT = Path(__file__).resolve().parents[3]


def data_loading(model: str = "mnist_cnn", image_shape=(28, 28, 1), n_train: int = 20480, batch_size: int = 128,
                 steps_per_call: int | None = None, repeats: int = 3) -> dict:
    import jax

    from imgrec.bench.jax_bench import bench_spec, synthetic_dataset
    from imgrec.data import Split, load_prepared, write_prepared
    from imgrec.train import Trainer

    mem = synthetic_dataset(tuple(image_shape), n_train, n_test=batch_size)
    with tempfile.TemporaryDirectory(prefix="imgrec-bench-data-") as tmp:
        write_prepared(Path(tmp) / "prepared", {"train": mem.train, "test": mem.test},
                       source={"name": "synthetic-bench"})
        ds = load_prepared(Path(tmp) / "prepared")
        spec = bench_spec(model, "fp32", batch_size, steps_per_call or 1)
        if steps_per_call is None:
            spec["schedule"].pop("steps_per_call")
        trainer = Trainer(spec, ds, jax.devices("cpu")[:1], log=lambda *_: None)
        rates = []
        for epoch in range(repeats + 1):
            t0 = time.perf_counter()
            seen = 0
            for _, chunk in trainer.train_chunks(epoch):
                seen += chunk["label"].size
            jax.block_until_ready(chunk)
            if epoch:  # epoch 0 warms the page cache
                rates.append(seen / (time.perf_counter() - t0))
    return {"images_per_s": median(rates), "images_per_s_all": [round(r) for r in rates], "n_train": n_train,
            "batch_size": batch_size, "image_shape": list(image_shape),
            "steps_per_call": trainer.schedule.get("steps_per_call", 1),
            "what": "Trainer.train_chunks over a memory-mapped prepared dataset (gather + device_put)"}


def _time(cmd: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t0, proc


def snakemake_overhead(repeats: int = 3, timeout: float = 120.0) -> dict:
    snakemake = Path(sys.executable).parent / "snakemake"
    if not snakemake.exists() or not (REPO_ROOT / "Snakefile").exists():
        return {"skipped": "no snakemake executable next to this python or no Snakefile"}
    talk = REPO_ROOT / "config" / "talk.yaml"
    base = [str(snakemake), "--nolock", "--ignore-incomplete"]
    if talk.exists():
        base += ["--configfile", str(talk.relative_to(REPO_ROOT))]
    out = {"config": "config/talk.yaml" if talk.exists() else "config/config.yaml (talk.yaml absent)"}
    dry = []
    for _ in range(repeats):
        dt, proc = _time(base + ["-n"], timeout)
        if proc.returncode:
            return {**out, "error": f"snakemake -n failed (exit {proc.returncode}): {(proc.stdout + proc.stderr).strip()[-400:]}"}
        dry.append(dt)
    out["dry_run_seconds"] = median(dry)
    out["dry_run_seconds_all"] = [round(d, 3) for d in dry]
    text = proc.stdout + proc.stderr
    up_to_date = "Nothing to be done" in text or not text.strip()
    out["up_to_date"] = up_to_date
    if up_to_date:
        noop = []
        for _ in range(repeats):
            dt, proc = _time(base + ["--cores", "1"], timeout)
            noop.append(dt)
        out["noop_rebuild_seconds"] = median(noop)
        out["noop_rebuild_seconds_all"] = [round(d, 3) for d in noop]
    else:
        out["noop_rebuild_seconds"] = None
        out["noop_rebuild_note"] = "outputs not all built here: the dry run has jobs to do, so a no-op rebuild was not timed"
    return out
