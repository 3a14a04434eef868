"""Lyu & Li 2020: gradient descent maximizes the margin of homogeneous networks.

What each scale trains (papers/lyu-li.md sections C and E):

- ``full``: the paper's MNIST CNN (bias in layer 1 only, and with biases everywhere), SGD
  batch 100, loss-based schedule and constant lr 0.01, 10000 epochs; the CIFAR-10 VGG-16
  variant likewise (a GPU job); C&W on 10000 training images.
- ``cpu``: the same CNN with fewer channels (``MNIST_SMALL_CNN``) on 1000 MNIST images, to
  a loss of 1e-30.
- ``ci``: a small CNN on 300 scikit-learn digits, to a loss of 1e-40.

Every scale also trains a full-batch gradient-descent track with a smooth homogeneous
activation (ReLU^3), where the paper's gradient-descent theorem holds as stated: there the
smoothed margin must not decrease at all, and the KKT certificates are measured along it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marginlab.experiments.presets import LYU_LI_MNIST_CNN, preset
from marginlab.experiments.study import Study
from marginlab.measure.rates import late_time_slope, rates_table
from marginlab.plots import threshold_row
from marginlab.runs.run import Run

# A shallower CNN than the digits-cnn preset's: order 4 like the paper's MNIST CNN.
DIGITS_SMALL_CNN = "conv3x3-8,maxpool,conv3x3-16,maxpool,fc32,fc10"
# The paper's MNIST CNN with a quarter of the channels and fc64: an hour of CPU, not days.
MNIST_SMALL_CNN = "conv5x5-8,maxpool,conv3x3-16,maxpool,fc64,fc10"
# E5: non-decreasing at >= 99% of logged epochs, no single drop above 1% (SGD is noisy).
SGD_MONOTONE_SHARE, SGD_MAX_DROP = 0.99, 0.01
# Gradient descent with a smooth model: the theorem itself, up to rounding.
GD_MAX_DROP = 1e-9


@dataclass(frozen=True)
class Setting:
    """What one scale trains: the CNN runs, the smooth GD track and the attack."""

    data: dict
    spec: str
    batch_size: int
    const_lr: float
    max_epochs: int
    target_log10_loss: float | None
    gd_data: dict
    gd_hidden: list[int]
    gd_target: float
    gd_const_epochs: int
    robust_levels: tuple[str, ...]
    robust_n: int
    attack: str
    kkt_levels: int


SETTINGS = {
    "ci": Setting(
        data={"name": "digits", "n_train": 300, "subset": "random"},
        spec=DIGITS_SMALL_CNN,
        batch_size=50,
        const_lr=0.1,
        max_epochs=3000,
        target_log10_loss=-40.0,
        gd_data={"name": "digits", "n_train": 200, "subset": "random"},
        gd_hidden=[32],
        gd_target=-60.0,
        gd_const_epochs=10_000,
        robust_levels=("1e-10", "1e-20", "1e-30", "last"),
        robust_n=100,
        attack="fmn",
        kkt_levels=4,
    ),
    "cpu": Setting(
        data={"name": "mnist", "n_train": 1000, "n_test": 1000, "subset": "random"},
        spec=MNIST_SMALL_CNN,
        batch_size=100,
        const_lr=0.1,
        max_epochs=2000,
        target_log10_loss=-30.0,
        gd_data={"name": "digits"},
        gd_hidden=[64],
        gd_target=-120.0,
        gd_const_epochs=50_000,
        robust_levels=("1e-10", "1e-20", "1e-30", "last"),
        robust_n=500,
        attack="fmn",
        kkt_levels=6,
    ),
    "full": Setting(
        data={"name": "mnist"},
        spec=LYU_LI_MNIST_CNN,
        batch_size=100,
        const_lr=0.01,
        max_epochs=10000,
        target_log10_loss=None,
        gd_data={"name": "mnist", "n_train": 2000, "subset": "random"},
        gd_hidden=[128],
        gd_target=-200.0,
        gd_const_epochs=200_000,
        robust_levels=("1e-10", "1e-15", "1e-20", "1e-120", "last"),
        robust_n=10000,
        attack="cw",
        kkt_levels=8,
    ),
}


# --- measurements on a run's metrics --------------------------------------------------


def after_threshold(metrics: pd.DataFrame) -> pd.DataFrame:
    """The logged rows from the first one whose smoothed margin is defined (summed loss
    below the threshold of the loss, where the theorem starts).

    Examples
    --------
    >>> rows = pd.DataFrame({"epoch": [0, 1, 2], "smoothed_margin": [None, 0.1, 0.2]})
    >>> after_threshold(rows)["epoch"].tolist()
    [1, 2]
    """
    row = threshold_row(metrics)
    return metrics.iloc[0:0] if row is None else metrics.iloc[row:]


def relative_drops(values: np.ndarray) -> np.ndarray:
    """``max(0, (v[t] - v[t+1]) / |v[t]|)`` for consecutive values: how much each step fell.

    Examples
    --------
    >>> relative_drops(np.array([1.0, 2.0, 1.5, 1.5])).tolist()
    [0.0, 0.25, 0.0]
    """
    values = np.asarray(values, dtype=float)
    return np.maximum(0.0, (values[:-1] - values[1:]) / np.abs(values[:-1]))


def first_fit_epoch(metrics: pd.DataFrame) -> int | None:
    """The first logged epoch with 100% training accuracy (None if never).

    Examples
    --------
    >>> first_fit_epoch(pd.DataFrame({"epoch": [0, 10, 20], "train_acc": [0.5, 1.0, 1.0]}))
    10
    """
    fitted = metrics["train_acc"] >= 1.0
    return int(metrics.loc[fitted.idxmax(), "epoch"]) if fitted.any() else None


def linearity(x: np.ndarray, y: np.ndarray) -> float:
    """R^2 of the least-squares line through ``(x, y)``.

    Examples
    --------
    >>> round(linearity(np.arange(5.0), 3 * np.arange(5.0) + 1), 12)
    1.0
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    residual = y - np.polyval(np.polyfit(x, y, 1), x)
    return float(1.0 - residual.var() / y.var())


