"""The figures stage: deterministic rendering, the deck's index, and `snakemake figures/` end to end."""

import copy
import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, TINY_CONFIG
from imgrec.figures import curves, deck, precision, recap_table, rulegraph, scaling_curves
from imgrec.figures.common import load_results
from imgrec.figures.style import plt
from test_pipeline import snakemake, write_config

FORMATS = ("png", "pdf", "svg", "txt")


# ---------------------------------------------------------------- inputs made here
def fake_result(experiment, model, dataset, precision_, accuracy, images_per_s, epochs=3, synthetic=False):
    curve = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": min(0.5 + 0.1 * e, 1.0), "test_loss": 1.2 / e,
              "test_accuracy": min(0.45 + 0.1 * e, 1.0), "images_per_s": images_per_s} for e in range(1, epochs + 1)]
    return {"experiment": experiment, "model": model, "precision": precision_,
            "dataset": {"key": dataset, "name": dataset, "source": "synthetic" if synthetic else dataset,
                        "synthetic": synthetic},
            "hardware": {"requested": "cpu", "actual": "cpu", "emulated": False, "devices": 1},
            "test": {"accuracy": accuracy, "loss": 0.1, "top5_accuracy": 1.0},
            "train": {"images_per_s": images_per_s, "train_seconds": 10.0, "total_flops": 1e12,
                      "flops_per_step": 1e9, "epochs": epochs, "curve": curve},
            "provenance": {"created": "2025-06-01T00:00:00+00:00"}}


RESULTS = [
    fake_result("mnist_cnn_fp32", "mnist_cnn", "digits", "fp32", 0.99, 3000.0, epochs=4),
    fake_result("cifar_cnn_bf16", "cifar_cnn", "cifar10_synthetic", "bf16", 0.97, 310.0, synthetic=True),
    fake_result("cifar_cnn_fp32", "cifar_cnn", "cifar10_synthetic", "fp32", 0.98, 320.0, synthetic=True),
]

SCALING = {"kind": "weak scaling (fixed batch per device)", "note": "emulated points share one host",
           "points": [{"model": "resnet9-w16", "strategy": "dp", "devices": n, "images_per_s": 100.0 * n ** 0.7,
                       "emulated": n > 1} for n in (1, 2, 4)]
           + [{"model": "vit-tiny", "strategy": "tp", "devices": 8, "skipped": "only 4 devices"}]}

DOT = """digraph snakemake_dag {
    graph[bgcolor=white, margin=0];
    node[shape=box, style=rounded, fontname=sans, fontsize=10, penwidth=2];
    0[label = "all", color = "0.00 0.6 0.85", style="rounded"];
    1[label = "evaluate", color = "0.13 0.6 0.85", style="rounded"];
    2[label = "prepare_dataset", color = "0.27 0.6 0.85", style="rounded"];
    3[label = "train", color = "0.53 0.6 0.85", style="rounded"];
    4[label = "recap", color = "0.40 0.6 0.85", style="rounded"];
    1 -> 0
    4 -> 0
    3 -> 1
    2 -> 1
    2 -> 3
    1 -> 4
}
"""


@pytest.fixture(scope="module")
def result_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    paths = []
    for r in RESULTS:
        path = root / f"{r['experiment']}.json"
        path.write_text(json.dumps(r))
        paths.append(str(path))
    (root / "recap.csv").write_text(
        "experiment,model,dataset,data_source,precision,hardware,test_accuracy,reference_accuracy,"
        "reference_hardware,reference_time,train_seconds,images_per_s,epochs,reference_source\n"
        "cifar_cnn_bf16,cifar_cnn,synthetic,synthetic,bf16,cpu x1,0.97,,,,10.0,310.0,3,\n"
        "mnist_cnn_fp32,mnist_cnn,mnist,tfds,fp32,cpu x1,0.99,0.9917,TPU v3-8,1 min,"
        "10.0,3000.0,4,\"flax examples/mnist README\"\n")
    (root / "scaling.json").write_text(json.dumps(SCALING))
    return root, paths


def render(kind, root, paths, stem):
    """One figure through make_figures' modules (the same code the rules run)."""
    if kind == "precision":
        fig = precision.plot_precision(load_results(paths), stem)
    elif kind == "curves":
        fig = curves.plot_curves(load_results(paths), stem)
    elif kind == "recap_table":
        assert recap_table.main(["--recap", str(root / "recap.csv"), "--out", str(stem)]) == 0
        return
    elif kind == "scaling":
        fig = scaling_curves.plot_scaling(scaling_curves.load_scaling([root / "scaling.json"]), stem)
    elif kind == "scaling_none":
        fig = scaling_curves.plot_scaling(scaling_curves.load_scaling([]), stem)
    elif kind in ("rulegraph_graphviz", "rulegraph_layered"):
        if kind == "rulegraph_graphviz" and not shutil.which("dot"):
            pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
        fig = rulegraph.plot_rulegraph(DOT, stem, engine=kind.split("_")[1])
    if fig is not None:
        plt.close(fig)


