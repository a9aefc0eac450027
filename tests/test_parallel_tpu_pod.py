"""The Cloud TPU VM commands for a multi-host target."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from imgrec.parallel import tpu_pod  # noqa: E402

SPEC = {"name": "tpu-v3-32", "platform": "tpu", "devices": 32, "hosts": 4,
        "tpu": {"name": "imgrec-v3-32", "zone": "europe-west4-a"}}


def test_launch_commands():
    sync, run = tpu_pod.launch_argvs(SPEC, ["python", "-m", "imgrec.cli", "train", "vit b16"])
    assert sync == ["gcloud", "compute", "tpus", "tpu-vm", "scp", "--recurse", ".", "imgrec-v3-32:imgrec",
                    "--zone", "europe-west4-a", "--worker=all"]
    assert run[:9] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "imgrec-v3-32", "--zone", "europe-west4-a",
                       "--worker=all"]
    assert run[9] == "--command"
    assert run[10] == "cd imgrec && IMGREC_DISTRIBUTED=1 python -m imgrec.cli train 'vit b16'"
    assert shlex.split(run[10])[-1] == "vit b16"


def test_project_worker_and_no_sync():
    spec = {**SPEC, "tpu": {**SPEC["tpu"], "project": "p1", "workdir": "/opt/x"}}
    (run,) = tpu_pod.launch_argvs(spec, ["true"], sync=False, env={"XLA_FLAGS": "--a --b"})
    assert run[6:11] == ["--zone", "europe-west4-a", "--worker=all", "--project", "p1"]
    assert run[-1] == "cd /opt/x && IMGREC_DISTRIBUTED=1 XLA_FLAGS='--a --b' true"
    assert "--worker=0" in tpu_pod.ssh_argv(tpu_pod.tpu_settings(spec), "hostname", worker="0")


def test_missing_tpu_settings():
    with pytest.raises(ValueError, match="tpu: {name: ..., zone: ...}"):
        tpu_pod.launch_argvs({"name": "tpu-v3-32"}, ["true"])
