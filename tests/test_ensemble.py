"""Ensembles: K replicas trained together, each an ordinary run equal to the run alone."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch

from marginlab.config import ConfigError
from marginlab.runs.run import load_run
from marginlab.training import executors
from marginlab.training.engine import resume, train
from marginlab.training.ensemble import replica_configs, train_ensemble

CONFIG = {
    "loss": "exponential",
    "data": {"name": "clusters", "params": {"d": 5, "n": 32, "k": 3}},
    "model": {"kind": "two_layer", "width": 20},
    "train": {"schedule": "loss_based", "alpha": 2.0, "max_epochs": 30, "target_log10_loss": None},
    "log": {"every": 10},
}
MULTICLASS = {
    "loss": "cross_entropy",
    "data": {"name": "digits", "classes": [0, 1, 2], "n_train": 90, "subset": "random"},
    "model": {"kind": "mlp", "hidden": [8]},
    "train": {"schedule": "loss_based", "max_epochs": 12, "target_log10_loss": None},
    "log": {"every": 4},
}


def _rows(path) -> list[dict]:
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in rows]


def _checkpoints(path) -> list[tuple[int, str]]:
    return [(c.epoch, c.reason) for c in load_run(path).checkpoints]


def _weights(path) -> dict[str, torch.Tensor]:
    return load_run(path).load_model().state_dict()


def _same_run(got, expected) -> None:
    """Two run directories hold the same trajectory, bit for bit."""
    assert _rows(got) == _rows(expected)
    assert _checkpoints(got) == _checkpoints(expected)
    assert load_run(got).status["state"] == load_run(expected).status["state"]
    for name, tensor in _weights(expected).items():
        assert torch.equal(_weights(got)[name], tensor), name


@pytest.mark.parametrize("schedule", ["loss_based", "normalized", "constant"])
def test_replicas_in_turn_equal_the_runs_alone(tmp_path, schedule: str) -> None:
    config = {**CONFIG, "train": {**CONFIG["train"], "schedule": schedule}}
    overrides = [[f"train.alpha={a}", f"train.lr={a}"] for a in (0.5, 1.0, 2.0, 4.0)]
    configs = replica_configs(config, seeds=[0, 1, 2, 3], overrides=overrides)
    paths = train_ensemble(configs, [tmp_path / f"r{k}" for k in range(4)])
    for k, path in enumerate(paths):
        _same_run(path, train(configs[k], tmp_path / f"alone{k}", progress=False))
    if schedule == "loss_based":  # the settings differ, and so do the trajectories
        assert len({load_run(p).metrics["rollbacks"].iloc[-1] for p in paths}) > 1


@pytest.mark.parametrize("config", [CONFIG, MULTICLASS], ids=["binary", "multiclass"])
def test_batched_replicas_follow_the_engine(tmp_path, config: dict) -> None:
    """One vmapped pass for all replicas (the GPU path, forced here on the CPU): the same
    epochs, rollbacks and checkpoints as the runs alone; batched products round
    differently, so values agree to 1e-6 (measured: 3e-7 relative at epoch 10)."""
    configs = replica_configs(config, seeds=[0, 1, 2])
    paths = train_ensemble(configs, [tmp_path / f"r{k}" for k in range(3)], batched=True)
    for k, path in enumerate(paths):
        alone = train(configs[k], tmp_path / f"alone{k}", progress=False)
        got, expected = _rows(path), _rows(alone)
        assert [r["epoch"] for r in got] == [r["epoch"] for r in expected]
        assert [r["rollbacks"] for r in got] == [r["rollbacks"] for r in expected]
        assert _checkpoints(path) == _checkpoints(alone)
        for column in ("log10_loss_mean", "normalized_margin", "param_norm", "smoothed_margin"):
            a, b = (
                torch.tensor([math.nan if r[column] is None else r[column] for r in rows])
                for rows in (got, expected)
            )
            assert torch.allclose(a, b, rtol=1e-6, atol=0.0, equal_nan=True), column


def test_a_replica_that_stops_leaves_the_others_going(tmp_path) -> None:
    # alpha 1e4 overshoots, and min_alpha = alpha stops that replica at its first rollback
    overrides = [[], ["train.alpha=1e4", "train.min_alpha=1e4"], []]
    configs = replica_configs(CONFIG, seeds=[0, 1, 2], overrides=overrides)
    paths = train_ensemble(configs, [tmp_path / f"r{k}" for k in range(3)])
    states = [load_run(p).status["state"] for p in paths]
    assert states == ["finished", "stopped", "finished"]
    assert "min_alpha" in load_run(paths[1]).status["message"]
    _same_run(paths[2], train(configs[2], tmp_path / "alone", progress=False))


def test_interrupted_ensemble_resumes_run_by_run(tmp_path, monkeypatch) -> None:
    configs = replica_configs(CONFIG, seeds=[0, 1])
    calls = {"n": 0}
    attempts = executors.Plain.__call__

    def interrupted_attempts(self, going):
        calls["n"] += 1
        if calls["n"] == 13:
            os.kill(os.getpid(), signal.SIGINT)
        return attempts(self, going)

    monkeypatch.setattr(executors.Plain, "__call__", interrupted_attempts)
    paths = [tmp_path / f"r{k}" for k in range(2)]
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(configs, paths)
    monkeypatch.undo()
    for k, path in enumerate(paths):
        status = load_run(path).status
        assert status["state"] == "interrupted"
        assert 0 < status["epoch"] < 30
        resume(path, progress=False)
        _same_run(path, train(configs[k], tmp_path / f"alone{k}", progress=False))


def test_ensemble_refuses_what_it_cannot_share(tmp_path) -> None:
    with pytest.raises(ConfigError, match="architecture"):
        train_ensemble(
            replica_configs(CONFIG, overrides=[["model.width=20"], ["model.width=30"]]),
            [tmp_path / "a", tmp_path / "b"],
        )
    with pytest.raises(ConfigError, match="train.batch_size"):
        train_ensemble(
            replica_configs(CONFIG, overrides=[["train.batch_size=8"]] * 2),
            [tmp_path / "c", tmp_path / "d"],
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_run_replicas_writes_a_run_per_seed(tmp_path, capsys) -> None:
    from marginlab.cli import main

    spec = tmp_path / "small.yaml"
    spec.write_text(json.dumps({**MULTICLASS, "seed": 3}))  # JSON is YAML
    out = tmp_path / "ensemble"
    assert main(["run", str(spec), "--replicas", "2", "--out", str(out)]) == 0
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    assert summary["trial"].tolist() == ["seed=3", "seed=4"]
    assert (summary["epoch"] == 12).all() and (summary["state"] == "finished").all()
    assert load_run(out / "seed=4").config["seed"] == 4
    assert "seed=4" in capsys.readouterr().out
    # the report of the directory compares every replica
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "seed=3" in page and "seed=4" in page
    # a minibatch configuration is refused with the field to change
    status = main(["run", str(spec), "--replicas", "2", "--set", "train.batch_size=10"])
    assert status == 2
    assert "train.batch_size" in capsys.readouterr().err
