"""Figures: the data behind every panel equals the run's metrics and result files."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from marginlab import load_run, train
from marginlab.cli import main
from marginlab.commands.plots import FIGURE_KINDS
from marginlab.measure.kkt import KKTResult
from marginlab.measure.trajectory import threshold_row
from marginlab.plots import (
    FIGURES,
    FigureUnavailable,
    plot_kkt,
    plot_loss,
    plot_margins,
    plot_norms,
    plot_robustness,
    plot_schedule,
)
from marginlab.report import figure, plot, plot_training
from marginlab.results.kkt import KKTRow, KKTTable, observer_table
from marginlab.results.robustness import CheckpointAttack, RobustnessReport

LOG10_LOGISTIC_THRESHOLD = math.log10(math.log(2.0))  # l(0) of the logistic loss


def digits_config(name, tensorboard=False, **train_options):
    return {
        "name": name,
        "seed": 3,
        "loss": "logistic",
        "data": {
            "name": "digits",
            "classes": [3, 8],
            "n_train": 200,
            "params": {"test_fraction": 0.2},
        },
        "model": {"kind": "mlp", "hidden": [16]},
        "train": {"max_epochs": 200, "target_log10_loss": None, **train_options},
        "log": {"every": 5, "checkpoint_decades": 2, "tensorboard": tensorboard},
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A loss-based run (which fits the data) and a constant-step run (which does not yet)."""
    root = tmp_path_factory.mktemp("plots")
    fitted = train(
        digits_config("loss-based", tensorboard=True, schedule="loss_based"),
        root / "loss-based",
        progress=False,
    )
    slow = train(
        digits_config("constant", schedule="constant", lr=0.5), root / "constant", progress=False
    )
    return fitted, slow


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    config = {
        "name": "xor",
        "loss": "logistic",
        "data": {"name": "xor", "params": {"n": 40, "noise": 0.2}},
        "model": {"kind": "two_layer", "width": 20},
        "train": {"schedule": "loss_based", "max_epochs": 100, "target_log10_loss": None},
        "log": {"every": 10},
    }
    return train(config, tmp_path_factory.mktemp("xor") / "run", progress=False)


def metrics_of(path):
    return load_run(path).metrics


def column(metrics, key):
    return pd.to_numeric(metrics[key], errors="coerce").to_numpy(float)


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.lines}


def test_loss_panel_plots_the_logged_losses_against_epochs_and_accumulated_lr(runs):
    metrics = metrics_of(runs[0])
    for x in ("epoch", "log10_accumulated_lr"):
        ax = Figure().subplots()
        plot_loss(ax, metrics, x=x)
        lines = lines_by_label(ax)
        for label, key in (("train", "log10_loss_mean"), ("test", "log10_test_loss_mean")):
            np.testing.assert_array_equal(lines[label].get_xdata(), column(metrics, x))
            np.testing.assert_array_equal(lines[label].get_ydata(), column(metrics, key))


@pytest.mark.parametrize("normalization", ["rho", "layers"])
def test_margin_panel_plots_both_margins_and_marks_the_threshold_epoch(runs, normalization):
    metrics = metrics_of(runs[0])
    suffix = "" if normalization == "rho" else "_layers"
    ax = Figure().subplots()
    plot_margins(ax, metrics, normalization)
    lines = lines_by_label(ax)
    for label in ("normalized", "smoothed"):
        key = f"{label}_margin{suffix}"
        np.testing.assert_array_equal(lines[label].get_xdata(), metrics["epoch"].to_numpy(float))
        np.testing.assert_array_equal(lines[label].get_ydata(), column(metrics, key))

    # Independently of the smoothed margin: the first logged epoch with sum of losses < l(0).
    below = np.flatnonzero(metrics["log10_loss_sum"].to_numpy() < LOG10_LOGISTIC_THRESHOLD)
    epoch = int(metrics["epoch"].iloc[below[0]])
    assert 0 < below[0] == threshold_row(metrics)
    (marker,) = [line for label, line in lines.items() if label.startswith("l(0)")]
    assert list(marker.get_xdata()) == [epoch, epoch]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["normalized", "smoothed", f"sum of losses < l(0), epoch {epoch}"]


