"""Training engine: metrics, rollback semantics, recomputation from checkpoints, resume."""

import json
import math

import numpy as np
import pytest
import torch

from marginlab import load_run, resume, train
from marginlab.config import validate
from marginlab.runs.store import RunDirectoryError
from marginlab.training.engine import LATEST


def tiny_config(**train):
    return {
        "name": "tiny",
        "seed": 3,
        "loss": "logistic",
        "data": {"name": "digits", "classes": [3, 8]},
        "model": {"kind": "mlp", "hidden": [16]},
        "train": {"schedule": "loss_based", "max_epochs": 60, "target_log10_loss": None, **train},
        "log": {"every": 5, "checkpoint_decades": 2},
    }


def strip_time(rows):
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in rows]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    return train(tiny_config(max_epochs=300), tmp_path_factory.mktemp("r") / "run", progress=False)


def test_metrics_have_every_documented_key(finished_run):
    rows = load_run(finished_run).store.metrics()
    keys = {
        "epoch",
        "step",
        "log10_loss_sum",
        "log10_loss_mean",
        "train_acc",
        "q_min",
        "normalized_margin",
        "normalized_margin_layers",
        "smoothed_margin",
        "smoothed_margin_layers",
        "param_norm",
        "layer_norms",
        "alpha",
        "log10_lr",
        "rollbacks",
        "support_counts",
        "wall_time",
    }
    assert keys <= set(rows[-1])
    assert rows[0]["epoch"] == 0
    assert len(rows[-1]["support_counts"]) == 7


def test_loss_is_below_float64_and_margins_are_consistent(finished_run):
    rows = load_run(finished_run).store.metrics()
    last = rows[-1]
    assert last["log10_loss_mean"] < -3.5
    assert last["train_acc"] == 1.0
    n = round(10 ** (last["log10_loss_sum"] - last["log10_loss_mean"]))
    assert n == 357
    after = [r for r in rows if r["smoothed_margin"] is not None]
    assert after, "the loss never crossed the threshold"
    for row in after:
        assert row["smoothed_margin"] <= row["normalized_margin"]
        assert row["smoothed_margin_layers"] <= row["normalized_margin_layers"]
    # Lyu & Li Thm 4.1/4.2: the smoothed margin does not decrease once below the threshold
    for prev, cur in zip(after, after[1:], strict=False):
        assert cur["smoothed_margin"] >= prev["smoothed_margin"] * (1 - 1e-9)


def test_metrics_agree_with_an_independent_float64_recomputation(finished_run):
    run = load_run(finished_run)
    model = run.load_model("last")
    x, y = run.load_data("train")
    last = run.store.metrics()[-1]
    weights = [p.detach().numpy() for p in model.parameters()]
    # forward pass of the MLP in numpy: x -> relu(W1 x) -> W2
    hidden = np.maximum(x.reshape(len(x), -1).numpy() @ weights[0].T, 0.0)
    f = (hidden @ weights[1].T)[:, 0]
    q = np.where(y.numpy() == 1, f, -f)
    rho = math.sqrt(sum(float((w**2).sum()) for w in weights))
    layer = [math.sqrt(float((w**2).sum())) for w in weights]
    assert last["q_min"] == pytest.approx(q.min(), rel=1e-9)
    assert last["param_norm"] == pytest.approx(rho, rel=1e-9)
    assert last["layer_norms"] == pytest.approx(layer, rel=1e-9)
    assert last["normalized_margin"] == pytest.approx(q.min() / rho**2, rel=1e-9)
    assert last["normalized_margin_layers"] == pytest.approx(
        q.min() / (layer[0] * layer[1]), rel=1e-9
    )
    log_sum = np.logaddexp.reduce(np.log(np.log1p(np.exp(-q))))
    assert last["log10_loss_sum"] == pytest.approx(log_sum / math.log(10), rel=1e-9)


