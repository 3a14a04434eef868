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
        [
            (
                "grows, loss-based faster",
                {"growth_loss_based": 5.0, "growth_constant": 2.0, "test_change": 0.01},
            )
        ],
        [
            (
                "constant faster",
                {"growth_loss_based": 2.0, "growth_constant": 5.0, "test_change": 0.01},
            ),
            (
                "test accuracy moved 5 points",
                {"growth_loss_based": 5.0, "growth_constant": 2.0, "test_change": 0.05},
            ),
        ],
    ),
}
