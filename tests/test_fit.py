"""marginlab.fit: your own module on your own tensors, through the engine that runs configs."""

import gc
import json
import math
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import marginlab
from marginlab import Constant, LossBased, fit, load_run
from marginlab.build import build_data, build_network
from marginlab.cli import main
from marginlab.config import ConfigError, validate
from marginlab.experiments.presets import preset
from marginlab.results.kkt import kkt_along_training
from marginlab.results.reference import compare_reference
from marginlab.training.engine import train


def blobs(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([torch.randn(n, 2, generator=g) + 3, torch.randn(n, 2, generator=g) - 3])
    return x.double(), torch.cat([torch.ones(n), torch.zeros(n)]).long()


def mlp(width=8, bias=False, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(2, width, bias=bias), nn.ReLU(), nn.Linear(width, 1, bias=bias)
    ).double()


def test_a_plain_sequential_goes_below_1e_400_in_memory_with_every_quantity():
    x, y = blobs()
    net = mlp()
    run = fit(net, x, y, loss="logistic", target_loss="1e-400", progress=False)
    rows = run.metrics
    assert rows["log10_loss_mean"].iloc[-1] < -400
    assert run.model is net and net.homogeneity_order == 2.0
    assert [g.degree for g in net.layer_groups()] == [1.0, 1.0]
    # the paper's plotted margin and the rho^L one, from the measured order and layers
    last = rows.iloc[-1]
    assert last["normalized_margin"] > 0 and last["normalized_margin_layers"] > 0
    assert last["smoothed_margin"] <= last["normalized_margin"]
    norms = [p.detach().norm() for p in net.parameters()]
    q_min = float(((2 * y - 1) * net(x)[:, 0]).min().detach())
    assert last["normalized_margin_layers"] == pytest.approx(q_min / float(norms[0] * norms[1]))
    # a checkpoint at a loss decade, and the references on the result
    early = run.load_model("1e-100")
    assert isinstance(early, nn.Sequential) and not torch.equal(early[0].weight, net[0].weight)
    table = kkt_along_training(run, "last")
    assert table.rows[0].error is None and table.rows[0].result.beta > 0
    f1 = compare_reference(run, "f1")
    assert 0 < f1.network_margin <= f1.reference_margin * (1 + 1e-6)
    # the temporary directory goes with the run
    path = run.path
    del run
    gc.collect()
    assert not path.exists()


def test_a_run_written_by_fit_is_opened_resumed_and_diagnosed_like_any_other(tmp_path):
    x, y = blobs()
    out = tmp_path / "mine"
    fit(mlp(), x, y, loss="logistic", max_epochs=30, out=out, progress=False)
    config = json.loads(json.dumps(load_run(out).config))
    assert config["model"]["kind"] == "sequential" and config["data"]["path"] == "data.safetensors"
    assert main(["resume", str(out), "--set", "train.max_epochs=60"]) == 0
    assert int(load_run(out).metrics["epoch"].iloc[-1]) == 60
    assert main(["kkt", str(out), "--checkpoint", "last"]) == 0
    rebuilt = load_run(out).load_model()
    assert isinstance(rebuilt, nn.Sequential) and rebuilt.homogeneity_order == 2.0
    features, labels = load_run(out).load_data()
    assert torch.equal(features, x) and torch.equal(labels, y)


def test_a_run_equals_the_same_run_trained_from_its_config(tmp_path):
    config = preset("digits-mlp")
    config["data"] = {"name": "digits", "n_train": 200, "n_test": None}
    config["train"].update(max_epochs=25, target_log10_loss=None)
    by_config = load_run(train(config, tmp_path / "by-config", progress=False))

    resolved = validate(config)
    data = build_data(resolved)
    model = build_network(resolved, data)
    run = fit(
        model, data.x_train, data.y_train, schedule=LossBased(), max_epochs=25, progress=False
    )
    keys = ["epoch", "attempts", "log10_loss_sum", "q_min", "normalized_margin", "alpha"]
    pd.testing.assert_frame_equal(run.metrics[keys], by_config.metrics[keys])


def test_a_module_that_is_not_homogeneous_trains_with_the_order_quantities_null(capsys):
    x, y = blobs()
    net = mlp(bias=True)
    run = fit(net, x, y, loss="logistic", max_epochs=20, progress=True)
    assert net.homogeneity_order is None
    assert run.metrics["normalized_margin"].isna().all()
    assert run.metrics["normalized_margin_layers"].notna().all()
    assert capsys.readouterr().err.count("declares no homogeneity order") == 1


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2, dtype=torch.float64))

    def forward(self, x):
        return (x @ self.w).unsqueeze(1)