def test_loss_level_checkpoints_are_first_epochs_below_each_level(finished_run):
    run = load_run(finished_run)
    rows = run.store.metrics()
    kept = [c for c in run.checkpoints if c.reason.startswith("loss<")]
    assert kept
    for checkpoint in kept:
        level = -float(checkpoint.reason.split("e-")[1])
        assert checkpoint.log10_loss_mean < level
        earlier = [r for r in rows if r["epoch"] < checkpoint.epoch]
        assert all(r["log10_loss_mean"] >= level for r in earlier)
    assert run.checkpoints[-1].reason == "last"
    assert run.checkpoint(1e-2).epoch == kept[0].epoch
    with pytest.raises(KeyError, match="never fell below"):
        run.checkpoint(1e-200)
    with pytest.raises(KeyError, match="never fell below"):
        run.checkpoint("1e-882")  # below float64: parsed exactly, not as 0


def test_rejected_attempts_restore_the_weights_and_do_not_count(tmp_path):
    # Full batch (no shuffle): a run that starts with a huge alpha and is rejected k times
    # must take exactly the step of a run that starts at alpha / down^k.
    first = load_run(train(tiny_config(alpha=1e4, max_epochs=1), tmp_path / "a", progress=False))
    rows = first.store.metrics()
    k = rows[-1]["rollbacks"]
    assert k > 0 and rows[-1]["epoch"] == 1 and rows[-1]["attempts"] == k + 1
    second = load_run(
        train(tiny_config(alpha=1e4 / (2**0.1) ** k, max_epochs=1), tmp_path / "b", progress=False)
    )
    # alpha / down^k and k repeated divisions by down differ in the last bits only
    for p, q in zip(first.load_model().parameters(), second.load_model().parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=0)


def test_non_homogeneous_model_reports_null_margins(tmp_path):
    config = tiny_config(max_epochs=3)
    config["model"]["bias"] = "all"
    rows = load_run(train(config, tmp_path / "r", progress=False)).store.metrics()
    assert all(r["normalized_margin"] is None and r["smoothed_margin"] is None for r in rows)
    assert rows[-1]["normalized_margin_layers"] is not None


def test_non_separable_data_stops_at_the_epoch_budget(tmp_path):
    config = tiny_config(max_epochs=15, schedule="constant", lr=0.5)
    config["data"] = {"name": "xor", "params": {"n": 40}}
    config["model"] = {"kind": "linear"}
    run = load_run(train(config, tmp_path / "r", progress=False))
    assert run.status["state"] == "finished"
    assert "max_epochs" in run.status["message"]
    assert "threshold" in run.status["message"]
    assert run.store.metrics()[-1]["smoothed_margin"] is None


def test_resume_after_stop_equals_an_uninterrupted_run(tmp_path):
    config = tiny_config(max_epochs=40, batch_size=50)
    whole = load_run(train(config, tmp_path / "whole", progress=False))
    part = train(tiny_config(max_epochs=17, batch_size=50), tmp_path / "part", progress=False)
    resumed = load_run(resume(part, ["train.max_epochs=40"], progress=False))
    assert strip_time(resumed.store.metrics()) == strip_time(whole.store.metrics())
    a, _ = whole.store.load_checkpoint(LATEST)
    b, _ = resumed.store.load_checkpoint(LATEST)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_to_change_what_is_trained(tmp_path):
    part = train(tiny_config(max_epochs=2), tmp_path / "part", progress=False)
    with pytest.raises(ValueError, match="may only change"):
        resume(part, ["train.lr=0.5"], progress=False)


def test_train_refuses_an_existing_run_directory(tmp_path):
    path = train(tiny_config(max_epochs=1), tmp_path / "r", progress=False)
    with pytest.raises(RunDirectoryError, match="marginlab resume"):
        train(tiny_config(max_epochs=1), path, progress=False)


def test_saved_config_is_the_resolved_one(finished_run):
    run = load_run(finished_run)
    assert validate(run.config).train.alpha_up == pytest.approx(2**0.2)
    env = json.loads((finished_run / "environment.json").read_text())
    assert env["torch"] == torch.__version__


