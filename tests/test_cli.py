"""The command line as a user runs it: bad input refused up front, kill and resume."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from marginlab import load_run, resume, train
from marginlab.cli import main

TINY = {
    "name": "tiny",
    "seed": 1,
    "loss": "logistic",
    "data": {"name": "digits", "classes": [3, 8]},
    "model": {"kind": "mlp", "hidden": [16]},
    "train": {"batch_size": 40, "max_epochs": 150, "target_log10_loss": None},
    "log": {"every": 5, "checkpoint_decades": 1},
}


def strip_time(rows):
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in rows]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.batch_sise=10", "train.batch_sise: unknown key"),
        ("train.batch_size=ten", "train.batch_size: expected int"),
        ("train.batch_size=5000", "train.batch_size: 5000 is larger than the training set"),
        ("train.lr=-1", "train.lr: must be positive"),
        ("loss=hinge", "loss: 'hinge' is not allowed"),
        ("model.hidden=[-4]", "hidden"),
        ("model.widht=3", "widht"),
        ("data.name=imagenet", "imagenet"),
        ("log.observers=[{name: nope}]", "log.observers[0].name"),
    ],
)
def test_bad_input_is_refused_before_any_work(tmp_path, capsys, override, named):
    out = tmp_path / "run"
    assert main(["run", "digits-mlp", "--set", override, "--out", str(out)]) == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_a_key_the_schedule_does_not_read_is_refused_naming_what_it_sets(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "digits-mlp", "--set", "train.lr=0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "train.lr: the loss_based schedule does not read it" in err
    assert "train.schedule=constant" in err and not out.exists()
    grid = ["sweep", "digits-mlp", "--grid", "train.lr=0.1,0.2", "--out", str(out)]
    assert main(grid) == 2
    assert "train.lr: the loss_based schedule does not read it" in capsys.readouterr().err
    assert not out.exists()


def test_a_grid_in_which_no_trial_is_valid_is_refused_before_any_trial(tmp_path, capsys):
    out = tmp_path / "sweep"
    grid = ["sweep", "digits-mlp", "--grid", "nokey=1,2", "--out", str(out)]
    assert main(grid) == 2
    err = capsys.readouterr().err
    assert "--grid: no trial is valid; the first, nokey=1: nokey: unknown key" in err
    assert not out.exists()


def test_unknown_spec_lists_presets(capsys):
    assert main(["run", "no-such-preset"]) == 2
    assert "digits-cnn" in capsys.readouterr().err


def test_missing_data_names_the_directory(tmp_path, capsys):
    code = main(
        ["run", "mnist-cnn-const", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "train-images-idx3-ubyte" in err


def test_presets_lists_one_line_each(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("digits-cnn ") for line in lines)
    assert all(len(line.split()) > 2 for line in lines)


def _start(tmp_path, out, speculate=False):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "speculate": speculate}}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "marginlab", "run", str(config), "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_for_rows(out, rows, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = out / "metrics.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= rows:
            return
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.05)
    raise AssertionError("the run did not log in time")


def _assert_same_run(resumed, uninterrupted):
    """Same metrics (but wall time) and bitwise-equal final weights."""
    assert strip_time(resumed.store.metrics()) == strip_time(uninterrupted.store.metrics())
    for a, b in zip(
        resumed.load_model().state_dict().values(),
        uninterrupted.load_model().state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return load_run(train(TINY, tmp_path_factory.mktemp("u") / "run", progress=False))


# With speculate, the retries run ahead in a worker process that the signal must not disturb
# and that the resumed run does not need; the result is the same run either way.
@pytest.mark.parametrize("speculate", [False, True])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, "SIGTERM twice"])
def test_killed_or_interrupted_run_resumes_to_the_same_result(
    tmp_path, uninterrupted, sig, speculate
):
    out = tmp_path / "run"
    proc = _start(tmp_path, out, speculate)
    _wait_for_rows(out, 8, proc)
    if sig == "SIGTERM twice":  # as `timeout` does when it is itself terminated
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
    else:
        proc.send_signal(sig)
    proc.wait(timeout=60)
    status = load_run(out).status
    if sig != signal.SIGKILL:
        assert proc.returncode == 130
        assert status["state"] == "interrupted"
    else:  # nothing ran after the kill: the file says running, with a pid that is gone
        assert (out / "status.json").read_text().count('"running"') == 1
        assert status["state"] == "interrupted" and str(proc.pid) in status["message"]
    rows_before = load_run(out).store.metrics()
    assert rows_before and rows_before[-1]["epoch"] < TINY["train"]["max_epochs"]

    resumed = load_run(resume(out, progress=False))
    assert resumed.status["state"] == "finished"
    _assert_same_run(resumed, uninterrupted)
    assert [c.epoch for c in resumed.checkpoints] == [c.epoch for c in uninterrupted.checkpoints]


def test_a_signal_during_an_epochs_records_waits_for_them(tmp_path, uninterrupted, monkeypatch):
    """SIGTERM raised while epoch 10 (a logged one) is being recorded: the records finish
    first, so the resumed run still equals the uninterrupted one."""
    from marginlab.training import engine

    real_observe = engine._observe

    def observe_and_signal(loop, evaluation, final=False):
        if loop.state.epoch == 10 and not final:
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs before the next line
        real_observe(loop, evaluation, final)

    monkeypatch.setattr(engine, "_observe", observe_and_signal)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(TINY, out, progress=False)
    monkeypatch.setattr(engine, "_observe", real_observe)
    interrupted = load_run(out)
    assert interrupted.status["state"] == "interrupted"
    assert interrupted.status["epoch"] == 10
    assert interrupted.store.metrics()[-1]["epoch"] == 10
    resumed = load_run(resume(out, progress=False))
    _assert_same_run(resumed, uninterrupted)


def test_numbers_in_exponent_notation_are_floats(tmp_path):
    # PyYAML reads 1e-3 (no dot) as a string; a float field takes it as the number.
    from marginlab.config import ConfigError, apply_overrides, validate

    config = validate(apply_overrides(TINY, ["train.lr=1e-3", "train.alpha=2E2"]))
    assert (config.train.lr, config.train.alpha) == (1e-3, 200.0)
    spec = tmp_path / "exp.yaml"
    spec.write_text("model: {kind: mlp, hidden: [4]}\ntrain: {min_alpha: 1e-12}\n")
    assert validate(yaml.safe_load(spec.read_text())).train.min_alpha == 1e-12
    with pytest.raises(ConfigError, match=r"train.alpha: expected float, got '1e'"):
        validate(apply_overrides(TINY, ["train.alpha=1e"]))


def test_a_preset_takes_two_classes_without_retyping_its_spec(tmp_path, capsys):
    out = tmp_path / "binary"
    argv = ["run", "digits-cnn", "--set", "data.classes=[0,1]", "--set", "train.max_epochs=2"]
    assert main([*argv, "--set", "train.speculate=false", "--out", str(out)]) == 0
    run = load_run(out)
    x, _ = run.load_data()
    assert run.load_model()(x[:3]).shape == (3, 2)  # cross-entropy: one logit per class
    # the same from Python, with a binary logistic model: one output
    from marginlab.experiments.presets import preset

    config = preset("digits-cnn")
    config["data"]["classes"] = [3, 8]
    config["loss"] = "logistic"
    config["train"].update(max_epochs=1, speculate=False)
    run = load_run(train(config, tmp_path / "py", progress=False))
    assert run.load_model()(x[:3]).shape == (3, 1)


def test_a_spec_of_your_own_keeps_its_width_and_the_error_names_outputs_auto(tmp_path, capsys):
    spec = "model.spec=conv3x3-4,maxpool,fc10"
    argv = ["run", "digits-cnn", "--set", spec, "--set", "model.outputs=null"]
    assert main([*argv, "--set", "data.classes=[0,1]", "--out", str(tmp_path / "r")]) == 2
    assert "set model.outputs=auto" in capsys.readouterr().err
