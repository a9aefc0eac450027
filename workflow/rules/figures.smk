# The talk's figures, tables, executed demos and index.html: `snakemake --cores all figures/`.
# Each figure is rendered into results/figures/ (PNG, PDF, SVG, caption), the demo notebooks are
# executed there by papermill, and the `figures` rule collects everything into figures/.
include: "figures_common.smk"


report: "../report/workflow.rst"


rule figure_compute_eras:
    input:
        script=MAKE_FIGURES,
        facts=COMPUTE_FACTS,
        results=RESULT_FILES,
    output:
        figure_outputs("compute_eras"),
    params:
        stem=lambda wildcards, output: os.path.splitext(output[0])[0],
        epoch=lambda wildcards: (
            f"--epoch-csv {shlex.quote(config['epoch_csv'])}" if config.get("epoch_csv") else ""
        ),
    log:
        "results/logs/figures/compute_eras.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} compute_eras --facts {input.facts} {params.epoch} --out {params.stem}"
        " {input.results} 2>&1 | tee {log}"


rule figure_scaling:
    input:
        script=MAKE_FIGURES,
        # whatever scaling results exist: the figure says so when there are none
        results=lambda wildcards: sorted(glob.glob("results/scaling/*.json")),
    output:
        figure_outputs("scaling"),
    params:
        stem=lambda wildcards, output: os.path.splitext(output[0])[0],
    log:
        "results/logs/figures/scaling.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} scaling --out {params.stem} {input.results} 2>&1 | tee {log}"


rule figure_precision:
    input:
        script=MAKE_FIGURES,
        results=RESULT_FILES,
    output:
        figure_outputs("precision"),
    params:
        stem=lambda wildcards, output: os.path.splitext(output[0])[0],
    log:
        "results/logs/figures/precision.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} precision --out {params.stem} {input.results} 2>&1 | tee {log}"


rule figure_training_curves:
    input:
        script=MAKE_FIGURES,
        results=RESULT_FILES,
    output:
        figure_outputs("training_curves"),
    params:
        stem=lambda wildcards, output: os.path.splitext(output[0])[0],
    log:
        "results/logs/figures/training_curves.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} curves --out {params.stem} {input.results} 2>&1 | tee {log}"


rule figure_recap_table:
    input:
        script=MAKE_FIGURES,
        recap="results/recap.csv",
    output:
        figure_outputs("recap_table", category="Tables"),
        md=f"{FIG_DIR}/recap_table.md",
    params:
        stem=lambda wildcards, output: os.path.splitext(output[0])[0],
    log:
        "results/logs/figures/recap_table.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} recap_table --recap {input.recap} --out {params.stem} 2>&1 | tee {log}"


rule figure_rulegraph:
    input:
        script=MAKE_FIGURES,
        snakefile=workflow.main_snakefile,
        rules=WORKFLOW_RULES,
    output:
        figure_outputs("rulegraph"),
        dot=f"{FIG_DIR}/rulegraph.dot",
    params:
        stem=lambda wildcards, output: os.path.splitext(output[0])[0],
        configfiles=" ".join(f"--configfile {f}" for f in workflow.overwrite_configfiles),
    log:
        "results/logs/figures/rulegraph.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} rulegraph --snakefile {input.snakefile} --directory . {params.configfiles}"
        " --target all figures --out {params.stem} 2>&1 | tee {log}"


rule notebook:
    input:
        script=os.path.join(SCRIPTS, "run_notebook.py"),
        notebook=os.path.join(NOTEBOOK_SRC, "{notebook}.ipynb"),
        data=notebook_data,
    output:
        ipynb=f"{FIG_DIR}/notebooks/{{notebook}}.ipynb",
        html=report(
            f"{FIG_DIR}/notebooks/{{notebook}}.html",
            caption="../report/notebook.rst",
            category="Demos",
            labels={"notebook": "{notebook}"},
        ),
    params:
        parameters=notebook_parameters,
    wildcard_constraints:
        notebook="|".join(NOTEBOOKS),
    log:
        "results/logs/notebooks/{notebook}.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} --notebook {input.notebook} --parameters {params.parameters:q}"
        " --out {output.ipynb} --html {output.html} 2>&1 | tee {log}"


rule figures_index:
    input:
        script=MAKE_FIGURES,
        files=[f"{FIG_DIR}/{f}" for f in all_files()],
    output:
        f"{FIG_DIR}/index.html",
    params:
        dir=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        "results/logs/figures/index.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} index --dir {params.dir} --out {output} 2>&1 | tee {log}"


# `snakemake figures/` (or `snakemake figures`): the whole deck, collected into figures/.
rule figures:
    input:
        script=MAKE_FIGURES,
        files=[f"{FIG_DIR}/{f}" for f in all_files()],
        index=f"{FIG_DIR}/index.html",
    output:
        # not report()-flagged: a directory needs `--report report.zip`; the report has its files
        directory("figures"),
    params:
        src=lambda wildcards, input: os.path.dirname(input.index),
    log:
        "results/logs/figures/collect.log",
    conda:
        CONDA_ENV
    shell:
        "python {input.script} collect --src {params.src} --dest {output} {input.files} {input.index}"
        " 2>&1 | tee {log}"
