"""Shared slide style and deterministic figure saving.

``save_figure`` writes ``<stem>.png``, ``<stem>.pdf`` and ``<stem>.svg`` with no
variable metadata (dates, software/version strings) and a fixed SVG hash salt,
so rendering the same figure twice gives identical bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless and deterministic; set before pyplot is used

import matplotlib.pyplot as plt  # noqa: E402

PNG_DPI = 200
FORMATS = ("png", "pdf", "svg")

# Per-format metadata: None drops a key matplotlib would otherwise fill in
# with a date or its own version string.
_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
    "svg": {"Creator": None, "Date": None},
}

SLIDE_RC = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: same glyphs everywhere
    "font.size": 14,
    "axes.titlesize": 18,
    "axes.titleweight": "bold",
    "axes.labelsize": 15,
    "xtick.labelsize": 13,
    "ytick.labelsize": 13,
    "legend.fontsize": 12,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.8,
    "lines.linewidth": 2.2,
    "figure.figsize": (12.8, 7.2),  # 16:9
    "figure.dpi": 100,
    "savefig.dpi": PNG_DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.15,
    "svg.hashsalt": "imgrec-figures",  # fixed ids in the SVG
    "svg.fonttype": "path",  # text as paths: no dependency on installed fonts
    "pdf.fonttype": 42,  # embedded TrueType, text stays selectable
    "path.simplify": True,
}


def apply_style() -> None:
    """Set the shared slide style globally (idempotent)."""
    plt.rcParams.update(SLIDE_RC)


def style_context():
    """Context manager with the slide style, for callers that prefer scoping."""
    return plt.rc_context(SLIDE_RC)


def save_figure(fig, stem_path, formats=FORMATS) -> list[Path]:
    """Write ``fig`` as ``<stem>.png|pdf|svg`` reproducibly; return the paths.

    ``SOURCE_DATE_EPOCH`` is pinned while saving as a second guard against
    date stamps (matplotlib honours it for PDF and SVG).
    """
    stem = Path(stem_path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    old_epoch = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "0"
    paths = []
    try:
        with plt.rc_context({"svg.hashsalt": SLIDE_RC["svg.hashsalt"]}):
            for fmt in formats:
                path = stem.with_name(stem.name + "." + fmt)
                kwargs = {"format": fmt, "metadata": dict(_METADATA[fmt])}
                if fmt == "png":
                    kwargs["dpi"] = PNG_DPI
                fig.savefig(path, **kwargs)
                paths.append(path)
    finally:
        if old_epoch is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old_epoch
    return paths


def write_caption(stem_path, text: str) -> Path:
    """Write the caption next to the figure as ``<stem>.txt``."""
    stem = Path(stem_path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    path = stem.with_name(stem.name + ".txt")
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path
