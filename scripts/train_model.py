#!/usr/bin/env python3
"""Train one experiment: prepared data in, orbax checkpoint + training summary out.

By hand:  python scripts/train_model.py --experiment mnist_cnn_fp32 \\
              --data results/data/digits --checkpoint /tmp/ckpt --summary /tmp/train.json
Progress goes to stderr (a line per epoch); per-epoch metrics to --metrics (JSONL).
"""

import argparse

from imgrec.cli import add_experiment_args, experiment_spec, fail, write_json_atomic
from imgrec.config import ConfigError
from imgrec.data.prepared import DatasetError
from imgrec.hardware import HardwareError, prepare_environment


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_experiment_args(parser)
    parser.add_argument("--data", required=True, help="prepared dataset directory")
    parser.add_argument("--checkpoint", required=True, help="output: final checkpoint directory (orbax)")
    parser.add_argument("--summary", required=True, help="output: training summary JSON")
    parser.add_argument("--metrics", help="output: per-epoch metrics JSONL")
    parser.add_argument("--resume-dir", help="periodic checkpoints of the run in progress; a restarted run "
                                              "continues from the latest one (removed once training ends)")
    args = parser.parse_args(argv)
    try:
        spec = experiment_spec(args)
        prepare_environment(spec["hardware_spec"], spec.get("emulate", False))
        import jax

        from imgrec import checkpoint, models
        from imgrec.parallel import multihost

        # Several hosts (a TPU pod, SLURM tasks, or local processes emulating them): join them first.
        multihost.initialize()
        from imgrec.config import config_hash
        from imgrec.data import load_prepared
        from imgrec.hardware import select_devices
        from imgrec.train import Trainer, log_to_stderr

        if spec["model"] not in models.MODELS:
            raise ConfigError(f"unknown model {spec['model']!r}; known: {', '.join(sorted(models.MODELS))}")
        devices, hardware = select_devices(spec["hardware_spec"], spec.get("emulate", False))
        dataset = load_prepared(args.data)
        primary = jax.process_index() == 0
        log = log_to_stderr if primary else (lambda _: None)
        trainer = Trainer(spec, dataset, devices, log=log)
    except (ConfigError, HardwareError, DatasetError, ValueError) as err:
        fail(err)
    log(f"{spec['name']}: {spec['model']} on {spec['dataset']} ({len(dataset.train)} train images), "
        f"{spec['precision']}, {hardware['devices']} {hardware['actual']} device(s)"
        f"{' in ' + str(jax.process_count()) + ' processes' if jax.process_count() > 1 else ''}"
        f"{' emulating ' + hardware['requested'] if hardware['emulated'] else ''}, "
        f"{spec['schedule']['epochs']} epochs x {trainer.steps_per_epoch} steps")
    state = progress = store = None
    if args.resume_dir:
        store = checkpoint.ResumeStore(args.resume_dir, config_hash(spec), log=log)
        try:
            resumed = store.restore_latest(trainer.abstract_state())
        except checkpoint.CheckpointError as err:
            fail(err)
        if resumed:
            state, progress = resumed
            log(f"resuming from step {int(state.step)} ({args.resume_dir})")
    state, summary = trainer.fit(state, metrics_path=args.metrics if primary else None, progress=progress,
                                 checkpoint=store.save if store else None,
                                 checkpoint_every_steps=spec["schedule"].get("checkpoint_every_steps", 0))
    checkpoint.save(args.checkpoint, state)
    summary["hardware"] = hardware
    if primary:
        write_json_atomic(args.summary, summary)
    if store:
        store.clear()
    log(f"done: {summary['images_per_s']:,.0f} img/s, {summary['train_seconds']:.1f}s training, "
                  f"{summary['compile_seconds']:.1f}s compiling")


if __name__ == "__main__":
    main()
