"""Resumable training: a run killed mid-training and started again ends with
the same final metrics, bit for bit, as a run that was never interrupted."""

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, TINY_CONFIG
from imgrec.config import check_config, resolve_experiment, validate_schema

TRAIN = [sys.executable, str(REPO / "scripts" / "train_model.py")]


@pytest.fixture
def spec():
    config = copy.deepcopy(TINY_CONFIG)
    config["experiments"]["tiny_cifar_bf16"]["schedule"].update(epochs=4, steps_per_call=2,
                                                                 checkpoint_every_steps=4, evals_per_epoch=2)
    return resolve_experiment(check_config(validate_schema(config)), "tiny_cifar_bf16")


def train(spec, prepared, out, resume_dir):
    return subprocess.Popen([*TRAIN, "--spec", json.dumps(spec), "--data", str(prepared["tiny_synthetic"].path),
                             "--checkpoint", str(out / "ckpt"), "--summary", str(out / "summary.json"),
                             "--metrics", str(out / "metrics.jsonl"), "--resume-dir", str(resume_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "JAX_NUM_CPU_DEVICES": "1"})


def final_metrics(out):
    summary = json.loads((out / "summary.json").read_text())
    keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "step")
    evals = [{k: e[k] for k in ("step", "test_loss", "test_accuracy")} for e in summary["evals"]]
    return [{k: r[k] for k in keys} for r in summary["curve"]], evals, summary["steps"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_identical_metrics(spec, prepared, tmp_path, sig):
    clean = tmp_path / "clean"
    clean.mkdir()
    proc = train(spec, prepared, clean, tmp_path / "clean_resume")
    assert proc.wait(timeout=300) == 0, proc.stdout.read()

    killed = tmp_path / "killed"
    killed.mkdir()
    resume_dir = tmp_path / "resume"
    proc = train(spec, prepared, killed, resume_dir)
    deadline = time.time() + 240
    while not any(p.name.isdigit() and int(p.name) >= 6 for p in resume_dir.glob("*")):
        assert proc.poll() is None, "finished before it could be killed: " + proc.stdout.read()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert not (killed / "summary.json").exists()

    proc = train(spec, prepared, killed, resume_dir)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, output
    assert "resuming from step" in output
    assert final_metrics(killed) == final_metrics(clean)
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert not resume_dir.exists(), "the resume checkpoints are removed once training ends"


def test_corrupt_resume_checkpoint_is_an_error_not_a_restart(spec, prepared, tmp_path):
    resume_dir = tmp_path / "resume"
    step_dir = resume_dir / "6"
    (step_dir / "progress").mkdir(parents=True)
    (step_dir / "progress" / "metadata").write_text("{not json")
    (step_dir / "state").mkdir()
    proc = train(spec, prepared, tmp_path, resume_dir)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode != 0
    assert "corrupt" in output and str(resume_dir) in output
    assert not (tmp_path / "summary.json").exists()