@pytest.mark.parametrize("kind", ["precision", "curves", "recap_table", "scaling", "scaling_none",
                                  "rulegraph_graphviz", "rulegraph_layered"])
def test_render_twice_gives_identical_bytes(kind, result_files, tmp_path):
    root, paths = result_files
    outputs = []
    for run in ("a", "b"):
        stem = tmp_path / run / "figure"
        render(kind, root, paths, stem)
        outputs.append({ext: (tmp_path / run / f"figure.{ext}").read_bytes() for ext in FORMATS})
    for ext in FORMATS:
        assert outputs[0][ext], f"{kind}: empty {ext}"
        assert outputs[0][ext] == outputs[1][ext], f"{kind}: {ext} differs between two renders"
    assert outputs[0]["png"].startswith(b"\x89PNG")
    assert b"CreationDate" not in outputs[0]["pdf"] and b"<dc:date>" not in outputs[0]["svg"]


def test_precision_pairs_same_model_and_data_only():
    pairs = precision.find_pairs(load_results([]) + [json.loads(json.dumps(r)) for r in RESULTS])
    assert len(pairs) == 1
    assert (pairs[0]["fp32"]["experiment"], pairs[0]["bf16"]["experiment"]) == ("cifar_cnn_fp32", "cifar_cnn_bf16")


def test_curves_plot_every_evaluation(tmp_path):
    result = json.loads(json.dumps(RESULTS[0]))
    result["train"]["evals"] = [{"step": 5 * k, "epoch": k / 2, "elapsed_train_seconds": float(k), "test_loss": 1.0 / k,
                                 "test_accuracy": 0.4 + 0.05 * k} for k in range(1, 9)]
    fig = curves.plot_curves([result], tmp_path / "c")
    test_line = fig.axes[1].get_lines()[1]  # train, then test
    assert list(test_line.get_xdata()) == [k / 2 for k in range(1, 9)]
    assert fig.axes[1].get_xlim()[0] < 0.5
    plt.close(fig)


def test_placeholders_say_why(tmp_path):
    plt.close(precision.plot_precision([RESULTS[0]], tmp_path / "p"))
    assert "No pair" in (tmp_path / "p.txt").read_text()
    fig = scaling_curves.plot_scaling([], tmp_path / "s")
    if fig is not None:
        plt.close(fig)
    assert "No scaling results yet" in (tmp_path / "s.txt").read_text()


def test_scaling_uses_the_measured_points(result_files, tmp_path):
    root, _ = result_files
    loaded = scaling_curves.load_scaling([root / "scaling.json"])
    lines = scaling_curves.series(loaded)
    assert [(s["model"], s["strategy"], len(s["points"])) for s in lines] == [("resnet9-w16", "dp", 3)]
    render("scaling", root, [], tmp_path / "s")
    assert "emulated" in (tmp_path / "s.txt").read_text()


def test_recap_table_markdown_has_reference_and_hardware(result_files, tmp_path):
    root, _ = result_files
    render("recap_table", root, [], tmp_path / "recap")
    md = (tmp_path / "recap.md").read_text()
    assert "99.17% (TPU v3-8, 1 min)" in md and "cpu x1" in md
    assert "synthetic" in (tmp_path / "recap.txt").read_text()


def test_rulegraph_parses_snakemakes_dot():
    nodes, edges = rulegraph.parse_dot(DOT)
    assert sorted(n["label"] for n in nodes.values()) == ["all", "evaluate", "prepare_dataset", "recap", "train"]
    label = {n: spec["label"] for n, spec in nodes.items()}
    assert ("prepare_dataset", "train") in [(label[t], label[h]) for t, h in edges] and len(edges) == 6
    assert rulegraph.node_color("0.00 0.6 0.85") == pytest.approx((0.85, 0.34, 0.34))


