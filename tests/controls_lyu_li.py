"""Satisfying and falsifying measurements for the Lyu & Li claims (see test_claims.py).

The falsifying inputs are what a false statement or a broken trainer would log: a loss that
stops falling, a rate off by a power, a margin that drops, an alpha that collapses.
"""

import math

import numpy as np

EPOCHS = np.arange(0.0, 1000.0, 10.0)
RISING = 1e-3 * (1.0 + np.log1p(EPOCHS))  # a margin that keeps rising, ever slower
STALLED = np.where(EPOCHS < 500, -0.05 * EPOCHS, -25.0)  # log10 loss that stops falling
ORDER = 4.0

# Constant-step GD in the theorem's regime: T from 1e2 to 1e5, L = 1 / (T (log T)^(2-2/L)).
LOG10_T = np.arange(200, 501) / 100.0
LOG_T = LOG10_T * math.log(10)


def rate(p: float, log_power: float = 2.0 - 2.0 / ORDER) -> np.ndarray:
    """log10 of L = 3 / (T^p (log T)^log_power)."""
    return (math.log(3.0) - p * LOG_T - log_power * np.log(LOG_T)) / math.log(10)


def norm(p: float, order: float = 2.0) -> np.ndarray:
    """rho with rho^L = 5 (log T)^p."""
    return (5.0 * LOG_T**p) ** (1.0 / order)


def distances(scales, n=200, seed=0):
    """Per-sample attack distances at checkpoints, each scaled from the same base."""
    base = np.random.default_rng(seed).uniform(0.2, 0.6, n)
    noise = np.random.default_rng(seed + 1).normal(0.0, 0.002, (len(scales), n))
    return [base * s + e for s, e in zip(scales, noise, strict=True)]


LEVELS = ["1e-10", "1e-20", "1e-30", "last"]
MODELS = ["1e-10", "1e-15", "1e-20", "1e-30", "last"]
SCALES_UP = [1.0, 1.05, 1.1, 1.15, 1.2]


def vgg(**change):
    """Per-seed VGG measurements (3 seeds), growing and with a steady test accuracy."""
    good = {"growth_loss_based": [5.0, 6.0, 4.0], "growth_constant": [2.0, 2.5, 1.5]}
    return {**good, "test_change": [0.01, -0.005, 0.0], **change}


def test_set(scales, lost=None, near=None, split=0.2):
    """Test-set robustness at checkpoints: 10% misclassified (0), the rest from 0.3 to 1
    scaled along training; ``lost = (k, m)``: m more samples misclassified at checkpoint k;
    ``near = (k, m)``: m samples at distance 0.1 at checkpoint k."""
    arrays = [d.copy() for d in distances(scales)]
    for a in arrays:
        a[:20] = 0.0
        a[20:] = 0.3 + (a[20:] - 0.2) * 1.75
    for change, value in ((lost, 0.0), (near, 0.1)):
        if change is not None:
            k, m = change
            arrays[k][20 : 20 + m] = value
    return {"checkpoints": MODELS[: len(scales)], "distances": arrays, "split": split}


def table(**change):
    """Table 1 with rising margins."""
    good = {
        "checkpoints": MODELS,
        "epoch": [30, 50, 70, 120, 200],
        "log10_loss": [-10.2, -15.1, -20.3, -30.5, -40.0],
        "margin": [1e-3, 2e-3, 2.5e-3, 3e-3, 4e-3],
        "median_train": [0.4, 0.41, 0.42, 0.43, 0.44],
        "median_test": [0.3, 0.31, 0.32, 0.33, 0.34],
    }
    return {**good, **change}


