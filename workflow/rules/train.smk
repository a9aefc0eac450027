rule train:
    input:
        script=os.path.join(SCRIPTS, "train_model.py"),
        data=prepared_meta,
    output:
        checkpoint=directory("results/checkpoints/{experiment}"),
        summary="results/train/{experiment}.json",
        metrics="results/train/{experiment}.metrics.jsonl",
    params:
        spec=spec_json,
        data=lambda wildcards, input: os.path.dirname(input.data),
        resume_dir=lambda wildcards: f"results/work/{wildcards.experiment}",
        launcher=launcher,
    log:
        "results/logs/train/{experiment}.log",
    # XLA uses every core of the machine: one training at a time per machine, so runs do not
    # share cores and each result's images/s is the machine's
    threads: machine_cores
    resources:
        gpu=gpus,
    conda:
        CONDA_ENV
    shell:
        "{params.launcher} python {input.script} --spec {params.spec:q} --data {params.data}"
        " --checkpoint {output.checkpoint} --summary {output.summary} --metrics {output.metrics}"
        " --resume-dir {params.resume_dir} 2>&1 | tee {log}"
