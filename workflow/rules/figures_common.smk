# Helpers of the figures stage (workflow/rules/figures.smk): paths, figure outputs, demo parameters.
import glob
import shlex

from snakemake.io import report as report_flag

from imgrec.figures.deck import FIGURES, NOTEBOOKS, all_files


FIG_DIR = "results/figures"
MAKE_FIGURES = os.path.join(SCRIPTS, "make_figures.py")
NOTEBOOK_SRC = os.path.join(workflow.basedir, "workflow", "notebooks")
COMPUTE_FACTS = os.path.join(workflow.basedir, "config", "facts", "compute_eras.csv")
RESULT_FILES = expand("results/{experiment}.json", experiment=EXPERIMENTS)
WORKFLOW_RULES = sorted(glob.glob(os.path.join(workflow.basedir, "workflow", "rules", "*.smk")))


def figure_outputs(name, category="Figures"):
    """PNG (in the report, with its caption), PDF, SVG and the caption text of one figure."""
    png = f"{FIG_DIR}/{name}.png"
    return [
        report_flag(png, caption=f"../report/{name}.rst", category=category),
        f"{FIG_DIR}/{name}.pdf",
        f"{FIG_DIR}/{name}.svg",
        f"{FIG_DIR}/{name}.txt",
    ]


def demo_dataset(notebook):
    """The dataset a demo trains on: the configured one, else that of the first experiment (by name)
    training the demo's model, preferring one in the demo's precision. None for notebooks without data."""
    spec = config["notebooks"][notebook]
    if "model" not in spec:
        return None
    dataset = spec.get("dataset")
    if dataset is None:
        same_model = [(name, e) for name, e in sorted(config["experiments"].items()) if e["model"] == spec["model"]]
        same_precision = [(n, e) for n, e in same_model if e["precision"] == spec["precision"]]
        if not same_model:
            raise ValueError(
                f"notebooks.{notebook}: no experiment trains {spec['model']!r}, so there is no default dataset;"
                f" set notebooks.{notebook}.dataset to one of: {', '.join(sorted(config['datasets']))}"
            )
        dataset = (same_precision or same_model)[0][1]["dataset"]
    if dataset not in config["datasets"]:
        raise ValueError(
            f"notebooks.{notebook}.dataset: {dataset!r} is not a configured dataset "
            f"(defined: {', '.join(sorted(config['datasets']))})"
        )
    return dataset


def notebook_data(wildcards):
    """The prepared dataset a demo trains on (none for the others)."""
    dataset = demo_dataset(wildcards.notebook)
    return [] if dataset is None else f"{DATA_DIR}/{dataset}/meta.json"


def notebook_parameters(wildcards):
    """papermill parameters from the config's `notebooks:` section, as JSON."""
    spec = dict(config["notebooks"][wildcards.notebook])
    parameters = spec.pop("parameters", {})
    spec.pop("dataset", None)
    dataset = demo_dataset(wildcards.notebook)
    if dataset is not None:
        spec["data_dir"] = f"{DATA_DIR}/{dataset}"
    return json.dumps({**spec, **parameters}, sort_keys=True)
