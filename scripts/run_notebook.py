#!/usr/bin/env python3
"""Execute a demo notebook with papermill and render it to HTML (nbconvert).

By hand:  python scripts/run_notebook.py --notebook workflow/notebooks/mnist_demo.ipynb \\
              --parameters '{"data_dir": "results/data/digits", "epochs": 1}' \\
              --out /tmp/mnist_demo.ipynb --html /tmp/mnist_demo.html
The notebook runs in the current directory, with the `imgrec` package importable. A failing
cell fails this command (exit status 1) and leaves the executed copy, showing the error, at
--out; no HTML is written then.
"""

import argparse
import json
import os
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", required=True, help="the parameterized notebook")
    parser.add_argument("--parameters", default="{}", help="papermill parameters as a JSON object")
    parser.add_argument("--out", required=True, help="output: the executed notebook")
    parser.add_argument("--html", required=True, help="output: its HTML rendering")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    parameters = json.loads(args.parameters)
    if not isinstance(parameters, dict):
        parser.error("--parameters must be a JSON object")

    import logging

    import papermill

    # papermill logs each cell's output as it runs: into the rule's log
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("traitlets").setLevel(logging.WARNING)
    from nbconvert import HTMLExporter

    # the kernel inherits the environment: make `imgrec` importable, keep plots headless
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SCRIPTS), os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print(f"papermill {args.notebook} -> {args.out} with {json.dumps(parameters, sort_keys=True)}", file=sys.stderr)
    try:
        papermill.execute_notebook(args.notebook, args.out, parameters=parameters, kernel_name=args.kernel,
                                   cwd=os.getcwd(), progress_bar=False, log_output=True,
                                   execution_timeout=args.timeout)
    except papermill.PapermillExecutionError as err:
        print(f"{args.notebook}: cell {err.exec_count} failed: {err.ename}: {err.evalue}\n"
              f"(the executed copy with the error is at {args.out})", file=sys.stderr)
        return 1
    body, _ = HTMLExporter().from_filename(args.out)
    Path(args.html).write_text(body, encoding="utf-8")
    print(f"wrote {args.out} and {args.html}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
