#!/usr/bin/env python3
"""CPU benchmark: the pipeline's own trainer step against PyTorch, side by side.

    python scripts/benchmark.py                 # full run -> results/bench/cpu.json, cpu.md
    python scripts/benchmark.py --quick         # CI-sized
    python scripts/benchmark.py --models mnist_cnn --precisions fp32,bf16 --repeats 7

Measures, in one process and one run: the practical fp32 and bf16 matmul peak
(JAX, 2048^2); for each model and precision the trainer's images/s (the compiled
multi-step call ``Trainer.fit`` runs, on synthetic uint8 data, batch 128, Adam)
and PyTorch's (eager NCHW, eager channels_last, torch.compile where it works),
alternating JAX and PyTorch repeats; medians, the JAX/PyTorch-best ratio, MFU
(XLA-counted FLOPs per step x steps/s / measured fp32 peak); prepared-data
loading images/s versus the trainer's; Snakemake dry-run and no-op overhead.
PyTorch is a benchmark-only dependency (envs/bench.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mnist_cnn,cifar_cnn", help="comma-separated (default: %(default)s)")
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=7, help="alternating repeats per side (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps-per-call", type=int, default=None,
                   help="trainer steps per compiled call (default: the trainer's default)")
    p.add_argument("--calls", type=int, default=4, help="JAX compiled calls per repeat (default: %(default)s)")
    p.add_argument("--torch-steps", type=int, default=12, help="PyTorch steps per repeat (default: %(default)s)")
    p.add_argument("--torch-configs", default="auto",
                   help="comma-separated of eager,eager_cl,compile_cl,compile_model_cl, 'auto' (all that work "
                        "here), or 'none' to skip PyTorch")
    p.add_argument("--peak-size", type=int, default=2048, help="matmul size for the peak (default: %(default)s)")
    p.add_argument("--skip-data", action="store_true", help="skip the data-loading benchmark")
    p.add_argument("--skip-snakemake", action="store_true", help="skip the Snakemake overhead timing")
    p.add_argument("--quick", action="store_true",
                   help="CI-sized: 2 repeats, short repeats, eager PyTorch only, 512^2 peak, small data set")
    p.add_argument("--out-json", default=str(REPO_ROOT / "results/bench/cpu.json"))
    p.add_argument("--out-md", default=str(REPO_ROOT / "results/bench/cpu.md"))
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 2)
        args.calls = min(args.calls, 1)
        args.torch_steps = min(args.torch_steps, 2)
        args.peak_size = min(args.peak_size, 512)
        if args.torch_configs == "auto":
            args.torch_configs = "eager,eager_cl"
    return args


def machine_info() -> dict:
    cpu = platform.processor() or ""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu.strip("x86_64"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1]
    except OSError:
        pass
    versions = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "snakemake"):
        try:
            from importlib.metadata import version
            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001
            versions[pkg] = None
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
            "isa": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags.split()],
            "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "loadavg_start": load}


def alternate(benches: dict, repeats: int, log) -> dict:
    """Round-robin repeats over the benches; returns name -> list of images/s."""
    rates = {name: [] for name in benches}
    for r in range(repeats):
        for name, bench in benches.items():
            rates[name].append(bench.run_once())
        log(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{n} {v[-1]:,.0f}" for n, v in rates.items()))
    return rates


def run(args, log=lambda m: print(m, file=sys.stderr, flush=True)) -> dict:
    from imgrec.bench import median
    from imgrec.bench.peak import matmul_gflops

    info = machine_info()
    log(f"machine: {info['cpu']}, {info['affinity']} cpus, load {info['loadavg_start']}")
    t_start = time.perf_counter()
    peak = {dt: matmul_gflops(dt, n=args.peak_size, repeats=max(3, args.repeats)) for dt in ("fp32", "bf16")}
    log(f"peak: fp32 {peak['fp32']['gflops_median']:.1f}, bf16 {peak['bf16']['gflops_median']:.1f} GFLOP/s")

    from imgrec.bench.jax_bench import SHAPES, JaxTrainerBench

    torch_cfgs = [] if args.torch_configs == "none" else None
    if torch_cfgs is None:
        try:
            from imgrec.bench import torch_ref
        except ImportError as err:
            log(f"PyTorch unavailable ({err}); install envs/bench.txt for the reference")
            torch_cfgs = []
    results = []
    for model in args.models.split(","):
        if torch_cfgs != []:
            wanted = torch_ref.CONFIGS if args.torch_configs == "auto" else args.torch_configs.split(",")
            cfgs = [c for c in torch_ref.available_configs(model, log=log) if c in wanted] \
                if any(c.startswith("compile") for c in wanted) else list(wanted)
        else:
            cfgs = []
        for precision in args.precisions.split(","):
            log(f"{model} {precision}: setting up")
            benches = {"jax": JaxTrainerBench(model, precision, args.batch_size, args.steps_per_call,
                                              calls=args.calls)}
            for cfg in cfgs:
                benches[f"torch_{cfg}"] = torch_ref.TorchBench(model, cfg, precision, args.batch_size,
                                                               steps=args.torch_steps,
                                                               warmup_steps=12 if cfg.startswith("compile") else 3)
            setups = {name: b.setup() for name, b in benches.items()}
            rates = alternate(benches, args.repeats, log)
            jax_info = setups["jax"]
            jax_ips = median(rates["jax"])
            torch_meds = {n[len("torch_"):]: median(v) for n, v in rates.items() if n.startswith("torch_")}
            best_cfg = max(torch_meds, key=torch_meds.get) if torch_meds else None
            flops = jax_info["xla_flops_per_step"]
            steps_per_s = jax_ips / args.batch_size
            row = {
                "model": model, "precision": precision, "batch_size": args.batch_size,
                "image_shape": list(SHAPES[model]),
                "jax_images_per_s": jax_ips, "jax_images_per_s_all": [round(x, 1) for x in rates["jax"]],
                "jax": jax_info,
                "torch_images_per_s": {k: v for k, v in torch_meds.items()},
                "torch_images_per_s_all": {n[len("torch_"):]: [round(x, 1) for x in v]
                                           for n, v in rates.items() if n.startswith("torch_")},
                "torch_best_config": best_cfg,
                "torch_best_images_per_s": torch_meds.get(best_cfg),
                "ratio_jax_over_torch_best": jax_ips / torch_meds[best_cfg] if best_cfg else None,
                "xla_flops_per_step": flops,
                "achieved_gflops": flops * steps_per_s / 1e9 if flops else None,
                "mfu_vs_fp32_peak": flops * steps_per_s / 1e9 / peak["fp32"]["gflops_median"] if flops else None,
                "mfu_vs_own_precision_peak": flops * steps_per_s / 1e9 / peak[precision]["gflops_median"]
                if flops else None,
            }
            if torch_meds:
                row["torch_param_shapes"] = setups[f"torch_{best_cfg}"]["param_shapes"]
            results.append(row)
            log(f"{model} {precision}: jax {jax_ips:,.0f} img/s, torch best {best_cfg} "
                f"{torch_meds.get(best_cfg) or 0:,.0f}; MFU {row['mfu_vs_fp32_peak'] or 0:.1%}")
            del benches
    by = {(r["model"], r["precision"]): r for r in results}
    for r in results:
        fp32 = by.get((r["model"], "fp32"))
        r["speed_vs_fp32"] = r["jax_images_per_s"] / fp32["jax_images_per_s"] if fp32 else None

    out = {"machine": info, "peak_gflops": peak, "trainer": results, "args": vars(args)}
    if not args.skip_data:
        from imgrec.bench.data_bench import data_loading
        model = args.models.split(",")[0]
        data = data_loading(model, SHAPES[model], n_train=2048 if args.quick else 20480,
                            batch_size=args.batch_size, steps_per_call=args.steps_per_call,
                            repeats=1 if args.quick else 3)
        trainer_ips = by.get((model, "fp32"), results[0] if results else {}).get("jax_images_per_s")
        data["trainer_images_per_s"] = trainer_ips
        data["ratio_loading_over_trainer"] = data["images_per_s"] / trainer_ips if trainer_ips else None
        out["data_loading"] = data
        log(f"data loading: {data['images_per_s']:,.0f} img/s ({data['ratio_loading_over_trainer'] or 0:.1f}x "
            f"the trainer)")
    if not args.skip_snakemake:
        from imgrec.bench.data_bench import snakemake_overhead
        out["snakemake"] = snakemake_overhead(repeats=1 if args.quick else 3)
        log(f"snakemake: {out['snakemake']}")
    out["machine"]["loadavg_end"] = os.getloadavg()
    out["seconds"] = time.perf_counter() - t_start
    out["command"] = "python scripts/benchmark.py " + " ".join(sys.argv[1:])
    return out


def markdown(out: dict) -> str:
    m, p = out["machine"], out["peak_gflops"]
    lines = [f"# CPU benchmark: the pipeline's trainer vs PyTorch",
             "",
             f"Machine: {m['cpu']}, {m['affinity']} CPUs ({', '.join(m['isa'])}); "
             + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
             + f"; load average {m['loadavg_start']} -> {m.get('loadavg_end')}.",
             f"XLA_FLAGS: `{m['xla_flags'] or '(none)'}`",
             f"Measured matmul peak ({p['fp32']['n']}^2): fp32 {p['fp32']['gflops_median']:.1f} GFLOP/s, "
             f"bf16 (fp32 accumulation) {p['bf16']['gflops_median']:.1f} GFLOP/s.",
             "",
             "| model | precision | batch | JAX trainer img/s | PyTorch best img/s (config) | JAX / PyTorch | "
             "GFLOP/s | MFU (fp32 peak) | vs JAX fp32 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in out["trainer"]:
        tb = r["torch_best_images_per_s"]
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['batch_size']} | {r['jax_images_per_s']:,.0f} | "
            + (f"{tb:,.0f} ({r['torch_best_config']}) | {r['ratio_jax_over_torch_best']:.2f}x" if tb else "- | -")
            + f" | {r['achieved_gflops'] or 0:.1f} | {(r['mfu_vs_fp32_peak'] or 0):.1%} | "
            f"{(r['speed_vs_fp32'] or 0):.2f}x |")
    if any(r["torch_images_per_s"] for r in out["trainer"]):
        lines += ["", "PyTorch configurations (median img/s): " + "; ".join(
            f"{r['model']} {r['precision']}: " + ", ".join(f"{k} {v:,.0f}" for k, v in r["torch_images_per_s"].items())
            for r in out["trainer"])]
    if "data_loading" in out:
        d = out["data_loading"]
        lines += ["", f"Prepared-data loading (Trainer.train_chunks, memory-mapped): {d['images_per_s']:,.0f} img/s = "
                      f"{d['ratio_loading_over_trainer'] or 0:.1f}x the trainer's {d['trainer_images_per_s'] or 0:,.0f} img/s."]
    if "snakemake" in out:
        s = out["snakemake"]
        if "dry_run_seconds" in s:
            noop = s.get("noop_rebuild_seconds")
            lines += ["", f"Snakemake ({s['config']}): `snakemake -n` {s['dry_run_seconds']:.2f} s; no-op rebuild "
                          + (f"{noop:.2f} s." if noop is not None else f"not timed ({s.get('noop_rebuild_note')}).")]
        else:
            lines += ["", f"Snakemake: {s.get('skipped') or s.get('error')}"]
    lines += ["", f"Medians of {out['args']['repeats']} alternating repeats. Command: `{out['command']}`", ""]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    from imgrec.bench.flags import apply_xla_cpu_flags
    apply_xla_cpu_flags()  # before JAX is imported
    out = run(args)
    for path, text in ((args.out_json, json.dumps(out, indent=2, default=float) + "\n"), (args.out_md, markdown(out))):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(path) + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    print(markdown(out))


if __name__ == "__main__":
    main()
