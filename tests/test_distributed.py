"""Data-parallel full-batch gradients: two processes (torchrun, gloo on CPU) follow the same
trajectory as one process over the whole training set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from marginlab.cli import main

CONFIG = {
    "seed": 3,
    "threads": 1,
    "loss": "cross_entropy",
    # 301 samples: the two shards differ in size (151 and 150)
    "data": {
        "name": "digits",
        "classes": [0, 1, 2],
        "n_train": 301,
        "subset": "random",
        "params": {"test_fraction": 0.3},
    },
    "model": {"kind": "mlp", "hidden": [16]},
    "train": {"schedule": "loss_based", "max_epochs": 40, "target_log10_loss": None},
    "log": {"every": 5, "checkpoint_decades": 2},
}
TORCHRUN = Path(sys.executable).with_name("torchrun")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside python")
def test_two_processes_follow_one_process(tmp_path):
    spec = tmp_path / "small.yaml"
    spec.write_text(json.dumps(CONFIG))
    assert main(["run", str(spec), "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        str(TORCHRUN),
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "marginlab",
        "run",
        str(spec),
        "--out",
        str(tmp_path / "two"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert [r["epoch"] for r in one] == [r["epoch"] for r in two]
    assert [r["rollbacks"] for r in one] == [r["rollbacks"] for r in two]
    for key in ("log10_loss_sum", "q_min", "param_norm", "train_acc", "test_acc"):
        for a, b in zip(one, two, strict=True):
            assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), key
    last_one = load_file(tmp_path / "one" / "checkpoints" / "latest.safetensors")
    last_two = load_file(tmp_path / "two" / "checkpoints" / "latest.safetensors")
    for name, tensor in last_one.items():
        assert torch.allclose(last_two[name], tensor, rtol=1e-9, atol=1e-12), name
    # one writer: rank 1 adds no metrics rows; each rank held its own shard
    assert len(two) == len(one)
    environment = json.loads((tmp_path / "two" / "environment.json").read_text())
    assert environment["data_parallel"] == {"world_size": 2, "train_shards": [151, 150]}


def test_minibatch_is_refused_under_torchrun(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29533")
    import torch.distributed as dist

    # a one-member group stands in for torchrun's, so the check runs without a second process
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        spec = tmp_path / "small.yaml"
        spec.write_text(json.dumps(CONFIG))
        status = main(
            ["run", str(spec), "--set", "train.batch_size=50", "--out", str(tmp_path / "r")]
        )
    finally:
        dist.destroy_process_group()
    assert status == 2
    assert "train.batch_size" in capsys.readouterr().err
