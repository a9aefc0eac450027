# Scaling curves.
#   snakemake --cores all results/scaling/cpu.json   (the figure: `python scripts/make_figures.py scaling`)
# Each point runs in its own process; on a CPU host the points beyond 1 device
# are emulated (virtual CPU devices) and marked so in the JSON and the figure.


rule scaling:
    input:
        script=os.path.join(SCRIPTS, "measure_scaling.py"),
    output:
        "results/scaling/{name}.json",
    log:
        "results/logs/scaling/{name}.log",
    params:
        devices=config.get("scaling", {}).get("devices", [1, 2, 4, 8]),
        platform=config.get("scaling", {}).get("platform", "cpu"),
    threads: 64  # scaled down to the cores given (--cores)
    conda:
        CONDA_ENV
    resources:
        gpu=0,
    shell:
        "python {input.script} --name {wildcards.name} --devices {params.devices}"
        " --platform {params.platform} --out-dir results/scaling 2>&1 | tee {log}"

