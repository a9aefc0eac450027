"""Optimizers and learning-rate schedules (optax), built from a schedule config."""

from __future__ import annotations

import optax


def make_schedule(cfg: dict, steps_per_epoch: int):
    total = max(cfg["epochs"] * steps_per_epoch, 1)
    lr = cfg["learning_rate"]
    warmup = int(round(cfg.get("warmup_epochs", 0) * steps_per_epoch))
    kind = cfg.get("lr_schedule", "constant")
    if kind == "constant":
        if warmup:
            return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)],
                                        [warmup])
        return optax.constant_schedule(lr)
    if kind == "cosine":
        return optax.cosine_decay_schedule(lr, total)
    if kind == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, min(warmup, total - 1), total)
    if kind == "onecycle":
        return optax.cosine_onecycle_schedule(total, lr)
    raise ValueError(f"unknown lr_schedule {kind!r}")


def make_optimizer(cfg: dict, steps_per_epoch: int) -> optax.GradientTransformation:
    schedule = make_schedule(cfg, steps_per_epoch)
    kind = cfg.get("optimizer", "adam")
    wd = cfg.get("weight_decay", 0.0)
    if kind == "adam":
        tx = optax.adam(schedule)
        return optax.chain(optax.add_decayed_weights(wd), tx) if wd else tx
    if kind == "adamw":
        return optax.adamw(schedule, weight_decay=wd)
    if kind in ("sgd", "momentum", "nesterov"):
        momentum = None if kind == "sgd" else cfg.get("momentum", 0.9)
        tx = optax.sgd(schedule, momentum=momentum, nesterov=kind == "nesterov")
        return optax.chain(optax.add_decayed_weights(wd), tx) if wd else tx
    raise ValueError(f"unknown optimizer {kind!r}")