def spread(values: np.ndarray) -> float:
    """``(max - min) / mean``: how far a quantity that should settle still moves.

    Examples
    --------
    >>> round(spread(np.array([0.9, 1.0, 1.1])), 12)
    0.2
    """
    values = np.asarray(values, dtype=float)
    return float((values.max() - values.min()) / values.mean())


# --- the runs ---------------------------------------------------------------------------


def _cnn_config(setting: Setting, schedule: dict, max_epochs: int, bias: str = "first") -> dict:
    if setting.data["name"] == "digits":
        config = preset("digits-cnn")
    else:
        config = preset("mnist-cnn-loss-based")
        # one thread is fastest for these small models on a shared CPU; full scale is a GPU job
        config["threads"] = None if setting.spec == LYU_LI_MNIST_CNN else 1
    config["data"] = dict(setting.data)
    config["model"] = {"kind": "cnn", "spec": setting.spec, "bias": bias}
    # The paper's rule: an epoch is rolled back only when the loss rose.
    config["train"]["reject_margin_decrease"] = False
    config["train"].update(schedule)
    # On one thread per process, the retries run ahead on a second core.
    config["train"]["speculate"] = schedule["schedule"] == "loss_based" and config["threads"] == 1
    config["train"]["batch_size"] = setting.batch_size
    config["train"]["max_epochs"] = max_epochs
    config["train"]["target_log10_loss"] = (
        setting.target_log10_loss if schedule["schedule"] == "loss_based" else None
    )
    config.pop("name", None)
    return config