def test_a_module_the_directory_cannot_describe_reopens_from_python_only(tmp_path):
    x, y = blobs()
    out = tmp_path / "custom"
    fit(Custom(), x, y, loss="logistic", max_epochs=10, out=out, progress=False)
    with pytest.raises(ConfigError, match=r"load_run\(path, model="):
        load_run(out).load_model()
    model = load_run(out, model=Custom()).load_model()
    assert model.homogeneity_order == 1.0 and not torch.equal(model.w, torch.ones(2).double())
    assert main(["kkt", str(out)]) == 2


def test_frozen_parameters_stay_frozen_and_the_order_counts_only_trained_layers():
    x, y = blobs()
    net = mlp()
    net[0].weight.requires_grad_(False)
    frozen = net[0].weight.detach().clone()
    fit(net, x, y, loss="logistic", schedule=Constant(lr=0.1), max_epochs=20, progress=False)
    assert torch.equal(net[0].weight, frozen)
    assert net.homogeneity_order == 1.0


def test_a_callback_sees_every_logged_row_and_can_stop_the_run():
    x, y = blobs()
    seen = []
    run = fit(
        mlp(), x, y, loss="logistic", max_epochs=1000, log_every=5,
        callback=lambda row: seen.append(row["epoch"]) or row["epoch"] >= 20, progress=False,
    )  # fmt: skip
    # rows are logged every 5 epochs and at each new loss decade
    assert seen == run.metrics["epoch"].tolist() and {0, 5, 10, 15} <= set(seen)
    assert seen[-1] == 20
    assert "callback" in run.status["message"]


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"target_loss": 1e-400}, "target_loss: 0 is not a loss level"),
        ({"target_loss": "-1"}, "target_loss"),
        ({"y": torch.tensor([0.5] * 40)}, "y: labels must be class indices"),
        ({"x": torch.full((40, 2), math.nan, dtype=torch.float64)}, "NaN"),
        ({"x": torch.zeros(3, 2, dtype=torch.float64)}, "one label per row"),
        ({"batch_size": 1000}, "batch_size"),
        ({"schedule": object()}, "schedule"),
        ({"schedule": "constant"}, "schedule: expected a schedule object, got the name"),
        ({"y": torch.tensor([0, 2] * 20)}, r"model: it has 1 output\(s\) but the labels name 3"),
        ({"x": torch.zeros(0, 2), "y": torch.zeros(0, dtype=torch.long)}, "set is empty"),
        ({"x_test": torch.zeros(2, 2)}, "x_test, y_test"),
        ({"dtype": "float16"}, "dtype: 'float16' is not one of float64, float32"),
        ({"device": "nowhere"}, "device: 'nowhere' is not a device"),
    ],
)
def test_bad_input_is_refused_naming_the_argument_before_anything_is_written(
    changes, named, tmp_path
):
    x, y = blobs()
    arguments = {"x": x, "y": y, "loss": "logistic", "out": tmp_path / "r", "progress": False}
    with pytest.raises(ConfigError, match=named):
        fit(mlp(), **{**arguments, **changes})
    assert not (tmp_path / "r").exists()


def test_a_network_that_returns_one_number_per_sample_is_told_to_return_a_column(tmp_path):
    x, y = blobs()
    flat = nn.Sequential(mlp(), nn.Flatten(0))
    with pytest.raises(ConfigError, match=r"model: it returns \(2,\) for 2 samples; .*\(N, 1\)"):
        fit(flat, x, y, out=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    # more outputs than the labels use is a model of more classes: it trains
    wide = nn.Sequential(nn.Linear(2, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False))
    assert fit(wide.double(), x, y, max_epochs=2, progress=False).metrics["epoch"].max() == 2


def test_fit_runs_off_the_main_thread_and_leaves_threads_and_the_global_seed_alone():
    x, y = blobs()
    net = mlp()  # its initialization draws from the global generator; fit must not
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    before = torch.random.get_rng_state()
    results = {}

    def work():
        results["run"] = fit(net, x, y, loss="logistic", max_epochs=10, progress=False)

    try:
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)  # the suite's own setting, for the tests after this one
    assert results["run"].metrics["epoch"].iloc[-1] == 10
    assert torch.equal(torch.random.get_rng_state(), before)


def test_your_own_data_file_from_the_command_line(tmp_path):
    x, y = blobs()
    np.savez(
        tmp_path / "blobs.npz", x=x.numpy(), y=y.numpy(), x_test=x[:4].numpy(), y_test=y[:4].numpy()
    )
    (tmp_path / "run.yaml").write_text(
        f"loss: logistic\ndata: {{name: file, path: {tmp_path / 'blobs.npz'}}}\n"
        "model: {kind: mlp, hidden: [8]}\ntrain: {max_epochs: 20, target_log10_loss: null}\n"
    )
    assert main(["run", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "out")]) == 0
    run = load_run(tmp_path / "out")
    assert run.metrics["test_acc"].notna().all()
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,0.5\n3,4,1\n")
    (tmp_path / "bad.yaml").write_text(
        f"data: {{name: file, path: {tmp_path / 'bad.csv'}}}\nmodel: {{kind: mlp}}\n"
    )
    assert main(["run", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "o2")]) == 2
    assert (
        main(["run", "digits-mlp", "--set", "data.path=x.npz", "--out", str(tmp_path / "o3")]) == 2
    )


