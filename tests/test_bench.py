"""The benchmark entry point runs end to end (CI-sized) and writes the documented structure.

No timing assertions: the figures depend on the machine and its load."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HAS_TORCH = importlib.util.find_spec("torch") is not None


def run_benchmark(tmp_path, *extra):
    out_json, out_md = tmp_path / "cpu.json", tmp_path / "cpu.md"
    cmd = [sys.executable, str(REPO / "scripts/benchmark.py"), "--quick", "--models", "mnist_cnn",
           "--precisions", "fp32,bf16", "--batch-size", "8", "--repeats", "1", "--peak-size", "128",
           "--skip-snakemake", "--out-json", str(out_json), "--out-md", str(out_md), *extra]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out_json.read_text()), out_md.read_text()


def test_help():
    proc = subprocess.run([sys.executable, str(REPO / "scripts/benchmark.py"), "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "--quick" in proc.stdout


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (envs/bench.txt) not installed")
def test_quick_benchmark_structure(tmp_path):
    out, md = run_benchmark(tmp_path, "--torch-configs", "eager_cl")
    assert set(out) >= {"machine", "peak_gflops", "trainer", "data_loading", "command", "args"}
    assert out["machine"]["versions"]["jax"] and out["machine"]["logical_cpus"] >= 1
    for dt in ("fp32", "bf16"):
        assert out["peak_gflops"][dt]["gflops_median"] > 0
    rows = {(r["model"], r["precision"]): r for r in out["trainer"]}
    assert set(rows) == {("mnist_cnn", "fp32"), ("mnist_cnn", "bf16")}
    for r in rows.values():
        assert r["batch_size"] == 8 and r["image_shape"] == [28, 28, 1]
        assert r["jax_images_per_s"] > 0 and len(r["jax_images_per_s_all"]) == 1
        assert r["torch_best_config"] == "eager_cl" and r["torch_best_images_per_s"] > 0
        assert r["ratio_jax_over_torch_best"] > 0
        assert r["xla_flops_per_step"] > 0 and 0 < r["mfu_vs_fp32_peak"]
        assert r["jax"]["steps_per_call"] >= 1
    assert rows[("mnist_cnn", "fp32")]["speed_vs_fp32"] == 1.0
    # the PyTorch reference has the talk's layers and parameter counts
    shapes = rows[("mnist_cnn", "fp32")]["torch_param_shapes"]
    assert [list(s) for s in shapes] == [[32, 1, 3, 3], [32], [32, 32, 3, 3], [32], [512, 6272], [512],
                                         [512, 512], [512], [10, 512], [10]]
    d = out["data_loading"]
    assert d["images_per_s"] > 0 and d["ratio_loading_over_trainer"] > 0
    assert "| mnist_cnn | fp32 |" in md and "JAX / PyTorch" in md


def test_quick_benchmark_without_torch(tmp_path):
    out, md = run_benchmark(tmp_path, "--torch-configs", "none", "--precisions", "fp32", "--skip-data")
    (row,) = out["trainer"]
    assert row["torch_best_config"] is None and row["ratio_jax_over_torch_best"] is None
    assert row["jax_images_per_s"] > 0 and "data_loading" not in out
    assert "| mnist_cnn | fp32 | 8 |" in md


def test_torch_reference_matches_flax_parameter_counts():
    pytest.importorskip("torch")
    import jax
    import numpy as np

    sys.path.insert(0, str(REPO / "scripts"))
    from imgrec.bench.torch_ref import build_model
    from imgrec.models import create_model

    for name, shape in (("mnist_cnn", (28, 28, 1)), ("cifar_cnn", (32, 32, 3))):
        flax_params = create_model(name, num_classes=10, dtype=jax.numpy.float32).init(
            jax.random.key(0), np.zeros((1, *shape), np.float32))["params"]
        flax_shapes = sorted(tuple(sorted(p.shape)) for p in jax.tree.leaves(flax_params))
        torch_shapes = sorted(tuple(sorted(p.shape)) for p in build_model(name, shape).parameters())
        assert len(flax_shapes) == len(torch_shapes)
        assert [np.prod(s) for s in flax_shapes] == [np.prod(s) for s in torch_shapes]
