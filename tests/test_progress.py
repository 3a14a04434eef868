"""The progress line and the final summary: how often the smoothed margin fell, and how far."""

import io

import numpy as np
import pytest

from marginlab import load_run, resume, train
from marginlab.training.progress import Progress


def recount(margins):
    """Decreases between consecutive defined margins, and the largest relative one."""
    defined = [m for m in margins if m is not None]
    falls = [(a - b) / a for a, b in zip(defined, defined[1:], strict=False) if b < a]
    return len(falls), len(defined) - 1, max(falls, default=0.0)


def summary_cells(text):
    """The summary table's rows as {key: value}."""
    cells = {}
    for line in text.splitlines():
        parts = [part.strip() for part in line.split("│")]
        if len(parts) == 4:
            cells[parts[1]] = parts[2]
    return cells


def rows_with(margins):
    return [
        {
            "epoch": i,
            "log10_loss_mean": -i,
            "train_acc": 1.0,
            "alpha": 0.1,
            "rollbacks": 0,
            "smoothed_margin": m,
        }
        for i, m in enumerate(margins)
    ]


def closed_summary(rows, history=()):
    stream = io.StringIO()
    progress = Progress("r", stream=stream, history=history)
    for row in rows:
        progress.update(row)
    progress.close()
    return summary_cells(stream.getvalue())


def expected_cells(margins):
    count, compared, largest = recount(margins)
    return f"{count} of {compared} logged epochs", f"{largest:.2g}"


@pytest.mark.parametrize("seed", range(5))
def test_summary_counts_the_decreases_of_the_smoothed_margin(seed):
    rng = np.random.default_rng(seed)
    # undefined before the loss threshold, then a noisy rise with a few falls
    margins = [None] * 3 + list(np.cumsum(rng.normal(1e-3, 1e-3, size=40)) + 1.0)
    cells = closed_summary(rows_with(margins))
    count, largest = expected_cells(margins)
    assert 0 < recount(margins)[0] < 40  # the draw has falls, and rises
    assert cells["smoothed margin decreases"] == count
    assert cells["largest decrease (relative)"] == largest


def test_a_monotone_margin_has_no_decreases_and_an_undefined_one_says_so():
    cells = closed_summary(rows_with([None, 1.0, 1.0, 2.0]))
    assert cells["smoothed margin decreases"] == "0 of 2 logged epochs"
    assert cells["largest decrease (relative)"] == "0"
    cells = closed_summary(rows_with([None, None, 1.0]))
    assert cells["smoothed margin decreases"] == "-"


def test_a_resumed_session_counts_the_rows_logged_before_it():
    margins = [None, 1.0, 0.5, 2.0, 1.0, 3.0]
    rows = rows_with(margins)
    whole = closed_summary(rows)
    assert closed_summary(rows[3:], history=rows[:3]) == whole
    assert whole["smoothed margin decreases"] == "2 of 4 logged epochs"


def tiny(max_epochs):
    # logistic loss on two digit classes: the summed loss passes l(0) in a few epochs, and
    # SGD without the margin guard lets the smoothed margin fall now and then
    return {
        "name": "tiny",
        "seed": 1,
        "loss": "logistic",
        "data": {"name": "digits", "classes": [3, 8]},
        "model": {"kind": "mlp", "hidden": [16, 16]},
        "train": {"batch_size": 50, "max_epochs": max_epochs, "target_log10_loss": None},
        "log": {"every": 1},
    }


def test_a_run_ends_with_the_counts_of_its_own_metrics(tmp_path, capsys):
    run = load_run(train(tiny(60), tmp_path / "whole"))
    whole = summary_cells(capsys.readouterr().err)
    margins = [row["smoothed_margin"] for row in run.store.metrics()]
    count, largest = expected_cells(margins)
    assert recount(margins)[1] >= 20
    assert (whole["smoothed margin decreases"], whole["largest decrease (relative)"]) == (
        count,
        largest,
    )
    train(tiny(30), tmp_path / "part", progress=False)
    resume(tmp_path / "part", ["train.max_epochs=60"])
    resumed = summary_cells(capsys.readouterr().err)
    for key in ("smoothed margin decreases", "largest decrease (relative)"):
        assert resumed[key] == whole[key]


def test_a_run_of_days_is_warned_about_before_it_starts_and_says_what_shortens_it():
    from marginlab.training.estimate import EpochCost

    stream = io.StringIO()
    progress = Progress("mnist", stream=stream, max_epochs=10000, target_log10_loss=None)
    # the MNIST CNN on 2 cores: about 31 s an attempt, three attempts an epoch
    progress.announce_cost(lambda: EpochCost(31.0, 3), epoch=0)
    progress.close()
    text = stream.getvalue()
    assert "warning: this run (mnist) would take about 11 days on this machine" in text
    assert "--set train.max_epochs=N" in text


def test_a_run_with_a_target_says_the_time_to_it_once_the_loss_falls():
    from marginlab.training.estimate import EpochCost

    stream = io.StringIO()
    progress = Progress("r", stream=stream, max_epochs=20000, target_log10_loss=-400)
    progress.announce_cost(lambda: EpochCost(0.05, 3), epoch=0)
    assert "the run ends at the target loss 1e-400 or after 20000 more epochs" in stream.getvalue()
    # 0.2 decades per epoch, 10 epochs per 3 s: 2000 epochs to go from 1e-0, 600 s
    for epoch in range(0, 60, 10):
        progress.update(
            {
                "epoch": epoch,
                "log10_loss_mean": -0.2 * epoch,
                "train_acc": 1.0,
                "alpha": 0.1,
                "rollbacks": 0,
                "wall_time": 0.3 * epoch,
            }
        )
    remaining = progress.remaining()
    assert remaining == pytest.approx((400 - 0.2 * 50) / 0.2 * 0.3)
    assert "to its target would take about" in stream.getvalue()
    assert progress.fraction(progress.last_row) == pytest.approx(10 / 400)


def test_a_speculative_run_is_estimated_at_two_attempt_times_an_epoch():
    from marginlab.config import validate
    from marginlab.training.assembly import assemble
    from marginlab.training.estimate import SPECULATIVE_ATTEMPT_TIMES, epoch_cost

    config = {
        "data": {"name": "digits", "n_train": 100},
        "model": {"kind": "mlp", "hidden": [8]},
        "train": {"batch_size": 20, "schedule": "loss_based"},
    }
    plain = epoch_cost(assemble(validate(config)))
    config["train"]["speculate"] = True
    ahead = epoch_cost(assemble(validate(config)))
    assert (plain.attempts_per_epoch, plain.speculative, ahead.speculative) == (3, False, True)
    assert ahead.seconds == pytest.approx(SPECULATIVE_ATTEMPT_TIMES * ahead.seconds_per_attempt)
    assert plain.seconds == pytest.approx(3 * plain.seconds_per_attempt)
    assert "second process" in ahead.describe() and "second process" not in plain.describe()
