rule prepare_dataset:
    input:
        script=os.path.join(SCRIPTS, "prepare_data.py"),
    output:
        meta=f"{DATA_DIR}/{{dataset}}/meta.json",
    params:
        spec=dataset_spec_json,
        out=lambda wildcards, output: os.path.dirname(output.meta),
    log:
        "results/logs/prepare/{dataset}.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} --dataset-spec {params.spec:q} --out {params.out} 2>&1 | tee {log}"
