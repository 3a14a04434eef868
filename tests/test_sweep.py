"""The Ray sweep: a grid of run directories, failures reported, finished trials skipped."""

from __future__ import annotations

import json

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
    assert failed["reason"]
    finished_rows = summary.loc[summary["state"] == "finished"]
    assert (finished_rows["epoch"] == 20).all()
    # 20 epochs stop them far above the default target of 1e-300, and the summary says so
    assert (finished_rows["target_reached"] == False).all()  # noqa: E712
    assert finished_rows["reason"].str.startswith("short of the target").all()
    assert pd.read_csv(tmp_path / "summary.csv")["trial"].tolist() == summary["trial"].tolist()

    finished = [tmp_path / name / "metrics.jsonl" for name, s in states.items() if s == "finished"]
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in finished}
    again = sweep(CONFIG, GRID, tmp_path, max_parallel=2)
    assert again["state"].tolist() == ["skipped", "skipped", "skipped", "failed"]
    assert (again["ensemble_size"] == 1).all()
    assert again["epoch"].tolist()[:3] == summary["epoch"].tolist()[:3]
    assert {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in finished} == before


def test_sweep_trains_trials_that_share_a_shape_as_one_ensemble(tmp_path):
    from marginlab import sweep as sweep_module
    from marginlab.config import apply_overrides
    from marginlab.training.engine import train

    grid = ["seed=0,1", "model.hidden=[8],[-1]"]
    configs = {",".join(a): apply_overrides(CONFIG, a) for a in grid_overrides(grid)}
    tasks = sweep_module._groups(configs, tmp_path, ensembles=True)
    assert tasks == [
        ["seed=0,model.hidden=[8]", "seed=1,model.hidden=[8]"],
        ["seed=0,model.hidden=[-1]", "seed=1,model.hidden=[-1]"],
    ]
    assert len(sweep_module._groups(configs, tmp_path, ensembles=False)) == 4

    summary = sweep(CONFIG, grid, tmp_path, max_parallel=2, ensembles=True)
    states = dict(zip(summary["trial"], summary["state"], strict=True))
    assert states == {
        "seed=0,model.hidden=[8]": "finished",
        "seed=0,model.hidden=[-1]": "failed",
        "seed=1,model.hidden=[8]": "finished",
        "seed=1,model.hidden=[-1]": "failed",
    }
    assert summary["ensemble_size"].tolist() == [2, 2, 2, 2]
    # each replica is the run it would have been alone, bit for bit
    alone = train({**CONFIG, "seed": 1, "threads": 1}, tmp_path / "alone", progress=False)

    def rows(path):
        lines = (path / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "wall_time"} for line in lines]

    assert rows(tmp_path / "seed=1,model.hidden=[8]") == rows(alone)
    row = summary.set_index("trial").loc["seed=1,model.hidden=[8]"]
    assert row["log10_loss_mean"] == rows(alone)[-1]["log10_loss_mean"]