CONTROLS = {
    "fits-early": (
        [
            (
                "fitted at 5% of the run",
                {"fit_epochs": {"a": 50, "b": 80}, "epochs": 1000, "limit": 200},
            )
        ],
        [
            ("never fitted", {"fit_epochs": {"a": 50, "b": None}, "epochs": 1000, "limit": 200}),
            ("fitted late", {"fit_epochs": {"a": 50, "b": 900}, "epochs": 1000, "limit": 200}),
        ],
    ),
    "smoothed-margin-monotone": (
        [
            (
                "rising margins",
                {"series": {"a": RISING, "b": 2 * RISING}, "share": 0.95, "max_drop": 0.01},
            )
        ],
        [
            (
                "a margin that drops by 5% once",
                {
                    "series": {"a": np.where(EPOCHS == 500, 0.95, 1.0) * RISING},
                    "share": 0.95,
                    "max_drop": 0.01,
                },
            ),
            (
                "a margin that wobbles at every other epoch",
                {
                    "series": {"a": np.full(100, 1e-3) * (1 + 1e-3 * (-1) ** np.arange(100))},
                    "share": 0.95,
                    "max_drop": 0.01,
                },
            ),
        ],
    ),
    "smoothed-below-normalized": (
        [("smoothed below", {"smoothed": RISING, "normalized": 1.01 * RISING})],
        [
            (
                "smoothed above at one row",
                {"smoothed": RISING, "normalized": np.where(EPOCHS == 300, 0.99, 1.01) * RISING},
            ),
            ("nothing defined", {"smoothed": np.full(3, np.nan), "normalized": np.ones(3)}),
        ],
    ),
    "margin-grows": (
        [("grows", {"margins": {"loss-based": RISING, "constant": RISING[:50]}})],
        [
            (
                "falls under one schedule",
                {"margins": {"loss-based": RISING, "constant": RISING[::-1]}},
            ),
            ("flat", {"margins": {"loss-based": np.full(10, 1e-3)}}),
        ],
    ),
    "loss-based-beats-const": (
        [("6.7x", {"loss_based": 1.2e-3, "constant": 1.8e-4, "epochs": 10000, "factor": 5.0})],
        [("equal margins", {"loss_based": 1e-3, "constant": 1e-3, "epochs": 10000, "factor": 2.0})],
    ),
    "loss-linear-in-epochs": (
        [("a constant rate", {"epoch": EPOCHS, "log10_loss": -0.05 * EPOCHS - 3.0})],
        [
            (
                "a loss that stops falling in the late half",
                {"epoch": EPOCHS, "log10_loss": STALLED},
            ),
            (
                "a rate that fades (log L ~ -sqrt(epoch))",
                {"epoch": EPOCHS, "log10_loss": -np.sqrt(EPOCHS)},
            ),
        ],
    ),
    "alpha-range": (
        [("inside", {"alpha": np.geomspace(0.1, 1e-7, 50)})],
        [
            ("collapsed below 1e-9", {"alpha": np.geomspace(0.1, 1e-12, 50)}),
            ("above 1", {"alpha": [0.1, 2.0]}),
        ],
    ),
    "robustness-grows": (
        [
            (
                "distances grow",
                {"checkpoints": LEVELS, "distances": distances([1.0, 1.02, 1.04, 1.06])},
            )
        ],
        [
            (
                "distances shrink",
                {"checkpoints": LEVELS, "distances": distances([1.06, 1.04, 1.02, 1.0])},
            ),
            (
                "nothing moves",
                {"checkpoints": LEVELS, "distances": distances([1.0, 1.0, 1.0, 1.0])},
            ),
            (
                "one significant step back",
                {"checkpoints": LEVELS, "distances": distances([1.0, 1.06, 1.03, 1.08])},
            ),
        ],
    ),
    "biased-margin-grows": (
        [("grows", {"margins": {"loss-based": RISING, "constant": RISING}})],
        [("falls", {"margins": {"loss-based": RISING[::-1], "constant": RISING}})],
    ),
    "gd-smoothed-margin-monotone": (
        [("non-decreasing", {"values": RISING})],
        [
            (
                "one drop of 1e-6",
                {"values": np.r_[RISING[:50], RISING[49] * (1 - 1e-6), RISING[50:]]},
            ),
            ("empty", {"values": []}),
        ],
    ),
    "gd-loss-rate": (
        [("the theorem's rate", {"log10_t": LOG10_T, "log10_loss": rate(1.0), "order": ORDER})],
        [
            (
                "a loss that never decreases",
                {"log10_t": LOG10_T, "log10_loss": np.full(len(LOG10_T), -2.0), "order": ORDER},
            ),
            ("L ~ T^-0.5", {"log10_t": LOG10_T, "log10_loss": rate(0.5), "order": ORDER}),
            ("L ~ T^-2", {"log10_t": LOG10_T, "log10_loss": rate(2.0), "order": ORDER}),
            (
                "plain 1/T, no log factor",
                {"log10_t": LOG10_T, "log10_loss": rate(1.0, 0.0), "order": ORDER},
            ),
            (
                "a doubled log factor",
                {"log10_t": LOG10_T, "log10_loss": rate(1.0, 3.0), "order": ORDER},
            ),
            (
                "one decade of T only",
                {"log10_t": LOG10_T[:100], "log10_loss": rate(1.0)[:100], "order": ORDER},
            ),
        ],
    ),
    "gd-norm-rate": (
        [("rho^L ~ log T", {"log10_t": LOG10_T, "param_norm": norm(1.0), "order": 2.0})],
        [
            ("rho^L ~ (log T)^0.1", {"log10_t": LOG10_T, "param_norm": norm(0.1), "order": 2.0}),
            ("rho^L ~ (log T)^2", {"log10_t": LOG10_T, "param_norm": norm(2.0), "order": 2.0}),
            (
                "a norm that stalls",
                {"log10_t": LOG10_T, "param_norm": np.full(len(LOG10_T), 3.0), "order": 2.0},
            ),
        ],
    ),
    "deep-loss": (
        [
            (
                "down to 1e-420",
                {
                    "log10_loss": np.linspace(0.3, -420, 100),
                    "smoothed": np.r_[np.nan, RISING[:99]],
                    "alpha": np.full(100, 1e-6),
                },
            )
        ],
        [
            (
                "stuck at 1e-300",
                {
                    "log10_loss": np.linspace(0.3, -300, 100),
                    "smoothed": np.r_[np.nan, RISING[:99]],
                    "alpha": np.full(100, 1e-6),
                },
            ),
            (
                "a loss that rose once",
                {
                    "log10_loss": np.r_[np.linspace(0.3, -420, 99), -410.0],
                    "smoothed": np.r_[np.nan, RISING[:99]],
                    "alpha": np.full(100, 1e-6),
                },
            ),
            (
                "a margin that became nan",
                {
                    "log10_loss": np.linspace(0.3, -420, 100),
                    "smoothed": np.r_[np.nan, RISING[:98], np.nan],
                    "alpha": np.full(100, 1e-6),
                },
            ),
        ],
    ),
    "kkt-certificates-shrink": (
        [("shrinking", {"log10_loss": [-5, -100, -200, -400], "eps_rel": [0.9, 0.5, 0.3, 0.2]})],
        [
            (
                "rising once",
                {"log10_loss": [-5, -100, -200, -400], "eps_rel": [0.9, 0.5, 0.6, 0.2]},
            ),
            ("one checkpoint", {"log10_loss": [-5], "eps_rel": [0.9]}),
        ],
    ),
    "const-margin": ([("the paper's", {"value": 1.8e-4})], [("10x off", {"value": 1.8e-3})]),
    "loss-based-margin": ([("the paper's", {"value": 1.2e-3})], [("10x off", {"value": 1.2e-4})]),
    "loss-below-1e-800": (
        [("1e-800", {"log10_loss": -800.0})],
        [("stuck at 1e-300", {"log10_loss": -300.0})],
    ),
    "loss-at-10000": ([("1e-882", {"log10_loss": -882.0})], [("1e-300", {"log10_loss": -300.0})]),
    "cifar-vgg": (
        [("grows, loss-based faster", vgg())],
        [
            ("constant faster", vgg(growth_loss_based=[2.0] * 3, growth_constant=[5.0] * 3)),
            ("test accuracy moved 5 points", vgg(test_change=[-0.05, -0.04, -0.06])),
            ("margin falls under the constant schedule", vgg(growth_constant=[0.9] * 3)),
            ("no seed", vgg(growth_loss_based=[], growth_constant=[], test_change=[])),
        ],
    ),
    "test-accuracy-flat": (
        [("flat within a point", {"epoch": EPOCHS, "test_acc": 0.95 + 0.005 * np.sin(EPOCHS)})],
        [
            ("falls 5 points", {"epoch": EPOCHS, "test_acc": np.linspace(0.95, 0.90, 100)}),
            ("rises 10 points", {"epoch": EPOCHS, "test_acc": np.linspace(0.80, 0.90, 100)}),
            ("one logged epoch", {"epoch": [10.0], "test_acc": [0.95]}),
            ("not logged", {"epoch": EPOCHS, "test_acc": np.full(100, np.nan)}),
        ],
    ),
    "test-robustness-agree-low-eps": (
        [
            ("coincide below the split", test_set(SCALES_UP)),
            ("2 points apart, the tolerance", test_set(SCALES_UP, lost=(4, 4))),
        ],
        [
            ("clean accuracy falls 5 points", test_set(SCALES_UP, lost=(4, 10))),
            ("3 points apart", test_set(SCALES_UP, lost=(4, 6))),
            ("one model's samples closer below the split", test_set(SCALES_UP, near=(2, 10))),
            ("unequal samples", {**test_set(SCALES_UP), "distances": [np.ones(5), np.ones(6)]}),
        ],
    ),
    "test-robustness-ordered-high-eps": (
        [("ordered", test_set(SCALES_UP))],
        [
            ("reversed", test_set(SCALES_UP[::-1])),
            ("nothing moves", test_set([1.0] * 5)),
            ("only the last model rises", test_set([1.0, 1.0, 1.0, 1.0, 1.2])),
            ("one significant step back", test_set([1.0, 1.1, 1.05, 1.15, 1.2])),
            ("two checkpoints", test_set([1.0, 1.2])),
        ],
    ),
    "checkpoint-table": (
        [("margins rise", table())],
        [
            ("a margin falls", table(margin=[1e-3, 2e-3, 1.5e-3, 3e-3, 4e-3])),
            ("a checkpoint above its level", table(log10_loss=[-9.5, -15.2, -20.1, -30.4, -40])),
            ("epochs out of order", table(epoch=[30, 50, 40, 120, 200])),
            ("a nan margin", table(margin=[1e-3, 2e-3, np.nan, 3e-3, 4e-3])),
            ("one checkpoint", table(**{k: v[:1] for k, v in table().items()})),
        ],
    ),
}