def test_overlay_draws_one_line_per_run_with_legend_labels(runs):
    fig = figure(runs, "margins")
    ax = fig.axes[0]
    normalized = [line for line in ax.lines if line.get_label().endswith(": normalized")]
    assert [line.get_label() for line in normalized] == [
        "loss-based: normalized",
        "constant: normalized",
    ]
    for line, path in zip(normalized, runs, strict=True):
        np.testing.assert_array_equal(
            line.get_ydata(), column(metrics_of(path), "normalized_margin")
        )
    # Runs differ in colour and marker (greyscale); quantities in line style.
    assert normalized[0].get_color() != normalized[1].get_color()
    assert normalized[0].get_marker() != normalized[1].get_marker()
    smoothed = lines_by_label(ax)["loss-based: smoothed"]
    assert smoothed.get_linestyle() != normalized[0].get_linestyle()
    # One legend of the runs under the panels, one of the quantities in the panel.
    runs_legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert runs_legend == ["loss-based", "constant"]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["normalized", "smoothed", "sum of losses < l(0)"]
    # Only the run that fitted its data has a threshold marker.
    fitted = metrics_of(runs[0])
    epoch = int(fitted["epoch"].iloc[threshold_row(fitted)])
    assert [label for label in lines_by_label(ax) if "l(0)" in label] == [
        f"loss-based: l(0) at {epoch}"
    ]


def test_norm_and_schedule_panels_plot_the_metrics(runs):
    metrics = metrics_of(runs[0])
    layers = np.vstack(metrics["layer_norms"].to_list())
    ax = Figure().subplots()
    plot_norms(ax, metrics, per_layer=True)
    assert [line.get_label() for line in ax.lines] == ["layer 1", "layer 2"]
    for i, line in enumerate(ax.lines):
        np.testing.assert_array_equal(line.get_ydata(), layers[:, i])
    ax = Figure().subplots()
    plot_norms(ax, metrics)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), column(metrics, "param_norm"))
    for key in ("alpha", "log10_lr", "rollbacks"):
        ax = Figure().subplots()
        plot_schedule(ax, metrics, key)
        np.testing.assert_array_equal(ax.lines[0].get_ydata(), column(metrics, key))
        assert ax.get_yscale() == ("log" if key == "alpha" else "linear")
    assert column(metrics, "rollbacks")[-1] > 0  # the loss-based schedule did roll back


def test_every_metric_figure_has_its_panels(runs):
    for what, count in (("training", 3), ("loss", 2), ("margins", 2), ("norms", 2), ("lr", 3)):
        fig = figure(runs[:1], what)
        assert len([ax for ax in fig.axes if ax.get_visible()]) == count, what
        assert all(ax.lines for ax in fig.axes if ax.get_visible()), what


def test_boundary_is_the_zero_level_of_the_model_and_shows_the_training_points(xor_run, runs):
    run = load_run(xor_run)
    ax = figure([xor_run], "boundary").axes[0]
    x, y = run.load_data("train")
    points = [c for c in ax.collections if c.get_label().startswith("class")]
    for c, collection in enumerate(points):
        np.testing.assert_array_equal(collection.get_offsets(), x[y == c].numpy())
    (boundary,) = [c for c in ax.collections if isinstance(c, ContourSet) and c.filled is False]
    assert list(boundary.levels) == [0.0]
    vertices = np.vstack([path.vertices for path in boundary.get_paths()])
    model = run.load_model()
    with torch.no_grad():
        on_line = model(torch.as_tensor(vertices)).abs().max().item()
        scale = model(x).abs().max().item()
    assert len(vertices) > 10 and on_line < 0.02 * scale
    # The model classifies the training points correctly, so each class lies on one side.
    with torch.no_grad():
        assert torch.equal((model(x)[:, 0] > 0).long(), y)
    with pytest.raises(FigureUnavailable, match="2-d inputs"):
        figure(runs[:1], "boundary")


def test_png_and_pdf_are_written_by_extension(runs, tmp_path):
    pdf = plot(runs, "margins", tmp_path / "margins.pdf")
    png = plot(runs, "loss", tmp_path / "loss.png")
    assert pdf.read_bytes().startswith(b"%PDF") and png.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match=r"\.png"):
        plot(runs, "loss", tmp_path / "loss.jpeg")
    overview = plot_training(runs[1], tmp_path / "training.png")
    assert overview.read_bytes().startswith(b"\x89PNG")


def certificate(tau, eps_rel, delta, method):
    """A certificate as marginlab.measure.kkt.Certificate.to_dict writes it."""
    return {
        "tau": tau,
        "eps_abs": 2 * eps_rel,
        "eps_rel": eps_rel,
        "delta": delta,
        "n_active": 3,
        "multipliers": [0.5, 0.25, 0.25],
        "constraints": [[0, 1], [4, 1], [7, 1]],
        "method": method,
        "iterations": 0,
        "converged": True,
    }


