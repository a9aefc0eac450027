"""Hardware targets: the registry's figures, device selection, emulation."""

import jax
import pytest
import yaml

from conftest import REPO
from imgrec.evaluate import mfu
from imgrec.hardware import HardwareError, select_devices

REGISTRY = yaml.safe_load((REPO / "config" / "hardware.yaml").read_text())


def target(name):
    return {"name": name, **REGISTRY[name]}


def test_registry_has_the_talks_targets_with_numeric_peaks():
    assert {"cpu", "gpu-1", "gpu-4", "tpu-v3-8", "tpu-v3-32"} <= set(REGISTRY)
    assert REGISTRY["tpu-v3-32"]["devices"] == 32 and REGISTRY["tpu-v3-32"]["hosts"] == 4
    for name, spec in REGISTRY.items():
        for value in spec["peak_flops"].values():
            assert value is None or isinstance(value, float), f"{name}: {value!r} is not a number"


def test_absent_target_fails_listing_the_devices():
    with pytest.raises(HardwareError, match=r"'gpu-4'.*JAX sees only.*emulate=true"):
        select_devices(target("gpu-4"), emulate=False)


def test_emulated_target_uses_virtual_cpu_devices():
    if len(jax.devices()) < 8:
        pytest.skip("needs JAX_NUM_CPU_DEVICES=8")
    devices, record = select_devices(target("tpu-v3-8"), emulate=True)
    assert len(devices) == 8
    assert record == {"requested": "tpu-v3-8", "actual": "cpu", "emulated": True, "devices": 8, "processes": 1,
                      "device_kind": devices[0].device_kind}


def test_mfu_against_the_data_sheet_and_none_when_emulated():
    summary = {"flops_per_step": 1e12, "steps": 100, "train_seconds": 10.0}
    hw = {"devices": 8, "emulated": False}
    assert mfu(summary, target("tpu-v3-8"), "bf16", hw) == pytest.approx(1e13 / (8 * 6.15e13))
    assert mfu(summary, target("tpu-v3-8"), "bf16", {**hw, "emulated": True}) is None
    assert mfu(summary, target("cpu"), "fp32", hw) is None
