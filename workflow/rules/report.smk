rule recap:
    input:
        script=os.path.join(SCRIPTS, "make_recap.py"),
        results=expand("results/{experiment}.json", experiment=EXPERIMENTS),
        references=config["references_file"],
    output:
        csv="results/recap.csv",
        md="results/recap.md",
    log:
        "results/logs/recap.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} --references {input.references} --csv {output.csv} --md {output.md}"
        " {input.results} 2>&1 | tee {log}"
