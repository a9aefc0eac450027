"""Several processes, one program: ``jax.distributed.initialize`` and local emulation.

On a Cloud TPU pod slice, a SLURM job (one task per host) or a Kubernetes
JobSet/indexed Job, ``initialize()`` needs no arguments: JAX reads the cluster
from the environment. For local tests and emulation (4 processes x 8 virtual
CPU devices stand in for a TPU v3-32) the coordinator, process count and id are
explicit, or come from ``IMGREC_COORDINATOR``/``IMGREC_NUM_PROCESSES``/
``IMGREC_PROCESS_ID``, which ``launch_local`` sets; CPU processes exchange
data through gloo (``jax_cpu_collectives_implementation``; gloo is also the
default in JAX 0.10, set here explicitly).

After ``initialize``, ``jax.devices()`` lists every process's devices and a
mesh over them spans the hosts; each process feeds only its own slice of the
batch (``sharding.global_batch``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

ENV_COORDINATOR, ENV_NUM, ENV_ID = "IMGREC_COORDINATOR", "IMGREC_NUM_PROCESSES", "IMGREC_PROCESS_ID"
ENV_FORCE = "IMGREC_DISTRIBUTED"  # "1": call initialize() argument-free even if no cluster is recognised


def cluster_env(environ=None) -> str | None:
    """The multi-process launcher this process runs under, if any."""
    env = os.environ if environ is None else environ
    if ENV_COORDINATOR in env:
        return "local"
    if "SLURM_JOB_ID" in env and int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1"))) > 1:
        return "slurm"
    if "OMPI_MCA_orte_hnp_uri" in env:
        return "openmpi"
    if "KUBERNETES_SERVICE_HOST" in env and ("JOBSET_NAME" in env or "JOB_COMPLETION_INDEX" in env):
        return "kubernetes"
    if "TPU_WORKER_HOSTNAMES" in env or "MEGASCALE_COORDINATOR_ADDRESS" in env or env.get(ENV_FORCE) == "1":
        return "cloud-tpu"
    return None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, local_device_ids=None, cpu_devices: int | None = None,
               timeout_s: int = 120) -> bool:
    """Joins the process group; returns False (and does nothing) for a lone process.

    Call before anything else touches JAX devices. ``cpu_devices`` sets the
    number of virtual CPU devices of this process (emulation)."""
    import jax

    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR)
    if num_processes is None and ENV_NUM in os.environ:
        num_processes = int(os.environ[ENV_NUM])
    if process_id is None and ENV_ID in os.environ:
        process_id = int(os.environ[ENV_ID])
    if cpu_devices:
        jax.config.update("jax_num_cpu_devices", cpu_devices)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # no-op unless CPU devices are used
    if coordinator_address:
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   local_device_ids=local_device_ids, initialization_timeout=timeout_s)
        return True
    if cluster_env() is not None:
        jax.distributed.initialize(local_device_ids=local_device_ids, initialization_timeout=timeout_s)
        return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_local(num_processes: int, devices_per_process: int, argv: list[str], *, env: dict | None = None,
                 port: int | None = None, **popen_kw) -> list[subprocess.Popen]:
    """Starts ``argv`` as ``num_processes`` local processes of one JAX program,
    each with ``devices_per_process`` virtual CPU devices (e.g. 4 x 8 for a TPU v3-32)."""
    address = f"127.0.0.1:{port or free_port()}"
    procs = []
    for pid in range(num_processes):
        penv = {**os.environ, **(env or {}), ENV_COORDINATOR: address, ENV_NUM: str(num_processes),
                ENV_ID: str(pid), "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": str(devices_per_process)}
        procs.append(subprocess.Popen(argv, env=penv, **popen_kw))
    return procs


def data_parallel_check(steps: int = 1) -> dict:
    """One data-parallel train step of the selfcheck's tiny ViT over every
    process's devices, and the same step on this process's first device alone."""
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P

    from imgrec import parallel
    from imgrec.optim import make_optimizer
    from imgrec.parallel.selfcheck import init_state, tiny_batch, tiny_task

    task = tiny_task(num_layers=2)
    tx = make_optimizer(task.spec["schedule"], steps_per_epoch=100)
    state0 = jax.device_get(init_state(task, tx))
    batches = [tiny_batch(seed=i) for i in range(steps)]
    mesh = parallel.make_mesh(jax.devices(), "dp")

    state = parallel.place_state(state0, mesh, "dp")
    step = jax.jit(parallel.make_train_step(task, tx, mesh, "dp"),
                   out_shardings=(parallel.state_shardings(state, mesh, "dp"), NamedSharding(mesh, P())))
    sharding = parallel.batch_sharding(mesh)
    for b in batches:  # each process passes only the rows its devices hold
        rows = [idx[0] for idx in sharding.addressable_devices_indices_map(b["label"].shape).values()]
        lo, hi = min(r.start or 0 for r in rows), max(r.stop or len(b["label"]) for r in rows)
        state, metrics = step(state, parallel.global_batch({k: v[lo:hi] for k, v in b.items()}, mesh))

    local = lambda x: np.asarray(x.addressable_data(0))  # noqa: E731  (replicated: any shard is the whole)
    params = jax.tree.map(local, state.params)
    ref_state = jax.device_put(state0, jax.local_devices()[0])
    ref_step = jax.jit(task.make_train_step(tx))
    for b in batches:
        ref_state, ref_metrics = ref_step(ref_state, b)
    return {"process_id": jax.process_index(), "process_count": jax.process_count(),
            "devices": jax.device_count(), "local_devices": jax.local_device_count(),
            "loss": float(local(metrics["loss"])), "reference_loss": float(ref_metrics["loss"]),
            "param_checksum": float(sum(np.sum(np.abs(x), dtype=np.float64) for x in jax.tree.leaves(params))),
            "params_max_diff": max(float(np.max(np.abs(a - np.asarray(b)))) for a, b in
                                   zip(jax.tree.leaves(params), jax.tree.leaves(ref_state.params)))}


if __name__ == "__main__":  # python -m imgrec.parallel.multihost  (under launch_local)
    import json

    initialize()
    print("RESULT " + json.dumps(data_parallel_check()), flush=True)
    sys.exit(0)
