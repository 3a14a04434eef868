"""The Ray sweep: a grid of run directories, failures reported, finished trials skipped."""

from __future__ import annotations

import pandas as pd
import pytest

from marginlab.sweep import grid_overrides, sweep

ray = pytest.importorskip("ray", reason="ray is not installed; `marginlab sweep` needs it")

CONFIG = {
    "loss": "cross_entropy",
    "data": {"name": "digits", "classes": [3, 8]},
    "model": {"kind": "mlp", "hidden": [8]},
    "train": {"schedule": "loss_based", "max_epochs": 20},
    "log": {"every": 10},
}
# [-1] passes the grid and the config but fails when the model is built.
GRID = ["model.hidden=[8],[4],[8,8],[-1]"]


def test_grid_splits_on_top_level_commas_only():
    assert grid_overrides(["a=1,2", "b=[1,2],[3]"]) == [
        ["a=1", "b=[1,2]"],
        ["a=1", "b=[3]"],
        ["a=2", "b=[1,2]"],
        ["a=2", "b=[3]"],
    ]


def test_sweep_reports_failure_and_skips_finished_trials(tmp_path):
    summary = sweep(CONFIG, GRID, tmp_path, max_parallel=2)
    states = dict(zip(summary["trial"], summary["state"], strict=True))
    assert states == {
        "model.hidden=[8]": "finished",
        "model.hidden=[4]": "finished",
        "model.hidden=[8,8]": "finished",
        "model.hidden=[-1]": "failed",
    }
    failed = summary.set_index("trial").loc["model.hidden=[-1]"]
    assert failed["error"]
    assert (summary.loc[summary["state"] == "finished", "epoch"] == 20).all()
    assert pd.read_csv(tmp_path / "summary.csv")["trial"].tolist() == summary["trial"].tolist()

    finished = [tmp_path / name / "metrics.jsonl" for name, s in states.items() if s == "finished"]
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in finished}
    again = sweep(CONFIG, GRID, tmp_path, max_parallel=2)
    assert again["state"].tolist() == ["skipped", "skipped", "skipped", "failed"]
    assert again["epoch"].tolist()[:3] == summary["epoch"].tolist()[:3]
    assert {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in finished} == before