def test_the_schedules_are_exported_and_a_schedule_of_your_own_trains():
    from dataclasses import dataclass, replace

    from marginlab.training.schedules import ScheduleState

    @dataclass(frozen=True)
    class Halving:
        """A constant step that halves every 10 epochs."""

        lr: float
        rolls_back = False

        def init(self, log_loss):
            return ScheduleState(alpha=self.lr, log_frame=log_loss)

        def log_step_factor(self, state, log_batch_loss):
            return math.log(self.lr) - math.log(2.0) * (state.epochs // 10) + log_batch_loss

        def end_epoch(self, state, log_loss, completed, smoothed_margin=None):
            return True, replace(state, log_frame=log_loss, epochs=state.epochs + 1)

    x, y = blobs()
    run = fit(mlp(), x, y, loss="logistic", schedule=Halving(0.2), max_epochs=30, progress=False)
    steps = 10 ** run.metrics["log10_lr"].dropna().to_numpy()
    assert steps[0] == pytest.approx(0.2) and steps[-1] == pytest.approx(0.05)
    assert run.config["train"]["schedule"] == "custom"
    assert {"fit", "LossBased", "Constant", "Normalized", "InverseSqrt"} <= set(marginlab.__all__)
    # and tab completion lists them, loaded or not
    assert set(marginlab.__all__) <= set(dir(marginlab))


def test_dtype_moves_the_model_and_the_tensors_follow():
    x, y = blobs()
    net = mlp().float()
    run = fit(net, x.float(), y, loss="logistic", max_epochs=5, dtype="float64", progress=False)
    assert run.model is net and next(net.parameters()).dtype == torch.float64
    assert run.config["dtype"] == "float64" and run.load_data("train")[0].dtype == torch.float64


# Replicas -----------------------------------------------------------------------------------


def _linear_replicas(count: int) -> list[torch.nn.Module]:
    nets = [torch.nn.Linear(2, 1, bias=False).double() for _ in range(count)]
    for k, net in enumerate(nets):
        torch.nn.init.constant_(net.weight, 0.1 * k)
    return nets


@pytest.mark.parametrize("batched", [False, True])
def test_replicas_train_as_each_model_alone(batched) -> None:
    x, y = blobs()
    etas = [0.5, 2.0, 8.0]
    runs = fit(
        _linear_replicas(3), x, y, loss="logistic", schedule=[Constant(e) for e in etas],
        max_epochs=40, progress=False, trace=True, batched=batched,
    )  # fmt: skip
    for k, (run, eta) in enumerate(zip(runs, etas, strict=True)):
        alone = fit(
            _linear_replicas(3)[k], x, y, loss="logistic", schedule=Constant(eta),
            max_epochs=40, progress=False, trace=True,
        )  # fmt: skip
        for column in ("log_loss_mean", "q_min", "norm"):  # batched: norms taken together
            np.testing.assert_allclose(run.trace[column], alone.trace[column], rtol=1e-12, atol=0)
        assert torch.allclose(run.model.weight, alone.model.weight, rtol=1e-12, atol=0)
    # the step sizes differ, so the replicas do too
    assert runs[0].trace["log_loss_mean"].iloc[-1] > runs[2].trace["log_loss_mean"].iloc[-1]


class _Doubled(torch.autograd.Function):
    """A custom backward of the old style (no setup_context): torch.func.vmap refuses it."""

    @staticmethod
    def forward(ctx, x):
        return 2.0 * x

    @staticmethod
    def backward(ctx, grad):
        return 2.0 * grad


class _DoubledLinear(torch.nn.Linear):
    def forward(self, x):
        return _Doubled.apply(super().forward(x))


def test_replicas_of_a_model_that_vmap_refuses_are_told_to_train_in_turn() -> None:
    x, y = blobs()
    models = [_DoubledLinear(x.shape[1], 1, bias=False).double() for _ in range(2)]
    with pytest.raises(ConfigError, match="batched=False"):
        fit(models, x, y, max_epochs=3, progress=False, batched=True)
    runs = fit(models, x, y, max_epochs=3, progress=False, batched=False)
    assert [int(run.metrics["epoch"].iloc[-1]) for run in runs] == [3, 3]


def test_replicas_take_their_own_data_and_stopping_rules(tmp_path) -> None:
    x, y = blobs()
    runs = fit(
        _linear_replicas(2), [x, 2.0 * x], y, loss="logistic", schedule=Constant(1.0),
        target_loss="1e-3", max_epochs=5000, progress=False, out=tmp_path, name="pair",
        batched=True,
    )  # fmt: skip
    assert [run.path for run in runs] == [tmp_path / "pair-0", tmp_path / "pair-1"]
    epochs = [int(load_run(run.path).metrics["epoch"].iloc[-1]) for run in runs]
    # doubling the inputs doubles the margins: the second replica reaches the target first
    assert epochs[1] < epochs[0]
    assert all(load_run(run.path).status["target_reached"] for run in runs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedule": [Constant(1.0)]}, "schedule: a list of 1 for 2 models"),
        ({"x": []}, "x: a list of 0 for 2 models"),
        ({"batch_size": 4}, "batch_size: replicas train full-batch"),
        ({"callback": print}, "callback: not available with replicas"),
    ],
)
def test_replica_settings_are_checked(changes, message) -> None:
    x, y = blobs()
    arguments = {"x": x, "schedule": Constant(1.0), **changes}
    with pytest.raises(ConfigError, match=message):
        fit(_linear_replicas(2), y=y, loss="logistic", max_epochs=2, progress=False, **arguments)


