#!/usr/bin/env python3
"""Evaluate one trained experiment on its test split and write results/<experiment>.json.

The result carries test metrics, the training summary and full provenance, and
is checked against workflow/schemas/result.schema.json before it is written.

By hand:  python scripts/evaluate_model.py --experiment mnist_cnn_fp32 --data results/data/digits \\
              --checkpoint /tmp/ckpt --train-summary /tmp/train.json --out /tmp/result.json
"""

import argparse
import json

from imgrec.cli import add_experiment_args, experiment_spec, fail, write_json_atomic
from imgrec.config import ConfigError
from imgrec.data.prepared import DatasetError
from imgrec.hardware import HardwareError, prepare_environment


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_experiment_args(parser)
    parser.add_argument("--data", required=True, help="prepared dataset directory")
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory written by train_model.py")
    parser.add_argument("--train-summary", required=True, help="training summary JSON written by train_model.py")
    parser.add_argument("--out", required=True, help="output: result JSON")
    args = parser.parse_args(argv)
    try:
        spec = experiment_spec(args)
        prepare_environment(spec["hardware_spec"], spec.get("emulate", False))
        from imgrec.checkpoint import CheckpointError
        from imgrec.evaluate import evaluate_experiment

        with open(args.train_summary) as f:
            summary = json.load(f)
        result = evaluate_experiment(spec, args.data, args.checkpoint, summary)
    except (ConfigError, HardwareError, DatasetError, CheckpointError, OSError) as err:
        fail(err)
    write_json_atomic(args.out, result)
    test = result["test"]
    print(f"{spec['name']}: test accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f} "
          f"on {test['examples']} images -> {args.out}")


if __name__ == "__main__":
    main()
