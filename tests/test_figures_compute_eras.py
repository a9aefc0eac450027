"""Compute-eras figure: fact table, deterministic rendering, own runs in range."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from imgrec.figures import compute_eras as ce
from imgrec.figures.style import plt

FACTS = "config/facts/compute_eras.csv"

REQUIRED = {  # system: (year, pfs-days, era)
    "AlexNet": (2012, 0.0058, "modern"),
    "Dropout": (2012, 0.0021, "modern"),
    "Visualizing and Understanding ConvNets": (2013, 0.0062, "modern"),
    "DQN": (2013, 2.7e-5, "modern"),
    "GoogLeNet": (2014, 0.018, "modern"),
    "Seq2Seq": (2014, 0.093, "modern"),
    "VGG": (2014, 0.12, "modern"),
    "DeepSpeech2": (2015, 0.25, "modern"),
    "ResNets": (2015, 0.117, "modern"),
    "Neural Architecture Search": (2016, 31, "modern"),
    "Neural Machine Translation": (2016, 79, "modern"),
    "Xception": (2016, 5.0, "modern"),
    "TI7 Dota 1v1": (2017, 6.97, "modern"),
    "AlphaGo Zero": (2017, 1860, "modern"),
    "AlphaZero": (2017, 420, "modern"),
    "Perceptron": (1960, 8.3e-12, "first"),
    "NETtalk": (1987, 3.3e-10, "first"),
    "ALVINN": (1989, 1.2e-10, "first"),
    "TD-Gammon": (1992, 2.1e-7, "first"),
    "LeNet-5": (1998, 3.3e-8, "first"),
    "BiLSTM for speech": (2005, 2.8e-7, "first"),
}


@pytest.fixture(scope="module")
def facts():
    return ce.load_facts(FACTS)


def test_fact_table_has_required_points(facts):
    raw = pd.read_csv(FACTS, dtype=str)
    assert list(raw.columns) == ["system", "date", "pfs_days", "era", "source"]
    assert raw["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert raw["system"].is_unique
    assert raw["source"].notna().all()
    by_name = facts.set_index("system")
    for system, (year, pfs, era) in REQUIRED.items():
        row = by_name.loc[system]
        assert row["date"].year == year, system
        assert row["pfs_days"] == pfs, system  # exact value as published
        assert row["era"] == era, system
        src = row["source"]
        assert ("Epoch AI" in src) if era == "first" else ("AI and Compute" in src), system


def _own_runs():
    return pd.DataFrame({"system": ["tiny_cnn", "tinier"],
                         "date": pd.to_datetime(["2025-05-01", "2025-06-01"]),
                         "flops": [5e11, 1e5]})  # 1e5 FLOP ~ 1.2e-15 pfs-days


def test_render_is_byte_identical(tmp_path, facts):
    digests = []
    for run in ("a", "b"):
        stem = tmp_path / run / "compute_eras"
        plt.close(ce.plot_compute_eras(facts, _own_runs(), stem))
        digests.append({ext: (stem.parent / f"compute_eras.{ext}").read_bytes()
                        for ext in ("png", "pdf", "svg", "txt")})
    for ext in ("png", "pdf", "svg", "txt"):
        assert digests[0][ext], ext
        assert digests[0][ext] == digests[1][ext], f"{ext} differs between renders"
    assert digests[0]["png"].startswith(b"\x89PNG")
    assert b"CreationDate" not in digests[0]["pdf"]
    assert b"<dc:date>" not in digests[0]["svg"]


def test_y_axis_covers_own_runs_and_facts(tmp_path, facts):
    own = _own_runs()
    fig = ce.plot_compute_eras(facts, own, tmp_path / "ce")
    lo, hi = fig.axes[0].get_ylim()
    plt.close(fig)
    pfs = own["flops"] / ce.FLOP_PER_PFS_DAY
    assert lo <= pfs.min() and hi >= pfs.max()
    assert lo <= facts["pfs_days"].min() and hi >= facts["pfs_days"].max()
    caption = (tmp_path / "ce.txt").read_text()
    assert "slopes are fixed" in caption and "intercept" in caption and "this pipeline" in caption


def test_fixed_slope_fit_only_moves_intercept():
    years = np.array([1990.0, 2000.0, 2010.0])
    slope = np.log10(2) / 2.0
    y = 10 ** (-50 + slope * years) * np.array([2.0, 0.5, 1.0])  # scatter around the line
    a, b = ce.fit_fixed_slope(years, y, 2.0)
    assert b == pytest.approx(slope)
    assert a == pytest.approx(-50.0)  # log-residuals +log2, -log2, 0 cancel
    assert ce.DOUBLING_YEARS == {"first": 2.0, "modern": pytest.approx(3.4 / 12)}


def test_load_own_runs_is_tolerant(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({
        "experiment": "nested", "train": {"total_flops": 1e12},
        "provenance": {"created": "2025-06-01T12:00:00+00:00"}}))
    (tmp_path / "b.json").write_text(json.dumps({
        "experiment": "dotted", "train.total_flops": 2e12, "provenance.created": "2025-07-01"}))
    (tmp_path / "c.json").write_text(json.dumps({"experiment": "no_flops"}))
    (tmp_path / "d.json").write_text("{not json")
    (tmp_path / "e.json").write_text("[1, 2]")
    runs = ce.load_own_runs(tmp_path)
    assert list(runs["system"]) == ["nested", "dotted"]
    assert list(runs["flops"]) == [1e12, 2e12]
    assert ce.load_own_runs(tmp_path / "missing").empty


def test_load_epoch_csv(tmp_path):
    path = tmp_path / "notable_ai_models.csv"
    pd.DataFrame({
        "Model": ["Old", "New", "NoCompute", "NoDate"],
        "Publication date": ["1990-01-01", "2020-05-28", "2021-01-01", None],
        "Training compute (FLOP)": [8.64e19, 3.14e23, None, 1e20],
        "Domain": ["x", "y", "z", "w"],
    }).to_csv(path, index=False)
    df = ce.load_epoch_csv(path)
    assert list(df["system"]) == ["Old", "New"]
    assert df["pfs_days"].iloc[0] == pytest.approx(1.0)
    assert list(df["era"]) == ["first", "modern"]


def test_cli(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "run.json").write_text(json.dumps({
        "experiment": "cli_run", "train": {"total_flops": 3e11},
        "provenance": {"created": "2025-06-01T00:00:00Z"}}))
    out = tmp_path / "figures" / "compute_eras"
    assert ce.main(["--facts", FACTS, "--results-dir", str(res), "--out", str(out)]) == 0
    for ext in ("png", "pdf", "svg", "txt"):
        assert (out.parent / f"compute_eras.{ext}").stat().st_size > 0
    assert re.search(r"1 training run", (out.parent / "compute_eras.txt").read_text())
