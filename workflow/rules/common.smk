# Helpers shared by the rules. Config has been validated by the Snakefile.
import json

from imgrec.config import ConfigError, resolve_experiment

EXPERIMENTS = sorted(config["experiments"])
DATA_DIR = config["data_dir"]
SCRIPTS = os.path.join(workflow.basedir, "scripts")
# Jobs run `python` from the environment that runs Snakemake (the project's venv).
envvars:
    "PATH",


os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
CONDA_ENV = "../../envs/cpu.yaml"


wildcard_constraints:
    experiment="[^/]+",
    dataset="[^/]+",


def experiment_spec(experiment):
    """The resolved experiment; a target naming no experiment fails here, before any job runs."""
    try:
        return resolve_experiment(config, experiment)
    except ConfigError as err:
        raise ValueError(f"results/{experiment}.json: {err}") from None


def spec_json(wildcards):
    return json.dumps(experiment_spec(wildcards.experiment), sort_keys=True)


def dataset_spec_json(wildcards):
    if wildcards.dataset not in config["datasets"]:
        raise ValueError(f"unknown dataset {wildcards.dataset!r}; defined: {', '.join(sorted(config['datasets']))}")
    return json.dumps({"key": wildcards.dataset, **config["datasets"][wildcards.dataset]}, sort_keys=True)


def prepared_meta(wildcards):
    return f"{DATA_DIR}/{experiment_spec(wildcards.experiment)['dataset']}/meta.json"


def launcher(wildcards):
    """How a training command starts: directly; as local processes emulating the hosts of a
    multi-host target (with `emulate`); or on every worker of a Cloud TPU pod slice."""
    spec = experiment_spec(wildcards.experiment)
    hw = spec["hardware_spec"]
    hosts = hw.get("hosts", 1)
    if hosts == 1:
        return ""
    if spec["emulate"]:
        return (f"python {os.path.join(SCRIPTS, 'launch_local.py')} --processes {hosts}"
                f" --devices-per-process {hw['devices'] // hosts} --")
    return f"python {os.path.join(SCRIPTS, 'launch_tpu_pod.py')} --target {hw['name']} --no-sync --"


def gpus(wildcards):
    """GPUs a training job holds (for `--resources gpu=N` and the cluster profiles)."""
    hw = experiment_spec(wildcards.experiment)["hardware_spec"]
    return hw["devices"] if hw["platform"] == "gpu" and not config["emulate"] else 0


def machine_cores(wildcards):
    """Threads for a training job: every core given to Snakemake (--cores), since XLA uses the
    whole machine anyway; 1 when no core count was given (dry runs, rule graphs)."""
    return workflow.resource_settings.cores or 1
