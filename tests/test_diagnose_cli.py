"""``marginlab kkt`` and ``marginlab reference`` on finished runs."""

import json

import pytest

from marginlab import load_run, train
from marginlab.cli import main


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
    out = capsys.readouterr().out
    assert "eps_rel" in out and "delta" in out and "active" in out and "kkt.json" in out
    payload = json.loads((linear_run / "kkt.json").read_text())
    assert payload["taus"] == [0.01, 1.0]
    first, *rest = payload["checkpoints"]
    assert first["epoch"] == 0 and "q_min" in first["error"]  # the initialization misfits
    epochs = [c.epoch for c in load_run(linear_run).checkpoints]
    assert [c["epoch"] for c in payload["checkpoints"]] == epochs
    for record in rest:
        assert [c["tau"] for c in record["certificates"]] == [0.01, 1.0]
        assert record["certificates"][1]["n_active"] >= record["certificates"][0]["n_active"]
    # The loss-weight certificate shrinks as the loss falls (Lyu & Li B6).
    weights = [r["loss_weights"]["eps_rel"] for r in rest]
    assert weights[-1] < weights[0]
    # the trend lines recount from the JSON, each checkpoint once
    distinct = [r for i, r in enumerate(rest) if i == 0 or r["epoch"] != rest[i - 1]["epoch"]]
    assert len(distinct) >= 3
    assert f"across {len(distinct)} checkpoints" in out
    series = {
        "1-beta": [1 - r["beta"] for r in distinct],
        "weights eps_rel": [r["loss_weights"]["eps_rel"] for r in distinct],
        "tau 1 delta": [r["certificates"][1]["delta"] for r in distinct],
    }
    for label, values in series.items():
        falls = sum(b < a for a, b in zip(values, values[1:], strict=False))
        line = next(line for line in out.splitlines() if line.strip().startswith(label))
        assert line.endswith(f"(fell at {falls} of {len(values) - 1})")
        assert f"{values[0]:.3e} -> {values[-1]:.3e}" in line


def test_kkt_command_by_loss_level(linear_run, capsys):
    assert main(["kkt", str(linear_run), "--checkpoint", "1e-8"]) == 0
    payload = json.loads((linear_run / "kkt.json").read_text())
    (record,) = payload["checkpoints"]
    assert record["log10_loss_mean"] < -8


def test_reference_svm_sits_beside_the_network(linear_run, capsys):
    assert main(["reference", str(linear_run), "--kind", "svm"]) == 0
    out = capsys.readouterr().out
    assert "reference margin" in out and "network margin" in out
    payload = json.loads((linear_run / "reference-svm.json").read_text())
    assert payload["kind"] == "svm"
    assert 0.9 * payload["reference_margin"] < payload["network_margin"]
    assert payload["network_margin"] <= payload["reference_margin"] * (1 + 1e-12)
    errors = [row["direction_error"] for row in payload["direction_errors"]]
    assert errors[-1] < errors[1] < errors[0]


def test_reference_rkhs_bounds_output_layer_training(two_layer_run, capsys):
    assert main(["reference", str(two_layer_run), "--kind", "rkhs"]) == 0
    payload = json.loads((two_layer_run / "reference-rkhs.json").read_text())
    assert payload["width"] == 8
    assert payload["network_margin"] <= payload["reference_margin"]
    assert payload["empirical"]["min_output"] == pytest.approx(1.0, abs=1e-8)


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
