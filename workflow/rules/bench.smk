# The CPU benchmark.
#   snakemake --cores all results/bench/cpu.json
# The pipeline's own trainer step vs PyTorch (benchmark-only dependency:
# `pip install -r envs/bench.txt`), alternating repeats, medians, MFU against the
# matmul peak measured in the same run; prepared-data loading and Snakemake
# overhead. Never a dependency of `all`: it takes minutes and measures the machine.


rule benchmark_cpu:
    input:
        script=os.path.join(SCRIPTS, "benchmark.py"),
    output:
        json="results/bench/cpu.json",
        md="results/bench/cpu.md",
    log:
        "results/logs/bench/cpu.log",
    params:
        extra=config.get("benchmark", {}).get("args", ""),
    threads: 64  # scaled down to the cores given (--cores)
    conda:
        "../../envs/bench.yaml"
    resources:
        gpu=0,
    shell:
        "python {input.script} --skip-snakemake {params.extra} --out-json {output.json} --out-md {output.md}"
        " 2> {log}"
