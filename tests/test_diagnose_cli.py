"""``marginlab kkt`` and ``marginlab reference`` on finished runs."""

import json

import pytest

from marginlab import load_run, train
from marginlab.cli import main
from marginlab.results.kkt import KKTTable
from marginlab.results.reference import ReferenceComparison


def config(model, data, **train_options):
    return {
        "name": "diag",
        "seed": 0,
        "loss": "logistic",
        "data": data,
        "model": model,
        "train": {
            "schedule": "normalized",
            # alpha = 1 already runs at the edge of stability on these data (beta collapses)
            "alpha": 0.5,
            "max_epochs": 3000,
            "target_log10_loss": -12.5,
            **train_options,
        },
        "log": {"every": 1000, "checkpoint_decades": 4},
    }


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    data = {"name": "gaussians", "params": {"n": 40, "d": 3, "margin": 0.3}}
    path = tmp_path_factory.mktemp("lin") / "run"
    return train(config({"kind": "linear"}, data), path, progress=False)


@pytest.fixture(scope="module")
def two_layer_run(tmp_path_factory):
    data = {"name": "clusters", "params": {"n": 12, "d": 3, "k": 2, "test_n": 0}}
    model = {"kind": "two_layer", "width": 8, "train": "output"}
    path = tmp_path_factory.mktemp("tl") / "run"
    return train(config(model, data, max_epochs=30), path, progress=False)


def test_kkt_command_prints_a_table_and_writes_json(linear_run, capsys):
    assert main(["kkt", str(linear_run), "--checkpoint", "all", "--tau", "0.01", "1"]) == 0
    out, err = capsys.readouterr()
    # the estimate comes from the last checkpoint, certified first (the first is not certified)
    assert "the last checkpoint took" in err
    assert "eps_rel" in out and "delta" in out and "active" in out and "kkt.json" in out
    payload = json.loads((linear_run / "kkt.json").read_text())
    assert (payload["format"], payload["version"]) == ("marginlab.kkt", 2)
    table = KKTTable.load(linear_run / "kkt.json")
    assert table.taus == (0.01, 1.0)
    first, *rest = table.rows
    assert first.epoch == 0 and "q_min" in first.error  # the initialization misfits
    epochs = [c.epoch for c in load_run(linear_run).checkpoints]
    assert [row.epoch for row in table.rows] == epochs
    for row in rest:
        assert [c.tau for c in row.result.certificates] == [0.01, 1.0]
        assert row.result.certificates[1].n_active >= row.result.certificates[0].n_active
    # The loss-weight certificate shrinks as the loss falls (Lyu & Li B6).
    weights = [row.result.loss_weights.eps_rel for row in rest]
    assert weights[-1] < weights[0]
    # the trend lines recount from the record, each checkpoint once
    distinct = [r for i, r in enumerate(rest) if i == 0 or r.epoch != rest[i - 1].epoch]
    assert len(distinct) >= 3
    assert f"across {len(distinct)} checkpoints" in out
    series = {
        "1-beta": [1 - r.result.beta for r in distinct],
        "weights eps_rel": [r.result.loss_weights.eps_rel for r in distinct],
        "tau 1 delta": [r.result.certificates[1].delta for r in distinct],
    }
    for label, values in series.items():
        falls = sum(b < a for a, b in zip(values, values[1:], strict=False))
        line = next(line for line in out.splitlines() if line.strip().startswith(label))
        assert line.endswith(f"(fell at {falls} of {len(values) - 1})")
        assert f"{values[0]:.3e} -> {values[-1]:.3e}" in line
    # it closes with three plain sentences: the meaning, the movement, the verdict
    what, moved, verdict = table.summary()
    flat = " ".join(out.split())
    assert all(" ".join(s.split()) in flat for s in (what, moved, verdict))
    assert "eps_rel measures" in what and f"to epoch {distinct[-1].epoch}" in moved
    beta = series["1-beta"]
    assert f"1-beta went from {beta[0]:.2e} to {beta[-1]:.2e}" in moved
    assert verdict.startswith(("All three fell", "Not all fell"))  # which: the test below


def test_kkt_command_by_loss_level(linear_run, capsys):
    assert main(["kkt", str(linear_run), "--checkpoint", "1e-8"]) == 0
    (row,) = KKTTable.load(linear_run / "kkt.json").rows
    assert row.log10_loss < -8


def test_reference_svm_sits_beside_the_network(linear_run, capsys):
    assert main(["reference", str(linear_run), "--kind", "svm"]) == 0
    out = capsys.readouterr().out
    assert "reference margin" in out and "network margin" in out
    comparison = ReferenceComparison.load(linear_run / "reference-svm.json")
    assert comparison.kind == "svm"
    assert 0.9 < comparison.ratio <= 1 + 1e-12
    errors = [row.error for row in comparison.direction_errors]
    assert errors[-1] < errors[1] < errors[0]


def test_reference_rkhs_bounds_output_layer_training(two_layer_run, capsys):
    assert main(["reference", str(two_layer_run), "--kind", "rkhs"]) == 0
    comparison = ReferenceComparison.load(two_layer_run / "reference-rkhs.json")
    assert comparison.details["width"] == 8
    assert comparison.network_margin <= comparison.reference_margin
    assert comparison.details["empirical"]["min_output"] == pytest.approx(1.0, abs=1e-8)