class _Overflowing(Constant):
    """A constant step whose factor eta * L is beyond float64 (exp(800))."""

    def log_step_factor(self, state, log_batch_loss):
        return 800.0


@pytest.mark.parametrize("batched", [None, True])
def test_a_step_too_large_for_a_float_stops_the_run_as_diverged(batched) -> None:
    x, y = blobs()
    models = _linear_replicas(2)
    runs = fit(
        models, x, y, loss="logistic", schedule=[Constant(1.0), _Overflowing(1.0)],
        max_epochs=30, progress=False, batched=batched,
    )  # fmt: skip
    assert runs[0].status["state"] == "finished"
    stopped = runs[1].status
    assert stopped["state"] == "stopped" and "diverged" in stopped["message"]
    assert torch.isfinite(models[1].weight).all()  # its last accepted weights, kept


def test_trace_columns_of_your_own_come_from_the_model_at_every_epoch() -> None:
    x, y = blobs()
    net = _linear_replicas(1)[0]
    run = fit(
        net, x, y, loss="logistic", schedule=Constant(1.0), max_epochs=12, progress=False,
        trace=lambda model: {"w0": float(model.weight[0, 0]), "grad": model.weight.grad},
    )  # fmt: skip
    trace = run.trace
    assert list(trace["epoch"]) == list(range(13))
    assert trace["w0"].iloc[0] == 0.0
    assert trace["w0"].iloc[-1] == float(net.weight.detach()[0, 0])
    # one weight of the two: never above the norm the trace keeps, and it moved every epoch
    assert (trace["w0"].abs() <= trace["norm"] + 1e-15).all()
    assert (np.diff(trace["w0"]) != 0).all()
    assert trace["grad"].isna().all()  # the engine's gradients never land on .grad


def test_a_stop_names_the_samples_no_step_can_move():
    # a frozen identity first layer: the sample (-1, -1) meets two inactive ReLUs, so its
    # output is 0 whatever the output layer does, and the loss cannot fall below l(0) / n
    first = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        first.weight.copy_(torch.eye(2))
    first.weight.requires_grad_(False)
    net = nn.Sequential(first, nn.ReLU(), nn.Linear(2, 1, bias=False).double())
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [2.0, 0.5]], dtype=torch.float64)
    run = fit(net, x, torch.tensor([1, 0, 1, 1]), progress=False, max_epochs=100_000)
    assert run.status["state"] == "stopped"
    assert "Note: 1 training sample(s) have margin exactly 0" in run.status["message"]


def test_the_stuck_sample_note_counts_only_margins_that_are_exactly_zero():
    from marginlab.measure.margins import Evaluation
    from marginlab.training.engine import _with_stuck_samples
    from marginlab.training.schedules import TrainingStopped

    stop = TrainingStopped("stalled")
    margins = torch.tensor([0.5, 0.0, -0.2, 0.0], dtype=torch.float64)
    noted = _with_stuck_samples(stop, Evaluation(torch.zeros(4, dtype=torch.float64), margins))
    assert str(noted).startswith("stalled. Note: 2 training sample(s)")
    moving = torch.tensor([0.5, 1e-300, -0.2, -1e-300], dtype=torch.float64)
    kept = _with_stuck_samples(stop, Evaluation(torch.zeros(4, dtype=torch.float64), moving))
    assert kept is stop