def kkt_result(eps, taus=(0.1, 0.5), delta=None):
    fields = {"order": 2.0, "q_min": 1.0, "normalized_margin": 0.05, "theta_norm": 4.0}
    fields.update(n_params=10, n_constraints=5, beta=0.99, euler_error=0.0)
    certificates = [certificate(t, eps / t, eps if delta is None else delta, "dense") for t in taus]
    return KKTResult.from_dict(
        {
            **fields,
            "loss_weights": certificate(None, 4 * eps, 4 * eps, "loss_weights"),
            "certificates": certificates,
        }
    )


def test_kkt_figure_draws_every_certificate_of_the_kkt_record(runs, tmp_path):
    path = shutil.copytree(runs[0], tmp_path / "run")
    with pytest.raises(FigureUnavailable, match="marginlab kkt"):
        figure([path], "kkt")
    rows = (
        KKTRow(0, "init", -0.1, error="q_min <= 0"),
        KKTRow(50, "loss<1e-2", -2.0, kkt_result(0.08)),
        KKTRow(200, "last", -8.0, kkt_result(0.02)),
    )
    KKTTable(taus=(0.1, 0.5), rows=rows).save(load_run(path))
    epsilon, delta = figure([path], "kkt").axes
    lines = lines_by_label(epsilon)
    assert sorted(lines) == ["loss weights", "tau=0.1", "tau=0.5"]
    np.testing.assert_allclose(lines["tau=0.5"].get_xydata(), [[-2, 0.16], [-8, 0.04]])
    np.testing.assert_allclose(lines["loss weights"].get_ydata(), [0.32, 0.08])
    np.testing.assert_allclose(lines_by_label(delta)["tau=0.1"].get_ydata(), [0.08, 0.02])
    assert epsilon.get_yscale() == "log" and epsilon.xaxis_inverted()
    # every certificate has its own colour and line style
    styles = {(line.get_color(), str(line.get_linestyle())) for line in lines.values()}
    assert len(styles) == len({line.get_color() for line in lines.values()}) == 3


def test_zero_on_a_log_axis_is_a_gap_and_a_marked_point():
    table = KKTTable(
        taus=(0.1,),
        rows=tuple(
            KKTRow(e, "loss", -e / 10, kkt_result(0.1 / e, taus=(0.1,), delta=d))
            for e, d in ((10, 0.5), (20, 0.0), (30, 0.1))
        ),
    )
    ax = Figure().subplots()
    plot_kkt(ax, table.long_table(), "delta")
    drawn = lines_by_label(ax)["tau=0.1"]
    assert np.isnan(drawn.get_ydata()[1]) and drawn.get_ydata()[2] == 0.1
    (marked,) = [line for line in ax.lines if line.get_label() == "_tau=0.1 = 0"]
    assert marked.get_xdata().tolist() == [-2.0] and marked.get_marker() == "v"
    labelled = [t for t in ax.get_yticklabels() if t.get_text()]
    assert len(labelled) >= 3  # a decade and a half: 1-2-5 ticks carry labels too


def robustness_report(distances, epochs=(40, 200), eps=(0.5, 1.0), attack="cw"):
    checkpoints = tuple(
        CheckpointAttack(label, epoch, -epoch / 20, 0.05, np.asarray(d, float), np.zeros(len(d)))
        for label, epoch, d in zip(("1e-2", "last"), epochs, distances, strict=False)
    )
    return RobustnessReport(
        "l2", attack, "train", {}, 0, eps, attack == "pgd", np.arange(4), checkpoints
    )


def test_robustness_figure_draws_the_attack_report(runs, tmp_path):
    path = shutil.copytree(runs[0], tmp_path / "run")
    with pytest.raises(FigureUnavailable, match="marginlab attack"):
        figure([path], "robustness")
    report = robustness_report([[0.2, 0.6, 0.6, np.inf], [0.7, 0.8, 1.2, np.inf]])
    saved = report.save(load_run(path))
    assert saved.name == "robustness-l2-cw-train.json" and saved.with_suffix(".csv").exists()
    (ax,) = figure([path], "robustness").axes
    assert ax.get_title() == "l2 cw train"
    lines = lines_by_label(ax)
    late = lines["last (epoch 200)"]
    at = {round(float(e), 6): a for e, a in zip(late.get_xdata(), late.get_ydata(), strict=True)}
    top = max(at)
    assert at[0.0] == 1.0 and at[top] == np.mean(np.array([0.7, 0.8, 1.2, np.inf]) > top)
    early = lines["1e-2 (epoch 40)"]
    assert early.get_color() != late.get_color() and early.get_linestyle() != late.get_linestyle()
    loaded = RobustnessReport.load(saved)
    assert loaded.to_dict() == report.to_dict()