def test_rulegraph_does_not_depend_on_snakemakes_numbering(tmp_path):
    """Snakemake numbers rules and orders edges differently from run to run."""
    relabel = {"0": "4", "1": "3", "2": "0", "3": "1", "4": "2"}
    lines = []
    for line in DOT.splitlines():
        m = re.match(r"(\s*)(\d+)(\[.*)", line) or re.match(r"(\s*)(\d+ -> )(\d+)", line)
        if m and "->" in line:
            t, h = line.split("->")
            line = f"    {relabel[t.strip()]} -> {relabel[h.strip()]}"
        elif m:
            line = m.group(1) + relabel[m.group(2)] + m.group(3)
        lines.append(line)
    edges_at = [i for i, line in enumerate(lines) if "->" in line]
    shuffled = lines[:edges_at[0]] + [lines[i] for i in reversed(edges_at)] + lines[edges_at[-1] + 1:]
    other = "\n".join(shuffled) + "\n"
    assert other != DOT and rulegraph.parse_dot(other) == rulegraph.parse_dot(DOT)
    for name, text in (("a", DOT), ("b", other)):
        plt.close(rulegraph.plot_rulegraph(text, tmp_path / name, engine="layered"))
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_rulegraph_falls_back_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(rulegraph.shutil, "which", lambda name: None)
    plt.close(rulegraph.plot_rulegraph(DOT, tmp_path / "rg"))
    assert "built-in layered layout" in (tmp_path / "rg.txt").read_text()
    assert (tmp_path / "rg.dot").read_text() == rulegraph.to_dot(*rulegraph.parse_dot(DOT))
    assert "prepare_dataset" in (tmp_path / "rg.dot").read_text()


# ---------------------------------------------------------------- the deck
def test_deck_lists_every_figure_and_demo_once():
    shown = [name for _, name in deck.ORDER]
    assert sorted(shown) == sorted([*deck.FIGURES, *deck.NOTEBOOKS]) and len(set(shown)) == len(shown)
    notebooks = sorted(p.stem for p in (REPO / "workflow" / "notebooks").glob("*.ipynb"))
    assert notebooks == sorted(deck.NOTEBOOKS)


def check_index(fig_dir):
    """index.html references every figure and demo, and everything it references exists."""
    text = (fig_dir / "index.html").read_text()
    refs = deck.referenced_files(text)
    for kind, name in deck.ORDER:
        wanted = [f"{name}.png", f"{name}.pdf", f"{name}.svg"] if kind == "figure" else \
            [f"notebooks/{name}.html", f"notebooks/{name}.ipynb"]
        for f in wanted:
            assert f in refs, f"index.html does not reference {f}"
    for f in refs:
        assert (fig_dir / f).is_file(), f"index.html references {f}, which does not exist"
    positions = [text.index(f'id="{name}"') for _, name in deck.ORDER]
    assert positions == sorted(positions), "sections are not in the talk's order"
    return text


def test_index_complete_and_refuses_missing_files(tmp_path):
    for f in deck.all_files():
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("| a | b |\n|---|---|\n| 1 | 2 |\n" if f.endswith(".md") else f"caption of {f}")
    deck.write_index(tmp_path, tmp_path / "index.html")
    text = check_index(tmp_path)
    assert "caption of compute_eras.txt" in text and "<td>1</td>" in text
    first = (tmp_path / "index.html").read_bytes()
    deck.write_index(tmp_path, tmp_path / "index.html")
    assert (tmp_path / "index.html").read_bytes() == first
    (tmp_path / "scaling.png").unlink()
    with pytest.raises(FileNotFoundError, match="scaling.png"):
        deck.write_index(tmp_path, tmp_path / "again.html")


@pytest.mark.parametrize("name", sorted(deck.NOTEBOOKS))
def test_notebooks_committed_clean_with_parameters(name):
    nb = json.loads((REPO / "workflow" / "notebooks" / f"{name}.ipynb").read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in nb["cells"] if c["cell_type"] == "code")
    if name.endswith("_demo"):  # the parameters the rule passes (figures_common.smk: notebook_parameters)
        names = {line.split("=")[0].strip() for line in "".join(tagged[0]["source"]).splitlines() if "=" in line}
        assert {"data_dir", "model", "precision", "epochs", "batch_size", "learning_rate", "max_train_examples",
                "seed", "min_test_accuracy"} <= names


@pytest.mark.parametrize("script", ["make_figures.py", "run_notebook.py"])
def test_entry_points_have_help(script):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "usage" in proc.stdout.lower()


def test_make_figures_rejects_unknown_figure():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "make_figures.py"), "nope", "--out", "x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown figure" in proc.stderr


# ---------------------------------------------------------------- through Snakemake
FIGURES_CONFIG = {
    **copy.deepcopy(TINY_CONFIG),
    "figures": True,
    "notebooks": {  # small and quick; the datasets default to the experiments' (digits, tiny_synthetic)
        "jax_hello_world": {"parameters": {"n": 256, "repeats": 3}},
        "custom_gradients": {"parameters": {"n": 200}},
        "mnist_demo": {"epochs": 1},
        "cifar_demo": {"epochs": 2, "batch_size": 32, "parameters": {"min_test_accuracy": 0.0}},
    },
}
FIGURE_RULES = {"figure_compute_eras", "figure_scaling", "figure_precision", "figure_training_curves",
                "figure_recap_table", "figure_rulegraph", "notebook", "figures_index", "figures"}


