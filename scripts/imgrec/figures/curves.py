"""Figure: training curves. Loss and accuracy per epoch, every experiment.

One colour per experiment; solid lines are the training split (mean over the
epoch's steps), dashed lines the test split (after each epoch, or at each of
the schedule's ``evals_per_epoch`` evaluations).

CLI::

    python scripts/make_figures.py curves --out results/figures/training_curves results/*.json
"""

from __future__ import annotations

from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from imgrec.figures.common import color_for, dataset_label, placeholder, results_figure_main
from imgrec.figures.style import apply_style, plt, save_figure, write_caption

TITLE = "Training curves"


def plot_curves(records: list[dict], out_stem):
    records = [r for r in records if r.get("train", {}).get("curve")]
    if not records:
        return placeholder(out_stem, TITLE, "No training curves in the results yet",
                           f"{TITLE}. No result with a per-epoch curve was given.")
    apply_style()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2)
    any_test = False
    min_epoch, max_epoch = 1, 1
    for i, r in enumerate(records):
        curve = sorted(r["train"]["curve"], key=lambda c: c["epoch"])
        epochs = [c["epoch"] for c in curve]
        max_epoch = max(max_epoch, *epochs)
        color = color_for(i)
        label = f"{r['experiment']} ({r['precision']})"
        ax_loss.plot(epochs, [c["train_loss"] for c in curve], "-o", color=color, ms=4, label=label)
        ax_acc.plot(epochs, [100 * c["train_accuracy"] for c in curve], "-o", color=color, ms=4)
        # the test split at every evaluation (several per epoch with evals_per_epoch), else per epoch
        tests = r["train"].get("evals") or (curve if all("test_loss" in c for c in curve) else [])
        if tests:
            any_test = True
            at = [c["epoch"] for c in tests]
            min_epoch = min(min_epoch, *at)
            ax_loss.plot(at, [c["test_loss"] for c in tests], "--s", color=color, ms=4, alpha=0.85)
            ax_acc.plot(at, [100 * c["test_accuracy"] for c in tests], "--s", color=color, ms=4, alpha=0.85)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("Cross-entropy loss (log scale)")
    ax_acc.set_ylabel("Accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("Epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(min_epoch - 0.2, max_epoch + 0.2)
    ax_loss.legend(loc="upper right", fontsize=11)
    if any_test:
        ax_acc.legend(handles=[Line2D([], [], color="0.3", ls="-", marker="o", ms=4, label="train"),
                               Line2D([], [], color="0.3", ls="--", marker="s", ms=4, label="test")],
                      loc="lower right")
    fig.suptitle(TITLE, x=0.01, ha="left", fontsize=18, fontweight="bold")
    fig.tight_layout()
    save_figure(fig, out_stem)
    write_caption(out_stem, caption(records, any_test))
    return fig


def caption(records, any_test) -> str:
    parts = [f"{TITLE} of {len(records)} experiment(s): cross-entropy loss (left, log scale) and accuracy "
             "(right) per epoch; solid: training split (mean over the epoch's steps)"
             + ("; dashed: test split, at each evaluation (after each epoch, or several per epoch)." if any_test
                else ".")]
    for r in records:
        parts.append(f"{r['experiment']}: {r['model']} on {dataset_label(r)}, {r['precision']}, "
                     f"{len(r['train']['curve'])} epoch(s), final test accuracy {100 * r['test']['accuracy']:.2f}%.")
    return " ".join(parts)


def main(argv=None) -> int:
    return results_figure_main(TITLE, plot_curves, argv)
