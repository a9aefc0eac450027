"""Hardware targets: find the devices an experiment asked for, or emulate them.

``prepare_environment`` runs before JAX is imported: with emulation allowed it
asks XLA for as many virtual CPU devices as the target has, so the same mesh
code runs here as on the real target.
"""

from __future__ import annotations

import os


class HardwareError(RuntimeError):
    pass


def prepare_environment(hardware_spec: dict, emulate: bool) -> None:
    per_host = hardware_spec["devices"] // hardware_spec.get("hosts", 1)
    wanted = hardware_spec["platform"]
    if (emulate and wanted != "cpu") or (wanted == "cpu" and per_host > 1):
        os.environ.setdefault("JAX_NUM_CPU_DEVICES", str(per_host))


def select_devices(hardware_spec: dict, emulate: bool) -> tuple[list, dict]:
    """Returns (devices, hardware record for the result)."""
    import jax

    name, wanted, count = hardware_spec["name"], hardware_spec["platform"], hardware_spec["devices"]
    available = jax.devices()
    platform = available[0].platform
    if platform != wanted and wanted == "cpu":
        available, platform = jax.devices("cpu"), "cpu"
    if platform == wanted:
        if len(available) < count:
            raise HardwareError(f"target {name!r} needs {count} {wanted} device(s); JAX sees "
                                f"{len(available)}: {available}")
        devices = available[:count]
        return devices, {"requested": name, "actual": platform, "emulated": False, "devices": len(devices),
                         "device_kind": devices[0].device_kind}
    if not emulate:
        raise HardwareError(
            f"experiment asks for hardware {name!r} ({count} {wanted} devices) but JAX sees only "
            f"{len(available)} {platform} device(s): {available}. Run it where that hardware is, or opt in to "
            f"emulation on virtual CPU devices with `--config emulate=true`.")
    per_host = count // hardware_spec.get("hosts", 1)
    cpus = jax.devices("cpu")
    if jax.process_count() > 1:  # emulating a multi-host target with local processes: the global devices
        per_host = count
    if len(cpus) < per_host:
        raise HardwareError(f"emulating {name!r} needs {per_host} CPU devices, JAX has {len(cpus)}; "
                            f"set JAX_NUM_CPU_DEVICES={per_host} before JAX starts")
    return cpus[:per_host], {"requested": name, "actual": "cpu", "emulated": True, "devices": per_host,
                             "processes": jax.process_count(), "device_kind": cpus[0].device_kind}