def test_reference_refuses_a_model_it_does_not_apply_to(linear_run, two_layer_run, capsys):
    assert main(["reference", str(linear_run), "--kind", "f1"]) == 2
    assert "two_layer" in capsys.readouterr().err
    assert main(["reference", str(two_layer_run), "--kind", "f1"]) == 2
    assert "both" in capsys.readouterr().err
    assert main(["reference", str(two_layer_run), "--kind", "svm"]) == 2
    assert "linear" in capsys.readouterr().err
    assert not (linear_run / "reference-f1.json").exists()


def test_bad_checkpoint_argument_exits_with_usage(linear_run, capsys):
    assert main(["kkt", str(linear_run), "--checkpoint", "latest"]) == 2
    assert "--checkpoint" in capsys.readouterr().err


@pytest.fixture(scope="module")
def deep_run(tmp_path_factory):
    """A linear model on two digit classes trained past 1e-400 (float64 has no such number)."""
    model, data = {"kind": "linear"}, {"name": "digits", "classes": [0, 1]}
    options = {"alpha": 20.0, "max_epochs": 1000, "target_log10_loss": -450}
    path = tmp_path_factory.mktemp("deep") / "run"
    train(
        {**config(model, data, **options), "log": {"every": 50, "checkpoint_decades": 100}},
        path,
        progress=False,
    )
    return path


def test_kkt_and_attack_select_the_same_checkpoint_below_float64(deep_run, capsys):
    kept = load_run(deep_run).checkpoints
    below = [c for c in kept if c.log10_loss_mean < -400]
    assert below and below[0].reason == "loss<1e-400" and kept[-1].epoch > below[0].epoch
    assert main(["kkt", str(deep_run), "--checkpoint", "1e-400", "--tau", "0.1"]) == 0
    (row,) = KKTTable.load(deep_run / "kkt.json").rows
    argv = ["attack", str(deep_run), "--checkpoints", "1e-400", "--n", "4"]
    assert main([*argv, "--attack", "deepfool"]) == 0
    report = json.loads((deep_run / "robustness-l2-deepfool-train.json").read_text())
    assert row.epoch == report["checkpoints"][0]["epoch"] == below[0].epoch
    assert load_run(deep_run).checkpoint("1e-400").epoch == below[0].epoch
    capsys.readouterr()


def test_old_result_files_still_load(tmp_path):
    """Files written before the records had versions read as version 1."""
    kkt = {
        "taus": [0.1],
        "checkpoints": [
            {"epoch": 0, "reason": "init", "log10_loss_mean": -0.2, "error": "q_min <= 0"}
        ],
    }
    (tmp_path / "kkt.json").write_text(json.dumps(kkt))
    assert KKTTable.load(tmp_path / "kkt.json").rows[0].error == "q_min <= 0"
    reference = {
        "kind": "rkhs",
        "epoch": 3,
        "network_margin": 0.1,
        "reference_margin": 0.2,
        "width": 8,
        "note": "n",
    }
    (tmp_path / "reference-rkhs.json").write_text(json.dumps(reference))
    loaded = ReferenceComparison.load(tmp_path / "reference-rkhs.json")
    assert loaded.details == {"width": 8} and loaded.ratio == 0.5


def test_unreadable_result_files_say_how_to_regenerate_them(tmp_path):
    path = tmp_path / "kkt.json"
    path.write_text(json.dumps({"format": "marginlab.kkt", "version": 99, "rows": []}))
    with pytest.raises(ValueError, match="version 99.*marginlab kkt RUN_DIR"):
        KKTTable.load(path)
    path.write_text(json.dumps({"taus": [0.1]}))
    with pytest.raises(ValueError, match="regenerate it with `marginlab kkt"):
        KKTTable.load(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        KKTTable.load(path)


def _table_with(trends):
    """A table whose trend() is ``trends`` (quantity -> values), over two certified rows."""
    from types import SimpleNamespace

    from marginlab.results.kkt import Trend

    class Table(KKTTable):
        def trend(self, minimum=3):
            return [Trend(name, tuple(values)) for name, values in trends.items()]

    rows = (SimpleNamespace(epoch=10, result=1), SimpleNamespace(epoch=90, result=1))
    return Table(taus=(0.1, 1.0), rows=rows)


def test_kkt_verdict_says_whether_all_three_fell():
    falling = {
        "1-beta": [1e-2, 1e-3, 1e-4],
        "weights eps_rel": [0.5, 0.4, 0.3],
        "weights delta": [1.0, 0.5, 0.2],
        "tau 0.1 eps_rel": [0.2, 0.1, 0.01],
        "tau 0.1 delta": [0.1, 0.05, 0.01],
    }
    what, moved, verdict = _table_with(falling).summary()
    assert "tau 0.1 eps_rel went from 2.00e-01 to 1.00e-02 (falling at 2 of 2 steps)" in moved
    assert moved.startswith("From epoch 10 to epoch 90")
    assert verdict.startswith("All three fell")
    rising = {**falling, "tau 0.1 delta": [0.01, 0.05, 0.1]}
    assert _table_with(rising).summary()[2].startswith("Not all fell (tau 0.1 delta did not)")
