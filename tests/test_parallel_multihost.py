"""Two local processes x 2 virtual CPU devices, one JAX program (localhost
coordinator, gloo collectives), one data-parallel step: both processes agree
with each other and with the same step on one device (1e-5)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from imgrec.parallel import multihost  # noqa: E402


def test_two_processes_data_parallel_step():
    procs = multihost.launch_local(2, 2, [sys.executable, "-m", "imgrec.parallel.multihost"],
                                   env={"PYTHONPATH": str(ROOT / "scripts")}, cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=300)
            assert p.returncode == 0, out[-4000:]
            results.append(json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert sorted(r["process_id"] for r in results) == [0, 1]
    for r in results:
        assert (r["process_count"], r["devices"], r["local_devices"]) == (2, 4, 2)
        assert abs(r["loss"] - r["reference_loss"]) <= 1e-5
        assert r["params_max_diff"] <= 1e-5
    assert results[0]["loss"] == results[1]["loss"]
    assert results[0]["param_checksum"] == results[1]["param_checksum"]


def test_cluster_detection():
    assert multihost.cluster_env({}) is None
    assert multihost.cluster_env({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "1"}) is None  # one task: nothing to join
    assert multihost.cluster_env({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "4"}) == "slurm"
    assert multihost.cluster_env({"KUBERNETES_SERVICE_HOST": "x", "JOBSET_NAME": "j"}) == "kubernetes"
    assert multihost.cluster_env({"IMGREC_DISTRIBUTED": "1"}) == "cloud-tpu"
    assert multihost.cluster_env({"IMGREC_COORDINATOR": "127.0.0.1:1"}) == "local"
