"""Provenance for every result: code version, packages, devices, config, data."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess

from imgrec.config import REPO_ROOT

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tensorflow-datasets", "grain",
            "snakemake", "scikit-learn")


def git_state() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if head.returncode:
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect(config_hash: str, dataset_meta: dict, devices) -> dict:
    import os

    import datetime

    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "packages": package_versions(),
        "jax_devices": [str(d) for d in devices],
        "host": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "machine": platform.machine()},
        "config_hash": config_hash,
        "dataset": {"source": dataset_meta["source"], "fingerprint": dataset_meta["fingerprint"]},
    }
