rule evaluate:
    input:
        script=os.path.join(SCRIPTS, "evaluate_model.py"),
        data=prepared_meta,
        checkpoint="results/checkpoints/{experiment}",
        summary="results/train/{experiment}.json",
    output:
        result="results/{experiment}.json",
    params:
        spec=spec_json,
        data=lambda wildcards, input: os.path.dirname(input.data),
    log:
        "results/logs/evaluate/{experiment}.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} --spec {params.spec:q} --data {params.data}"
        " --checkpoint {input.checkpoint} --train-summary {input.summary} --out {output.result} 2>&1 | tee {log}"
