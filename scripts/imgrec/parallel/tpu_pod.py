"""Cloud TPU VM pods: run one command on every worker of a slice.

A multi-host slice (TPU v3-32: 4 hosts x 8 cores) runs the same program on
each host; ``gcloud compute tpus tpu-vm ssh NAME --worker=all --command ...``
starts it everywhere, and ``jax.distributed.initialize()`` (argument-free on
Cloud TPU; ``IMGREC_DISTRIBUTED=1`` tells ``multihost.initialize`` to call it)
joins the hosts. The TPU's name, zone and (optional) project come from the
target's ``tpu:`` mapping in the hardware registry, e.g.::

    tpu-v3-32:
      ...
      tpu: {name: imgrec-v3-32, zone: europe-west4-a, project: my-project, workdir: imgrec}

These functions only build argv lists (pure, tested); ``scripts/launch_tpu_pod.py`` runs them.
"""

from __future__ import annotations

import shlex


def tpu_settings(hardware_spec: dict) -> dict:
    tpu = dict(hardware_spec.get("tpu") or {})
    missing = [k for k in ("name", "zone") if not tpu.get(k)]
    if missing:
        raise ValueError(f"hardware target {hardware_spec.get('name', '?')!r} has no tpu {'/'.join(missing)}: add "
                         f"`tpu: {{name: ..., zone: ...}}` to its entry in config/hardware.yaml")
    tpu.setdefault("workdir", "imgrec")
    return tpu


def _base(verb: str, gcloud: str) -> list[str]:
    return [gcloud, "compute", "tpus", "tpu-vm", verb]


def _where(tpu: dict, worker: str) -> list[str]:
    return ["--zone", tpu["zone"], f"--worker={worker}"] + (["--project", tpu["project"]] if tpu.get("project") else [])


def ssh_argv(tpu: dict, command: str, *, worker: str = "all", gcloud: str = "gcloud") -> list[str]:
    """``gcloud compute tpus tpu-vm ssh NAME --zone Z --worker=all --command CMD``."""
    return _base("ssh", gcloud) + [tpu["name"]] + _where(tpu, worker) + ["--command", command]


def sync_argv(tpu: dict, source: str = ".", *, worker: str = "all", gcloud: str = "gcloud") -> list[str]:
    """Copies the checkout to every worker (``tpu-vm scp --recurse``)."""
    return (_base("scp", gcloud) + ["--recurse", source, f"{tpu['name']}:{tpu['workdir']}"]
            + _where(tpu, worker))


def worker_command(argv: list[str], tpu: dict, env: dict | None = None) -> str:
    """The shell line each worker runs: cd to the checkout, multi-host on, the program."""
    env = {"IMGREC_DISTRIBUTED": "1", **(env or {})}
    assignments = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in sorted(env.items()))
    return f"cd {shlex.quote(tpu['workdir'])} && {assignments} {shlex.join(argv)}"


def launch_argvs(hardware_spec: dict, argv: list[str], *, sync: bool = True, env: dict | None = None,
                 gcloud: str = "gcloud") -> list[list[str]]:
    """The commands, in order, that run ``argv`` on every host of the target's TPU slice."""
    tpu = tpu_settings(hardware_spec)
    run = ssh_argv(tpu, worker_command(argv, tpu, env), gcloud=gcloud)
    return [sync_argv(tpu, gcloud=gcloud), run] if sync else [run]
