"""Scaling sweep bookkeeping, the figure, and one real 2-device point."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from imgrec import scaling  # noqa: E402


def _pts():
    return [{"model": "m", "strategy": "dp", "devices": n, "images_per_s": v, "emulated": n > 1}
            for n, v in [(1, 100.0), (2, 180.0), (4, 300.0)]]


def test_efficiency():
    pts = scaling.add_efficiency(_pts())
    assert [p["ideal_images_per_s"] for p in pts] == [100.0, 200.0, 400.0]
    assert [round(p["scaling_efficiency"], 3) for p in pts] == [1.0, 0.9, 0.75]


def test_figure(tmp_path):
    from imgrec.figures.scaling import plot_scaling

    paths = plot_scaling(scaling.add_efficiency(_pts()), tmp_path / "scaling")
    assert sorted(p.suffix for p in paths) == [".pdf", ".png", ".svg"]
    assert "emulated" in (tmp_path / "scaling.txt").read_text()


def test_one_point_in_a_subprocess():
    p = scaling.run_point("resnet9-w16", "dp", 2, per_device_batch=2, steps=1, warmup=1)
    assert p["devices"] == 2 and p["mesh"]["data"] == 2 and p["emulated"] is True
    assert p["images_per_s"] > 0 and p["flops_per_step"] > 0