def planned_rules(proc):
    text = proc.stdout + proc.stderr
    rows = [line.split() for line in text.split("Reasons:")[0].splitlines()]
    return {r[0]: int(r[1]) for r in rows if len(r) == 2 and r[1].isdigit()}


@pytest.mark.parametrize("target", ["figures/", "figures"])
def test_dry_run_plans_the_deck(target, tmp_path):
    write_config(tmp_path, copy.deepcopy(FIGURES_CONFIG))
    counts = planned_rules(snakemake(tmp_path, target, "-n", "--quiet", "rules"))
    assert FIGURE_RULES <= set(counts), counts
    assert counts["notebook"] == 4 and counts["train"] == len(TINY_CONFIG["experiments"])
    assert not (tmp_path / "results").exists()


def test_figures_are_off_in_rule_all_when_configured(tmp_path):
    config = copy.deepcopy(FIGURES_CONFIG)
    config["figures"] = False
    write_config(tmp_path, config)
    counts = planned_rules(snakemake(tmp_path, "-n", "--quiet", "rules"))
    assert "figures" not in counts and "recap" in counts


def test_demo_without_a_dataset_fails_with_instructions(tmp_path):
    config = copy.deepcopy(FIGURES_CONFIG)
    config["notebooks"]["cifar_demo"]["dataset"] = "no_such_data"
    write_config(tmp_path, config)
    proc = snakemake(tmp_path, "-n", "figures/", check=False)
    assert proc.returncode != 0 and "notebooks.cifar_demo.dataset" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def deck_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("deck")
    write_config(workdir, copy.deepcopy(FIGURES_CONFIG))
    snakemake(workdir, "--cores", "2", "figures/")
    return workdir


def test_end_to_end_builds_the_deck(deck_workdir):
    fig_dir = deck_workdir / "figures"
    for f in deck.all_files():
        assert (fig_dir / f).is_file() and (fig_dir / f).stat().st_size > 0, f
    check_index(fig_dir)
    assert "tiny_cifar_bf16" in (fig_dir / "training_curves.txt").read_text()
    assert "No scaling results yet" in (fig_dir / "scaling.txt").read_text()
    assert "Stars: 2 training run(s)" in (fig_dir / "compute_eras.txt").read_text()
    rules = (fig_dir / "rulegraph.txt").read_text()
    assert "figures_index" in rules and "train" in rules
    executed = json.loads((fig_dir / "notebooks" / "mnist_demo.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["data_dir"] == "results/data/digits"
    outputs = json.dumps([c.get("outputs", []) for c in executed["cells"]])
    assert "per-class accuracy" in outputs and '"output_type": "error"' not in outputs


def test_rerun_with_nothing_changed_runs_nothing(deck_workdir):
    proc = snakemake(deck_workdir, "--cores", "2", "figures/")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_forced_rerender_gives_identical_bytes(deck_workdir):
    """Through the rules (the others are rendered twice above): the rule graph comes from a fresh
    `snakemake --rulegraph`, the others from the pipeline's real results."""
    stems = ["compute_eras", "training_curves", "rulegraph"]
    before = {f"{s}.{ext}": (deck_workdir / "figures" / f"{s}.{ext}").read_bytes() for s in stems for ext in FORMATS}
    snakemake(deck_workdir, "--cores", "2", "figures/", "--forcerun", *[f"figure_{s}" for s in stems])
    changed = [f for f, data in before.items() if (deck_workdir / "figures" / f).read_bytes() != data]
    assert not changed, f"re-rendering changed {changed}"


def test_report(deck_workdir):
    snakemake(deck_workdir, "--report", "report.html", "figures/")
    text = (deck_workdir / "report.html").read_text(errors="replace")
    assert len(text) > 100_000
    for name in ("compute_eras.png", "rulegraph.png", "mnist_demo.html", "cifar_demo.html"):
        assert name in text, name


def test_failing_cell_fails_the_rule(tmp_path):
    bad = tmp_path / "bad.ipynb"
    cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": []}
    bad.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{**cell, "id": "p", "metadata": {"tags": ["parameters"]}, "source": ["x = 1"]},
                  {**cell, "id": "f", "source": ["raise RuntimeError(f'this cell fails with x={x}')"]}]}))
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "run_notebook.py"), "--notebook", str(bad),
                           "--parameters", '{"x": 2}', "--out", str(tmp_path / "out.ipynb"),
                           "--html", str(tmp_path / "out.html")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "RuntimeError: this cell fails with x=2" in proc.stderr, proc.stderr[-2000:]
    assert (tmp_path / "out.ipynb").exists() and not (tmp_path / "out.html").exists()
