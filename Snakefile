# Rebuilds every result of the talk "image recognition with JAX".
#   snakemake --cores all                       the default config: every experiment, the recap
#   snakemake --cores all results/<exp>.json    one experiment
#   snakemake -n --configfile config/talk.yaml  plan the talk's real runs
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


# The default config, unless the command line names its own (then that one alone:
# `--configfile config/talk.yaml` plans the talk's runs, not the defaults as well).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



validate(config, "workflow/schemas/config.schema.yaml")

sys.path.insert(0, os.path.join(workflow.basedir, "scripts"))
from imgrec.config import check_config  # noqa: E402

check_config(config)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/scaling.smk"
include: "workflow/rules/bench.smk"


rule all:
    input:
        expand("results/{experiment}.json", experiment=EXPERIMENTS),
        "results/recap.csv",
        "results/recap.md",
        "figures" if config["figures"] else [],
    default_target: True
