"""dp, fsdp, tp and pp on 8 virtual CPU devices against one device.

The multi-device runs happen in subprocesses (JAX fixes its device count when
it starts; a fresh process is sure to get 8 whatever else this session
started): two processes run ``imgrec.parallel.selfcheck`` side by side, one for
dp/fsdp/tp (2-block ViT) and one for pp (4 blocks over 4 stages).

Tolerances (float32; the differences are summation order only, measured at
~1e-7): loss and every gradient within 1e-5 absolute (loss ~2.4, largest
gradient ~0.3), parameters and momentum after 2 SGD-momentum steps within 1e-5
(the steps move parameters by up to ~0.05).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from imgrec.parallel.mesh import Strategy, mesh_shape  # noqa: E402
from imgrec.parallel.sharding import leaf_spec  # noqa: E402

TOL = 1e-5
GROUPS = (("dp", "fsdp", "tp", "--layers", "2"), ("pp", "--layers", "4"))  # pp: one block per stage


@pytest.fixture(scope="module")
def results():
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "8", "PYTHONPATH": str(ROOT / "scripts")}
    procs = [subprocess.Popen([sys.executable, "-m", "imgrec.parallel.selfcheck", *group], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for group in GROUPS]
    out = {}
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-4000:]
        out.update(json.loads(stdout))
    return out


@pytest.mark.parametrize("name", ["dp", "fsdp", "tp", "pp"])
def test_matches_one_device(results, name):
    r = results[name]
    assert results["devices"] == 8
    assert r["loss_diff"] <= TOL, r
    assert r["grad_max_diff"] <= TOL, r
    assert r["params_max_diff_after_steps"] <= TOL, r
    assert r["opt_state_max_diff_after_steps"] <= TOL, r
    assert results["reference"]["max_abs_param_change"] > 100 * TOL  # the steps did move the parameters


def test_layouts(results):
    assert results["dp"]["mesh"] == {"data": 8, "stage": 1, "model": 1} and results["dp"]["sharded_leaves"] == 0
    assert results["fsdp"]["sharded_leaves"] >= results["fsdp"]["leaves"] - 8  # all but a few scalars/odd sizes
    assert results["tp"]["mesh"] == {"data": 2, "stage": 1, "model": 4}
    # per block q/k/v kernels and biases, out kernel, fc1 kernel and bias, fc2 kernel: 10; x 2 blocks;
    # params + momentum
    assert results["tp"]["sharded_leaves"] == 2 * 2 * 10
    assert results["pp"]["mesh"] == {"data": 2, "stage": 4, "model": 1}


def _mesh(**sizes):
    return SimpleNamespace(shape={"data": 1, "stage": 1, "model": 1, **sizes})


def test_tp_rules():
    tp, mesh = Strategy("tp", model=4), _mesh(data=2, model=4)
    spec = lambda path, shape: tuple(leaf_spec(path, shape, mesh, tp))  # noqa: E731
    assert spec("params/blocks_3/attn/query/kernel", (192, 4, 48)) == (None, "model", None)
    assert spec("opt_state/0/trace/blocks_3/attn/value/bias", (4, 48)) == ("model", None)
    assert spec("params/blocks_0/attn/out/kernel", (4, 48, 192)) == ("model", None, None)
    assert spec("params/blocks_0/attn/out/bias", (192,)) == (None,)
    assert spec("params/blocks_0/mlp/fc1/kernel", (192, 768)) == (None, "model")
    assert spec("params/blocks_0/mlp/fc1/bias", (768,)) == ("model",)
    assert spec("params/blocks_0/mlp/fc2/kernel", (768, 192)) == ("model", None)
    assert spec("params/head/kernel", (192, 10)) == (None, None)
    with pytest.raises(ValueError, match="not divisible by the model axis"):
        spec("params/blocks_0/attn/key/kernel", (192, 3, 64))  # ViT-Ti's 3 heads over 4 devices


def test_fsdp_rules():
    fsdp, mesh = Strategy("fsdp"), _mesh(data=8)
    spec = lambda shape: tuple(leaf_spec("params/x", shape, mesh, fsdp))  # noqa: E731
    assert spec((192, 768)) == (None, "data")       # the largest divisible axis
    assert spec((768, 192)) == ("data", None)
    assert spec((10, 3, 5)) == (None, None, None)   # nothing divisible: replicated
    assert spec(()) == ()
    both = tuple(leaf_spec("params/blocks_0/mlp/fc1/kernel", (192, 768), _mesh(data=2, model=4),
                           Strategy("tp", model=4, fsdp=True)))
    assert both == ("data", "model")


def test_mesh_shapes():
    assert mesh_shape(8, Strategy()) == {"data": 8, "stage": 1, "model": 1}
    assert mesh_shape(32, Strategy("tp", model=4)) == {"data": 8, "stage": 1, "model": 4}
    assert mesh_shape(8, Strategy("pp", stage=4, microbatches=4)) == {"data": 2, "stage": 4, "model": 1}
    with pytest.raises(ValueError):
        mesh_shape(6, Strategy("tp", model=4))
    with pytest.raises(ValueError):
        Strategy("dp", model=2)
    assert Strategy.from_config({"name": "pp", "stage": 2}) == Strategy("pp", stage=2)