def test_robustness_file_of_the_previous_format_still_loads(tmp_path):
    payload = {
        "norm": "linf",
        "attack": "pgd",
        "options": {"steps": 10},
        "split": "train",
        "n": 2,
        "seed": 0,
        "eps": [0.1, 0.2],
        "rows": [{"checkpoint": "last", "epoch": 7, "log10_loss": -3.0, "normalized_margin": 0.1}],
        "indices": [3, 5],
        "samples": {"last": {"distance": [0.1, None], "lower_bound": [0.01, 0.02]}},
        "paired": [],
    }
    path = tmp_path / "robustness-linf-pgd-train.json"
    path.write_text(json.dumps(payload))
    report = RobustnessReport.load(path)
    assert report.fixed_eps and report.checkpoints[0].distances.tolist() == [0.1, math.inf]
    assert report.table()["robust_acc@0.1"].tolist() == [0.5]
    assert report.curves()["eps"].tolist() == [0.0, 0.1, 0.2]


def test_kkt_figure_falls_back_to_observer_metrics(runs, tmp_path):
    path = shutil.copytree(runs[0], tmp_path / "run")
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    rows[-1].update(kkt_eps_rel=0.25, kkt_delta=0.5)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = observer_table(load_run(path).metrics)
    assert table[["log10_loss", "eps_rel", "delta"]].values.tolist() == [
        [rows[-1]["log10_loss_mean"], 0.25, 0.5]
    ]
    assert len(figure([path], "kkt").axes[0].lines) == 1


def test_robustness_panel_overlays_runs():
    report = robustness_report([[0.2, 0.6, 1.2, 1.4]], epochs=(9,))
    ax = Figure().subplots()
    plot_robustness(ax, {"a": report, "b": report})
    assert [line.get_label() for line in ax.lines] == ["a: 1e-2 (epoch 9)", "b: 1e-2 (epoch 9)"]
    assert ax.lines[0].get_marker() != ax.lines[1].get_marker()
    assert ax.lines[0].get_color() != ax.lines[1].get_color()


def test_kkt_panel_overlays_runs():
    table = pd.DataFrame(
        {"log10_loss": [-5, -9], "eps_rel": [0.1, 0.05], "delta": [0.3, 0.2], "certificate": "c"}
    )
    ax = Figure().subplots()
    plot_kkt(ax, {"a": table, "b": table}, "eps_rel")
    assert [line.get_label() for line in ax.lines] == ["a: c", "b: c"]
    assert ax.lines[0].get_color() != ax.lines[1].get_color()


def test_command_line_plot_report_and_tensorboard_flag(runs, tmp_path, capsys):
    assert FIGURE_KINDS == tuple(FIGURES)
    out = tmp_path / "norms.pdf"
    assert main(["plot", str(runs[0]), str(runs[1]), "--what", "norms", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF")
    assert main(["plot", str(runs[0]), "--what", "kkt", "--out", str(tmp_path / "k.png")]) == 2
    assert "no KKT results" in capsys.readouterr().err

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(digits_config("tiny", max_epochs=3)))
    run_dir = tmp_path / "tiny"
    assert main(["run", str(spec), "--tensorboard", "--out", str(run_dir)]) == 0
    assert load_run(run_dir).config["log"]["tensorboard"] is True
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "training.png").exists()


def test_tensorboard_events_hold_the_metrics(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = runs[0]
    events = EventAccumulator(str(path / "tensorboard"))
    events.Reload()
    metrics = metrics_of(path)
    tags = set(events.Tags()["scalars"])
    assert {"log10_loss_mean", "normalized_margin", "layer_norms/1", "alpha", "rollbacks"} <= tags
    for tag in (
        "log10_loss_mean",
        "log10_test_loss_mean",
        "smoothed_margin",
        "layer_norms/1",
        "rollbacks",
    ):
        key, _, index = tag.partition("/")
        values = metrics[key].map(lambda v, i=index: v[int(i)] if i else v)
        logged = metrics["epoch"][values.notna()].to_numpy()
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == logged.tolist(), tag
        # TensorBoard stores float32.
        np.testing.assert_allclose(
            [s.value for s in scalars], values.dropna().to_numpy(float), rtol=1e-6, err_msg=tag
        )
