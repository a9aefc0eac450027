"""The Snakemake workflow end to end on a tiny config, as a user runs it."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY_CONFIG
from imgrec.config import validate_schema

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def snakemake(workdir, *args, check=True):
    env = {k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"}
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True,
                          env=env, timeout=600)
    if check and proc.returncode:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def write_config(workdir, config):
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pipeline")
    write_config(workdir, copy.deepcopy(TINY_CONFIG))
    snakemake(workdir, "--cores", "2")
    return workdir


def test_builds_every_result_and_the_recap(workdir):
    for name in TINY_CONFIG["experiments"]:
        result = json.loads((workdir / "results" / f"{name}.json").read_text())
        validate_schema(result, "result.schema.json", what="result")
        assert result["experiment"] == name
        assert 0 <= result["test"]["accuracy"] <= 1
        assert result["train"]["flops_per_step"] > 0 and result["train"]["images_per_s"] > 0
        prov = result["provenance"]
        assert prov["config_hash"].startswith("sha256:") and prov["dataset"]["fingerprint"].startswith("sha256:")
        assert prov["packages"]["jax"] and prov["jax_devices"]
        assert (workdir / "results" / "logs" / "train" / f"{name}.log").read_text().count("epoch") >= 1
    assert json.loads((workdir / "results" / "tiny_cifar_bf16.json").read_text())["dataset"]["synthetic"] is True
    recap = (workdir / "results" / "recap.md").read_text()
    assert "tiny_mnist" in recap and "tiny_cifar_bf16" in recap
    lines = (workdir / "results" / "recap.csv").read_text().splitlines()
    assert len(lines) == 1 + len(TINY_CONFIG["experiments"])


def test_rerun_with_nothing_changed_runs_nothing(workdir):
    out = snakemake(workdir, "--cores", "2")
    assert "Nothing to be done" in out.stdout + out.stderr


def test_changing_one_hyperparameter_reruns_only_that_chain(workdir, tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["experiments"]["tiny_mnist"]["schedule"]["learning_rate"] = 0.002
    write_config(workdir, config)
    try:
        out = snakemake(workdir, "-n", "--cores", "2", "--quiet", "rules")
    finally:
        write_config(workdir, copy.deepcopy(TINY_CONFIG))
    text = out.stdout + out.stderr
    rows = [line.split() for line in text.split("Reasons:")[0].splitlines()]
    counts = {r[0]: r[1] for r in rows if len(r) == 2 and r[0] in {"train", "evaluate", "prepare_dataset", "recap"}}
    assert counts == {"train": "1", "evaluate": "1", "recap": "1"}, text


def test_same_config_same_metrics(workdir, tmp_path):
    """A second, independent build of the same config gives identical numbers."""
    other = tmp_path / "again"
    other.mkdir()
    write_config(other, copy.deepcopy(TINY_CONFIG))
    snakemake(other, "--cores", "2", "results/tiny_mnist.json")
    a = json.loads((workdir / "results" / "tiny_mnist.json").read_text())
    b = json.loads((other / "results" / "tiny_mnist.json").read_text())
    assert a["test"] == b["test"]
    assert [r["train_loss"] for r in a["train"]["curve"]] == [r["train_loss"] for r in b["train"]["curve"]]
    assert a["provenance"]["config_hash"] == b["provenance"]["config_hash"]


def test_target_naming_no_experiment_fails_cleanly(workdir):
    out = snakemake(workdir, "--cores", "1", "results/no_such_experiment.json", check=False)
    assert out.returncode != 0
    assert "names no experiment" in out.stdout + out.stderr
    assert not (workdir / "results" / "no_such_experiment.json").exists()


def test_bad_config_fails_before_any_job(tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["experiments"]["tiny_mnist"]["precision"] = "fp9"
    write_config(tmp_path, config)
    out = snakemake(tmp_path, "--cores", "1", check=False)
    assert out.returncode != 0 and "fp9" in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()


def test_missing_idx_data_fails_in_prepare_with_instructions(tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["datasets"]["digits"] = {"source": "idx", "name": "fashion_mnist", "path": str(tmp_path / "missing")}
    write_config(tmp_path, config)
    out = snakemake(tmp_path, "--cores", "1", "results/tiny_mnist.json", check=False)
    assert out.returncode != 0 and "dataset-fashion-mnist" in out.stdout + out.stderr
    assert not (tmp_path / "results" / "tiny_mnist.json").exists()
    assert not (tmp_path / "results" / "data" / "digits" / "meta.json").exists()


def test_lint_is_clean():
    proc = subprocess.run([*SNAKEMAKE, "--lint"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_talk_config_plans_offline():
    proc = subprocess.run([*SNAKEMAKE, "-n", "--configfile", "config/talk.yaml", "--quiet", "rules"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("script", ["prepare_data.py", "train_model.py", "evaluate_model.py", "make_recap.py"])
def test_entry_points_have_help(script):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "usage:" in proc.stdout