def _gd_config(setting: Setting, schedule: str) -> dict:
    """The smooth full-batch GD track: loss-based to go deep, or constant lr 0.1, whose
    steps stay below the theorem's bound H(L) once the loss is small (condition S5)."""
    if schedule == "constant":
        train = {"schedule": "constant", "lr": 0.1, "max_epochs": setting.gd_const_epochs}
        log = {"every": max(10, setting.gd_const_epochs // 500), "checkpoint_decades": 1}
    else:
        train = {"schedule": "loss_based", "max_epochs": 100_000}
        log = {"every": 10, "checkpoint_decades": 5}
    return {
        "loss": "cross_entropy",
        "data": dict(setting.gd_data),
        "model": {"kind": "mlp", "hidden": setting.gd_hidden, "activation": "relu_k", "k": 3},
        "train": train | {"target_log10_loss": setting.gd_target},
        "log": log,
        "threads": 1,
    }


def reproduce(study: Study) -> None:
    """Train the scale's runs and check the paper's claims on them."""
    setting = SETTINGS[study.scale]
    missing = study.data_missing(setting.data["name"])
    if missing:
        for key, statement in CNN_CLAIMS.items():
            study.not_run(key, statement, f"data: {missing}")
    else:
        based = study.train(
            "cnn-loss-based", _cnn_config(setting, {"schedule": "loss_based"}, setting.max_epochs)
        )
        epochs = int(based.metrics["epoch"].iloc[-1])
        const = study.train(
            "cnn-const",
            _cnn_config(setting, {"schedule": "constant", "lr": setting.const_lr}, epochs),
        )
        _cnn_claims(study, setting, based, const)
        _robustness_claim(study, setting, based)
        _biased_claims(study, setting, epochs)
    _gd_claims(
        study,
        setting,
        study.train("mlp-relu3-gd-const", _gd_config(setting, "constant")),
        study.train("mlp-relu3-gd-loss-based", _gd_config(setting, "loss_based")),
    )
    _cifar_claims(study)


CNN_CLAIMS = {
    "fits-early": "the training set is fitted early, long before the margin stops growing",
    "smoothed-margin-monotone": "after the loss threshold, the smoothed normalized margin is "
    "non-decreasing (SGD, loss-based and constant schedules)",
    "smoothed-below-normalized": "the smoothed normalized margin never exceeds the normalized "
    "margin",
    "margin-grows": "the normalized margin grows after the training set is fitted",
    "loss-based-beats-const": "the loss-based schedule reaches a clearly larger normalized "
    "margin than the constant one in the same number of epochs",
    "loss-linear-in-epochs": "with the loss-based schedule, log loss falls about linearly in "
    "epochs after fitting",
    "alpha-range": "alpha stays within [1e-9, 1] for all epochs",
    "norm-rate-settles": "rho^L / log(1/L) settles (it tends to 1 / the limit margin)",
    "const-loss-rate": "with a constant learning rate the loss falls as 1 / (T (log T)^(2-2/L))",
    "loss-below-1e-800": "the loss-based run's loss is below 1e-800 by epoch 9000",
    "robustness-grows": "L2 robustness on the training set grows along training (Fig 8 order)",
}


def _cnn_claims(study: Study, setting: Setting, based: Run, const: Run) -> None:
    full = study.scale == "full"
    metrics = {"loss-based": based.metrics, "constant": const.metrics}
    epochs = int(based.metrics["epoch"].iloc[-1])

    fits = {label: first_fit_epoch(rows) for label, rows in metrics.items()}
    limit = 150 if full else 0.2 * epochs
    study.check(
        "fits-early",
        CNN_CLAIMS["fits-early"],
        ours=", ".join(f"{label}: epoch {fit} of {epochs}" for label, fit in fits.items()),
        passed=all(fit is not None and fit <= limit for fit in fits.values()),
        paper_value="about 100 of 10000 epochs (MNIST, lr 0.01)",
        tolerance="100% train accuracy by epoch 150" if full else "by 20% of the epochs",
        note=""
        if full
        else f"constant lr {setting.const_lr}: far fewer steps per epoch than on all of MNIST",
    )

    shares, drops, above = [], [], []
    for rows in metrics.values():
        tail = after_threshold(rows)
        for key in ("smoothed_margin", "smoothed_margin_layers"):
            step_drops = relative_drops(tail[key].to_numpy(float))
            shares.append(float((step_drops == 0).mean()) if len(step_drops) else math.nan)
            drops.append(float(step_drops.max()) if len(step_drops) else math.nan)
        for smooth, hard in (
            ("smoothed_margin", "normalized_margin"),
            ("smoothed_margin_layers", "normalized_margin_layers"),
        ):
            gap = (rows[smooth] - rows[hard]).dropna()
            above.append(int((gap > 0).sum()))
    # E5 asks for 99% at the paper's ~1000 logged epochs; a run of ~150 logged epochs
    # cannot resolve that share, so smaller scales allow 95% (the drop bound stays 1%).
    share = SGD_MONOTONE_SHARE if full else 0.95
    study.check(
        "smoothed-margin-monotone",
        CNN_CLAIMS["smoothed-margin-monotone"],
        ours=f"non-decreasing at {min(shares):.1%} of logged epochs; largest drop {max(drops):.2e}",
        passed=min(shares) >= share and max(drops) <= SGD_MAX_DROP,
        paper_value="non-decreasing (Thm 4.1 for gradient flow; SGD empirically)",
        tolerance=f">= {share:.0%} of logged epochs, no drop > {SGD_MAX_DROP:.0%}",
        note="both normalizations (rho^L and the product of layer norms), both schedules",
    )
    study.check(
        "smoothed-below-normalized",
        CNN_CLAIMS["smoothed-below-normalized"],
        ours=f"{sum(above)} logged rows above",
        passed=sum(above) == 0,
        paper_value="smoothed <= normalized (Lemma A.5)",
        tolerance="no row above",
    )

    grown = {}
    for label, rows in metrics.items():
        tail = after_threshold(rows)["normalized_margin_layers"].to_numpy(float)
        grown[label] = tail[-1] / tail[0] if len(tail) else math.nan
    study.check(
        "margin-grows",
        CNN_CLAIMS["margin-grows"],
        ours=", ".join(f"{k}: x{v:.3g} from the threshold" for k, v in grown.items()),
        passed=all(v > 1.0 for v in grown.values()),
        paper_value="grows (Fig 1)",
        tolerance="last / first > 1 after the threshold, both schedules",
    )

    margin_based = float(based.metrics["normalized_margin_layers"].iloc[-1])
    margin_const = float(const.metrics["normalized_margin_layers"].iloc[-1])
    ratio = margin_based / margin_const
    study.check(
        "loss-based-beats-const",
        CNN_CLAIMS["loss-based-beats-const"],
        ours=f"{margin_based:.3g} vs {margin_const:.3g} at epoch {epochs}: x{ratio:.3g}",
        passed=ratio >= (5.0 if full else 2.0),
        paper_value="1.2e-3 vs 1.8e-4 at epoch 10000: about 10x (Fig 1)",
        tolerance=">= 5x" if full else ">= 2x (fewer epochs than the paper)",
    )
    if full:
        _full_scale_values(study, based, const)

    tail = after_threshold(based.metrics)
    r2 = linearity(tail["epoch"], tail["log10_loss_mean"]) if len(tail) > 2 else math.nan
    study.check(
        "loss-linear-in-epochs",
        CNN_CLAIMS["loss-linear-in-epochs"],
        ours=f"R^2 = {r2:.4f} over {len(tail)} logged epochs",
        passed=r2 >= 0.98,
        paper_value="about linear (Fig 1b)",
        tolerance="R^2 of a line >= 0.98",
    )
    alpha = based.metrics["alpha"].to_numpy(float)
    study.check(
        "alpha-range",
        CNN_CLAIMS["alpha-range"],
        ours=f"[{alpha.min():.3g}, {alpha.max():.3g}]",
        passed=bool(alpha.min() >= 1e-9 and alpha.max() <= 1.0),
        paper_value="[1e-9, 1] (Fig 4)",
        tolerance="inside [1e-9, 1]",
    )

    order = float(based.load_model().homogeneity_order)
    last = tail[tail["epoch"] >= 0.9 * epochs]
    rates = rates_table(last, order)["norm_rate"].dropna().to_numpy(float)
    moved = spread(rates) if len(rates) > 1 else math.nan
    study.check(
        "norm-rate-settles",
        CNN_CLAIMS["norm-rate-settles"],
        ours=f"moves {moved:.1%} over the last 10% of the epochs",
        passed=moved < 0.10,
        paper_value=None,
        tolerance="< 10% over the last 10% of the epochs (E6)",
    )

    late = after_threshold(const.metrics)
    late = late.iloc[len(late) // 2 :]
    rate = rates_table(late, order)["loss_rate"].dropna().to_numpy(float)
    band = float(rate.max() / rate.min()) if len(rate) > 1 else math.nan
    slope = late_time_slope(late) if len(late) >= 4 else math.nan
    study.check(
        "const-loss-rate",
        CNN_CLAIMS["const-loss-rate"],
        ours=f"L T (log T)^(2-2/L) within a factor {band:.3g} over the late half "
        f"({len(late)} rows); log-log slope {slope:.3f}",
        passed=band <= 3.0,
        paper_value="L = Theta(1 / (T (log T)^(2-2/L))) (Thm 4.3)",
        tolerance="L T (log T)^(2-2/L) within a factor 3 (E6)",
        note="the raw slope tends to -1 from below, as -1 - (2-2/L) / ln T",
    )

    from marginlab.report import figure

    study.save_figure(
        "cnn-training",
        figure([based, const], "training"),
        "CNN: training loss and normalized margins, loss-based against constant schedule (Fig 1).",
    )


def _full_scale_values(study: Study, based: Run, const: Run) -> None:
    """The paper's numbers, which only the paper's scale can be held to."""

    def at(run: Run, epoch: int, key: str) -> float:
        rows = run.metrics[run.metrics["epoch"] <= epoch]
        return float(rows[key].iloc[-1])

    checks = (
        ("const-margin", const, 10000, "normalized_margin_layers", 0.9e-4, 3.6e-4, "1.8e-4"),
        ("loss-based-margin", based, 10000, "normalized_margin_layers", 0.6e-3, 2.4e-3, "1.2e-3"),
    )
    for key, run, epoch, column, low, high, paper in checks:
        value = at(run, epoch, column)
        study.check(
            key,
            f"normalized margin (product of layer norms) at epoch {epoch}",
            ours=value,
            passed=low <= value <= high,
            paper_value=f"about {paper} (Fig 1)",
            tolerance=f"in [{low:.2g}, {high:.2g}] (2x for seed and framework)",
        )
    at_9000 = at(based, 9000, "log10_loss_mean")
    study.check(
        "loss-below-1e-800",
        CNN_CLAIMS["loss-below-1e-800"],
        ours=f"1e{at_9000:.0f} at epoch 9000",
        passed=at_9000 <= -600,
        paper_value="below 1e-800 after 9000 epochs",
        tolerance="<= 1e-600",
    )
    at_10000 = at(based, 10000, "log10_loss_mean")
    study.check(
        "loss-at-10000",
        "the loss-based run's loss at epoch 10000",
        ours=f"1e{at_10000:.0f}",
        passed=-1060 <= at_10000 <= -700,
        paper_value="about 1e-882 (Table 1, model-5)",
        tolerance="in [1e-1060, 1e-700]",
    )


def _robustness_claim(study: Study, setting: Setting, based: Run) -> None:
    from marginlab.report import robustness_figure
    from marginlab.results.robustness import attack_along_training

    report = attack_along_training(
        based,
        setting.robust_levels,
        split="train",
        n=setting.robust_n,
        attack=setting.attack,
        progress=False,
    )
    saved = report.save(based)
    # "last" is the final level when the run stops there
    table = report.table().drop_duplicates("epoch")
    medians = table["median_distance"].to_numpy(float)
    steps = relative_drops(medians)
    ordered = bool((steps <= 0.02).all()) and medians[-1] > medians[0]
    levels = ", ".join(f"{c} ({m:.3g})" for c, m in zip(table["checkpoint"], medians, strict=True))
    study.check(
        "robustness-grows",
        CNN_CLAIMS["robustness-grows"],
        ours=f"median L2 distance by checkpoint: {levels}",
        passed=ordered,
        paper_value="train set, eps < 0.3: model-1 < 2 < 3 < 4 < 5 (Fig 8)",
        tolerance="median distance never falls by more than 2% from one checkpoint to the "
        "next, and the last exceeds the first",
        note=f"{setting.attack.upper()} L2 on {setting.robust_n} training images"
        + ("" if setting.attack == "cw" else "; the paper used C&W"),
    )
    png = robustness_figure(based, report, saved.with_suffix(".png"))
    study.add_figure(
        png,
        "Robust accuracy against L2 epsilon on training images, one curve "
        "per checkpoint (Fig 8, top row).",
    )


def _biased_claims(study: Study, setting: Setting, epochs: int) -> None:
    statement = "the CNN with biases in every layer (not homogeneous) also grows its margin"
    if study.scale == "ci":
        study.not_run("biased-margin-grows", statement, "cpu and full scales")
        return
    biased = study.train(
        "cnn-biased-loss-based",
        _cnn_config(setting, {"schedule": "loss_based"}, epochs, bias="all"),
    )
    rows = biased.metrics
    fitted = rows[rows["train_acc"] >= 1.0]
    q = fitted["q_min"].to_numpy(float)
    norms = fitted["param_norm"].to_numpy(float)
    growth = (q[-1] / norms[-1]) / (q[0] / norms[0]) if len(q) > 1 else math.nan
    study.check(
        "biased-margin-grows",
        statement,
        ours=f"q_min / rho grew x{growth:.3g} after fitting",
        passed=growth > 1.0,
        paper_value="it increases too (Fig 1; no theory covers it)",
        tolerance="report only: last / first > 1",
        note="q_min / rho (the order is not defined without homogeneity)",
    )


def _largest_smoothed_drop(run: Run) -> tuple[float, int]:
    tail = after_threshold(run.metrics)
    drops = [
        relative_drops(tail[k].to_numpy(float)).max(initial=0.0)
        for k in ("smoothed_margin", "smoothed_margin_layers")
    ]
    return max(drops), len(tail)


def _gd_claims(study: Study, setting: Setting, const: Run, gd: Run) -> None:
    drop, rows = _largest_smoothed_drop(const)
    deep_drop, _ = _largest_smoothed_drop(gd)
    study.check(
        "gd-smoothed-margin-monotone",
        "full-batch GD with a small constant step on a smooth homogeneous net (ReLU^3, "
        "where Thm 4.2 applies): the smoothed margin never decreases",
        ours=f"largest relative drop {drop:.2e} over {rows} logged epochs past the threshold",
        passed=rows > 1 and drop <= GD_MAX_DROP,
        paper_value="non-decreasing (Thm 4.2)",
        tolerance=f"no drop > {GD_MAX_DROP:g}",
        note=f"with the loss-based schedule (eta = alpha / L, above the theorem's step bound "
        f"H(L) by a power of log(1/L)) the largest drop is {deep_drop:.2e}",
    )

    from marginlab.measure.kkt import kkt_certificates

    x, y = gd.load_data()
    kept = [
        c for c in gd.checkpoints[:-1] if c.log10_loss_mean is not None and c.log10_loss_mean < -4
    ]
    chosen = [kept[i] for i in np.linspace(0, len(kept) - 1, setting.kkt_levels).astype(int)]
    eps, rows = [], []
    for checkpoint in chosen:
        result = kkt_certificates(
            gd.load_model(checkpoint.epoch), x, y, "cross_entropy", taus=(0.1,)
        )
        eps.append(result.certificates[0].eps_rel)
        rows.append(
            (
                checkpoint.log10_loss_mean,
                result.certificates[0].eps_rel,
                result.certificates[0].delta,
            )
        )
    rise = float(np.diff(eps).max(initial=0.0))
    study.check(
        "kkt-certificates-shrink",
        "the KKT certificate (epsilon, at activity tolerance 0.1) shrinks along training",
        ours="eps_rel " + ", ".join(f"{e:.3g} at 1e{lv:.0f}" for lv, e, _ in rows),
        passed=bool(len(eps) > 1 and (np.diff(eps) <= 0).all()),
        paper_value="(eps, delta) -> 0 along training (Thm 4.4, App C)",
        tolerance="decreasing at every checkpoint",
        note=f"largest rise {rise:.2g}; best NNLS certificate on the ReLU^3 GD track",
    )

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
    levels = [-r[0] for r in rows]
    ax.plot(levels, [r[1] for r in rows], "o-", color="0.1", label="epsilon_rel")
    ax.plot(levels, [r[2] for r in rows], "s--", color="0.5", label="delta")
    ax.set_xlabel("log10 (1 / training loss)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("KKT certificate at tau = 0.1, ReLU^3 MLP, full-batch GD", fontsize=9)
    study.save_figure(
        "gd-kkt",
        fig,
        "KKT certificate (epsilon_rel, delta) along training of the smooth full-batch GD track.",
    )


def _cifar_claims(study: Study) -> None:
    statement = (
        "CIFAR-10 VGG-16 (no bias): the normalized margin grows, faster with the "
        "loss-based schedule, while test accuracy stays within 2 points"
    )
    if study.scale != "full":
        study.not_run("cifar-vgg", statement, "full scale only (10000 epochs of VGG-16: a GPU)")
        return
    missing = study.data_missing("cifar10")
    if missing:
        study.not_run("cifar-vgg", statement, f"data: {missing}")
        return
    based = study.train("vgg-loss-based", preset("cifar-vgg-loss-based"))
    const = study.train("vgg-const", preset("cifar-vgg-const"))
    growth = {
        label: float(run.metrics["normalized_margin_layers"].iloc[-1])
        / float(after_threshold(run.metrics)["normalized_margin_layers"].iloc[0])
        for label, run in (("loss-based", based), ("constant", const))
    }
    tail = after_threshold(based.metrics)
    test_change = abs(float(tail["test_acc"].iloc[-1]) - float(tail["test_acc"].iloc[0]))
    study.check(
        "cifar-vgg",
        statement,
        ours=f"margin growth loss-based x{growth['loss-based']:.3g}, constant "
        f"x{growth['constant']:.3g}; test accuracy moved {100 * test_change:.2f} points",
        passed=growth["loss-based"] > growth["constant"] > 1.0 and test_change <= 0.02,
        paper_value="grows, loss-based faster; test accuracy changes only slightly (Figs 5-7)",
        tolerance="growth loss-based > constant > 1; test accuracy within 2 points",
        note="one seed (the paper averages 3 for the accuracy panel)",
    )
