"""A multi-host target emulated by local processes, through the workflow: the
train rule starts 2 processes x 2 virtual CPU devices joined by jax.distributed."""

import copy
import json

import yaml

from conftest import REPO, TINY_CONFIG
from test_pipeline import snakemake, write_config


def test_two_host_target_trains_across_processes(tmp_path):
    hardware = yaml.safe_load((REPO / "config" / "hardware.yaml").read_text())
    hardware["pod-2x2"] = {"platform": "tpu", "devices": 4, "hosts": 2, "peak_flops": {"fp32": None, "bf16": None}}
    (tmp_path / "hardware.yaml").write_text(yaml.safe_dump(hardware))
    config = copy.deepcopy(TINY_CONFIG)
    config["hardware_file"] = str(tmp_path / "hardware.yaml")
    exp = config["experiments"]["tiny_mnist"]
    exp["hardware"] = "pod-2x2"
    config["experiments"] = {"tiny_pod": exp}
    write_config(tmp_path, config)
    snakemake(tmp_path, "--cores", "2", "results/tiny_pod.json")
    log = (tmp_path / "results" / "logs" / "train" / "tiny_pod.log").read_text()
    assert "4 cpu device(s) in 2 processes emulating pod-2x2" in log
    assert log.count("epoch   1/1") == 1, "only the first process reports"
    result = json.loads((tmp_path / "results" / "tiny_pod.json").read_text())
    assert result["hardware"]["requested"] == "pod-2x2" and result["hardware"]["emulated"] is True
    assert result["hardware"]["processes"] == 2 and result["hardware"]["devices"] == 4
    assert result["test"]["accuracy"] > 0.5