def test_loss_levels_below_float64_select_the_right_checkpoint(tmp_path):
    run = load_run(train(tiny_config(max_epochs=2), tmp_path / "r", progress=False))
    entry = {"epoch": 999, "log10_loss_mean": -900.5, "file": "deep.safetensors", "reason": "x"}
    run.store.record_checkpoint(entry)
    assert run.checkpoint("1e-882").epoch == 999
    assert run.checkpoint(1e-100).epoch == 999  # below float32's range too


def test_speculative_retries_give_the_same_run_bit_for_bit(tmp_path, monkeypatch):
    # Many rejections (alpha starts far too large), minibatches, the margin guard on.
    config = tiny_config(max_epochs=25, batch_size=40, alpha=50.0, reject_margin_decrease=True)
    config["threads"] = 1
    plain = load_run(train(config, tmp_path / "plain", progress=False))

    from marginlab.training import executors, speculation

    served = []

    class Counting(speculation.Speculator):
        def __init__(self, parts):
            super().__init__(parts)
            assert self.ready(timeout=60)  # the tiny run would finish before the worker starts

        def _receive(self):
            job = self._in_worker
            super()._receive()
            served.append(job in self._done)

    monkeypatch.setattr(executors, "Speculator", Counting)
    config["train"]["speculate"] = True
    ahead = load_run(train(config, tmp_path / "ahead", progress=False))
    rows = plain.store.metrics()
    assert rows[-1]["rollbacks"] > 5 and rows[-1]["epoch"] == 25
    assert sum(served) > 0  # some attempts did come from the worker
    assert strip_time(ahead.store.metrics()) == strip_time(rows)
    a, _ = plain.store.load_checkpoint(LATEST)
    b, _ = ahead.store.load_checkpoint(LATEST)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_margin_guard_keeps_the_smoothed_margin_non_decreasing(tmp_path):
    def drops(guard):
        config = tiny_config(max_epochs=60, batch_size=20, reject_margin_decrease=guard)
        config["log"]["every"] = 1
        rows = load_run(train(config, tmp_path / str(guard), progress=False)).store.metrics()
        margins = [r["smoothed_margin"] for r in rows if r["smoothed_margin"] is not None]
        assert len(margins) > 40
        return sum(b < a for a, b in zip(margins, margins[1:], strict=False))

    # With the reference rule SGD lowers the smoothed margin in some accepted epochs.
    assert drops(False) > 0
    assert drops(True) == 0


@pytest.mark.parametrize(
    ("train_section", "field"),
    [
        ({"schedule": "constant", "reject_margin_decrease": True}, "reject_margin_decrease"),
        ({"speculate": True}, "train.speculate"),
        ({"schedule": "constant", "batch_size": 10, "speculate": True}, "train.speculate"),
    ],
)
def test_options_that_need_rollbacks_or_minibatches_are_refused(train_section, field):
    with pytest.raises(ValueError, match=field):
        validate(tiny_config(**train_section))


@pytest.mark.parametrize("schedule", ["constant", "normalized"])
def test_full_batch_gradient_descent_equals_a_loop_written_out(tmp_path, schedule):
    # Without rollbacks an epoch's evaluation pass also gives the next epoch's gradient;
    # the trajectory must be the plain loop's, bit for bit.
    from marginlab.measure.gradient import log_loss_and_grad
    from marginlab.measure.margins import trainable_parameters
    from marginlab.training.assembly import assemble

    steps = {"lr": 2.0, "alpha": 2.0}
    config = validate(tiny_config(schedule=schedule, batch_size=None, max_epochs=25, **steps))
    path = train(config, tmp_path / "run", progress=False)
    parts = assemble(config)
    params = trainable_parameters(parts.model)
    x, y = parts.data.x_train, parts.data.y_train
    for _ in range(25):
        log_loss, grads = log_loss_and_grad(parts.model, params, x, y, parts.loss)
        log_factor = math.log(2.0) + (log_loss if schedule == "constant" else 0.0)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-math.exp(log_factor))
    trained = load_run(path).load_model("last").state_dict()
    for name, tensor in parts.model.state_dict().items():
        assert torch.equal(trained[name], tensor), name
