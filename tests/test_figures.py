"""Every figure kind renders, is not blank, and stays laid out for 1 to 16 runs."""

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from marginlab.config import apply_overrides
from marginlab.plots import FIGURES
from marginlab.report import figure, write_report
from marginlab.sweep import grid_overrides, run_trial

SWEEP = {
    "name": "gaussians",
    "loss": "logistic",
    "data": {"name": "gaussians", "params": {"n": 30, "d": 3}},
    "model": {"kind": "linear"},
    "train": {"schedule": "normalized", "max_epochs": 20, "target_log10_loss": None},
    "log": {"every": 4},
}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A 16-trial sweep directory as `marginlab sweep` writes it (trials by their overrides)."""
    root = tmp_path_factory.mktemp("sweep")
    grid = grid_overrides(["seed=0,1,2,3", "train.alpha=0.25,0.5,1.0,2.0"])
    rows = []
    for overrides in grid:
        trial = ",".join(overrides)
        rows.append(
            {"trial": trial, **run_trial(apply_overrides(SWEEP, overrides), str(root / trial))}
        )
    pd.DataFrame(rows).to_csv(root / "summary.csv", index=False)
    return root


def rendered(fig) -> tuple[np.ndarray, list[str]]:
    """The figure as RGB pixels, and the warnings that drawing it raised."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(buffer, format="png", dpi=50)
    with Image.open(buffer) as image:
        pixels = np.asarray(image.convert("RGB"))
    return pixels, [str(w.message) for w in caught]


def assert_drawn(pixels: np.ndarray, what: str) -> None:
    ink = (pixels < 200).any(axis=2).mean()  # share of pixels that are not near white
    colours = len(np.unique(pixels.reshape(-1, 3) // 32, axis=0))
    assert 0.01 < ink < 0.6, (what, ink)
    assert colours >= 4, (what, colours)


@pytest.mark.parametrize("what", list(FIGURES))
def test_every_figure_kind_renders_something(recorded_runs, what):
    """Both runs overlaid (the boundary: one panel per 2-d run); the single-run styles are
    checked line by line in test_plots."""
    fig = figure(recorded_runs, what)
    pixels, caught = rendered(fig)
    assert_drawn(pixels, what)
    assert not [w for w in caught if "layout" in w], caught
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        assert ax.get_xlabel() and ax.get_ylabel(), (what, ax.get_title())
        labelled = [t for t in ax.get_yticklabels() if t.get_text()]
        assert len(labelled) >= 2, (what, ax.get_ylabel())


def test_overlaid_runs_are_told_apart_and_keyed_under_the_panels(recorded_runs):
    fig = figure(recorded_runs, "margins")
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["digits", "xor"]
    lines = [line for line in fig.axes[0].lines if not line.get_label().startswith("_")]
    by_run = {}
    for line in lines:
        by_run.setdefault(line.get_label().split(":")[0], set()).add(line.get_color())
    assert len(by_run) == 2 and by_run["digits"].isdisjoint(by_run["xor"])


@pytest.mark.parametrize("count", [1, 4, 16])
def test_plot_of_1_4_or_16_runs_has_no_layout_warning(sweep_dir, count):
    trials = sorted(p for p in sweep_dir.iterdir() if p.is_dir())[:count]
    for what in ("training",):
        fig = figure(trials, what)
        pixels, caught = rendered(fig)
        assert not caught, (what, count, caught)
        assert_drawn(pixels, what)
        if count > 4:
            # long trial names become r1, r2, ... with the key in the legend of the runs
            texts = [t.get_text() for t in fig.legends[0].get_texts()]
            assert texts[0].startswith("r1  ") and len(texts) == count


def test_report_of_a_16_trial_sweep_renders_without_layout_warnings(sweep_dir, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = write_report([sweep_dir], tmp_path / "sweep.html")
    assert not [str(w.message) for w in caught if "layout" in str(w.message)]
    text = path.read_text(encoding="utf-8")
    assert "marginlab report: 16 runs" in text
    # the key table: every short label with its trial
    for i, trial in enumerate(pd.read_csv(sweep_dir / "summary.csv")["trial"]):
        assert f"<td>r{i + 1}</td><td>{trial}</td>" in text
