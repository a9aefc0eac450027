"""Dry runs of a stub workflow (rules ``train`` and ``all``) through each
Snakemake profile in workflow/profiles/, checking that the executor plugin
loads and the per-rule resources come out as configured. The cloud profiles'
storage (S3/GCS, which a dry run would contact) is swapped for the ``fs``
storage plugin. Skipped where a plugin is not installed (``envs/cluster.txt``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "workflow" / "profiles"
STUB = """
rule all:
    input: "results/a.json"
rule train:
    output: "results/{exp}.json"
    shell: "echo {wildcards.exp} > {output}"
"""
CASES = {  # profile -> (plugin modules, strings the train job's resources show)
    "local-gpu": ((), ["gpu=1"]),
    "slurm": (("snakemake_executor_plugin_slurm",), ["slurm_partition=gpu", "gpu=1", "runtime=240"]),
    "kubernetes": (("snakemake_executor_plugin_kubernetes", "snakemake_storage_plugin_fs"),
                   ["gpu=1", "gpu_manufacturer=nvidia"]),
    "googlebatch": (("snakemake_executor_plugin_googlebatch", "snakemake_storage_plugin_fs"),
                    ["nvidia_gpu=1", "googlebatch_machine_type=a2-highgpu-1g"]),
}


@pytest.mark.parametrize("profile", sorted(CASES))
def test_profile_dry_run(profile, tmp_path):
    modules, expected = CASES[profile]
    for m in modules:
        if importlib.util.find_spec(m) is None:
            pytest.skip(f"{m} not installed (pip install -r envs/cluster.txt)")
    (tmp_path / "Snakefile").write_text(STUB)
    cmd = [sys.executable, "-m", "snakemake", "-n", "--profile", str(PROFILES / profile)]
    if "snakemake_storage_plugin_fs" in modules:
        cmd += ["--default-storage-provider", "fs", "--default-storage-prefix", str(tmp_path / "store")]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    train = text[text.index("rule train:"):text.index("rule all:")]
    for s in expected:
        assert s in train, train
    assert "This was a dry-run" in text


def test_every_profile_documented():
    readme = (PROFILES / "README.md").read_text()
    for profile in CASES:
        assert (PROFILES / profile / "config.yaml").exists()
        assert f"workflow/profiles/{profile}" in readme
