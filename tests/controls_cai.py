"""Satisfying and falsifying measurements for the Cai et al. claims (see test_claims.py).

The phase controls start from a real run (:func:`two_layer_gd` on the 5-point set with a
large step, a fraction of a second); the others are built from the closed forms the claims
describe, and from what a false statement or a broken trainer would produce instead.
"""

import math

import numpy as np
import torch

from marginlab.experiments.papers import cai

# Phases: a real oscillating run, and what breaks it ------------------------------------------

_x, _y = cai.five_points()
_ZERO = torch.zeros(1, 2, 3, dtype=torch.float64)
_LARGE = cai.two_layer_gd(_x, _y, _ZERO, [100.0], 600).log_loss[:, 0]  # last increase 193
_SMALL = cai.two_layer_gd(_x, _y, _ZERO, [1.0], 300).log_loss[:, 0]  # monotone


def _diverged(log_loss):
    out = log_loss.copy()
    out[len(out) // 2 :] = np.nan
    return out


def _one_bump(log_loss):
    out = log_loss.copy()
    out[50] = out[49] + 0.1
    return out


OSCILLATION = (
    [("GD on the 5-point set, eta = 100", {"log_loss": _LARGE})],
    [
        ("a monotone run (eta = 1)", {"log_loss": _SMALL}),
        ("a single bump in a monotone run", {"log_loss": _one_bump(_SMALL)}),
        ("a run that diverged", {"log_loss": _diverged(_LARGE)}),
    ],
)

PHASE1_ENDS = (
    [("GD on the 5-point set, eta = 100 (600 steps)", {"log_loss": _LARGE})],
    [
        ("still oscillating past half the run (cut at 250 steps)", {"log_loss": _LARGE[:251]}),
        ("a monotone run: no phase 1", {"log_loss": _SMALL}),
        ("a run that diverged", {"log_loss": _diverged(_LARGE)}),
    ],
)

# Margin ------------------------------------------------------------------------------------

_T = 1000
_t = np.arange(_T + 1, dtype=float)
_RISK = np.log(np.where(_t < 10, 1.0 + 0.5 * (_t % 2), 0.5 / (_t + 1.0)))  # up at odd t < 10
_NORM = 1.0 + np.log1p(_t)
_RISING = 0.05 * (1.0 - 1.0 / np.sqrt(_t + 1.0))  # the normalized margin, increasing


def _margin(gamma, risk=_RISK, order=1.0):
    return {"log_loss": risk, "q_min": gamma * _NORM**order, "norm": _NORM, "n": 4, "order": order}


MARGIN = (
    [
        ("gamma rising as 0.05 (1 - 1/sqrt(t))", _margin(_RISING)),
        (
            "q_min changing sign for 10 steps after the last increase, while L > ln 2 / n",
            _margin(
                np.where((_t > 9) & (_t < 20) & (_t % 2 == 0), -0.01, _RISING),
                risk=np.log(
                    np.where(_t < 20, 0.2 + 0.5 * (_t % 2) * (_t < 10) - 1e-3 * _t, 0.5 / (_t + 1))
                ),
            ),
        ),
    ],
    [
        ("a margin that falls in phase 2", _margin(0.05 / np.sqrt(_t + 1.0))),
        ("a margin that oscillates by 20% of its rise", _margin(_RISING * (1 + 0.1 * np.sin(_t)))),
        ("a negative margin that keeps falling", _margin(-_RISING - 0.01)),
        ("a risk that never falls to ln 2 / n", _margin(_RISING, risk=np.full(_T + 1, -1.0))),
        (
            "phase 2 too short (oscillation until 95% of the run)",
            _margin(_RISING, risk=np.where((_t % 2 == 1) & (_t < 950), 0.0, -1.0 - 1e-3 * _t)),
        ),
    ],
)

# Threshold: restarts from checkpoints ------------------------------------------------------

_C, _N = 0.14, 40
_ETA = 2.0 ** np.arange(6, 21) / _C  # eta C = 64 .. 2^20
_LEVELS = np.log(10.0) * (math.log10(0.69) - np.arange(0, 46) / 10.0)  # 0.69 .. 2e-5


def _restarts(log_critical, levels=_LEVELS, eta=_ETA, curvature=_C):
    """Every restart stable exactly below its L_c: ``stable[i, j] = levels[j] <= L_c[i]``."""
    stable = (levels[None, :] <= np.asarray(log_critical)[:, None]).astype(float)
    return {"eta": eta, "log_levels": levels, "stable": stable, "curvature": curvature, "n": _N}


def _unstable_below_descent():
    measured = _restarts(np.log(90.0 / (_ETA * _C)))
    i = 8  # eta C = 16384: the descent level 1/(eta C) is 6.1e-5
    measured["stable"][i, -1] = 0.0  # the restart from 2e-5 rose
    measured["stable"][i, -2] = 1.0
    return measured


THRESHOLD = (
    [("L_c = 90 / (eta C)", _restarts(np.log(90.0 / (_ETA * _C))))],
    [
        (
            "a threshold independent of eta (L_c = 5e-3)",
            _restarts(np.full(len(_ETA), np.log(5e-3))),
        ),
        ("a threshold at 1/eta^2", _restarts(np.log(2e5 / (_ETA * _C) ** 2))),
        ("unstable below the descent level 1/(eta C)", _unstable_below_descent()),
        ("three step sizes only", _restarts(np.log(90.0 / (_ETA[8:11] * _C)), eta=_ETA[8:11])),
        (
            "checkpoint levels out of order",
            _restarts(np.log(90.0 / (_ETA * _C)), levels=_LEVELS[::-1]),
        ),
    ],
)

# Rate: O(1/(eta t)) ------------------------------------------------------------------------

_RATE_ETA = np.array([64.0, 128.0, 256.0, 512.0, 2048.0])
_RT = np.maximum(_t, 1.0)[:, None]


def _with_catapult(loss):
    """The largest step oscillates for 20 steps and then lands below the others."""
    loss = loss.copy()
    loss[:20, -1] = np.where(np.arange(20) % 2 == 0, 2.0, 1.0)
    loss[20:, -1] *= 0.05
    return np.log(loss)


def _stalled(log_loss):
    out = log_loss.copy()
    out[len(out) // 2 :] = out[len(out) // 2]
    return out


RATE = (
    [
        (
            "L = 100 / (eta t), the largest step catapulted below",
            {"eta": _RATE_ETA, "log_loss": _with_catapult(100.0 / (_RATE_ETA * _RT))},
        )
    ],
    [
        (
            "L = 100 / t: larger steps do not help",
            {"eta": _RATE_ETA, "log_loss": _with_catapult(100.0 / _RT + 0 * _RATE_ETA)},
        ),
        (
            "L = 1 / sqrt(eta t)",
            {"eta": _RATE_ETA, "log_loss": np.log(1.0 / np.sqrt(_RATE_ETA * _RT))},
        ),
        (
            "the largest step still oscillating at T/2",
            {
                "eta": _RATE_ETA,
                "log_loss": np.log(100.0 / (_RATE_ETA * _RT))
                + 0.1 * (_t[:, None] % 2) * (_t[:, None] < 500) * (_RATE_ETA == 2048),
            },
        ),
        (
            "three step sizes",
            {"eta": _RATE_ETA[:3], "log_loss": np.log(100.0 / (_RATE_ETA[:3] * _RT))},
        ),
        (
            "a risk that stops falling at T/2",
            {"eta": _RATE_ETA, "log_loss": _stalled(np.log(100.0 / (_RATE_ETA * _RT)))},
        ),
        (
            "a run that diverged",
            {"eta": _RATE_ETA, "log_loss": _diverged(np.log(100.0 / (_RATE_ETA * _RT)))},
        ),
    ],
)

# Budget ------------------------------------------------------------------------------------

_BUDGETS = np.array([250.0, 500.0, 1000.0, 2000.0, 4000.0])
_FAST = np.log(30.0 * np.log(_BUDGETS) ** 2 / _BUDGETS**2)  # log^2 T / T^2
_SLOW = np.log(25.0 / _BUDGETS)


def _budget(large=_FAST, monotone=_SLOW, steps=_BUDGETS, increases=0):
    return {
        "steps": steps,
        "log_loss_large": large,
        "log_loss_monotone": monotone,
        "monotone_increases": increases,
    }


FASTER = (
    [("L_T ~ log^2 T / T^2 against 25 / T", _budget())],
    [
        ("no acceleration: L_T ~ 1/T with eta ~ T", _budget(large=np.log(5.0 / _BUDGETS))),
        ("a monotone run falling like 1/T^2", _budget(monotone=np.log(1e4 / _BUDGETS**2))),
        ("the large step above the monotone one at T = 4000", _budget(large=_FAST + 7.0)),
        (
            "budgets over 0.6 decades",
            _budget(large=_FAST[:3], monotone=_SLOW[:3], steps=_BUDGETS[:3]),
        ),
        ("a reference run that rose", _budget(increases=3)),
    ],
)

# Five points (Fig. 4) ----------------------------------------------------------------------

_NEURONS = np.stack([-0.5 - 0.2 / (_t + 1), -0.3 - 0.1 / (_t + 1)], axis=1)
_AFTER = np.sqrt(np.maximum(_t - 98, 1.0))
_NET = np.where(_t < 100, -0.5 + _t / 200, 0.02 * (1 - 1 / _AFTER))


def _five(neurons=_NEURONS, gamma=_NET):
    return {"neuron_margins": neurons, "q_min": gamma * _NORM, "norm": _NORM}


def _neuron_turns_positive():
    neurons = _NEURONS.copy()
    neurons[500:, 1] = 0.01
    return neurons


FIVE_NEURONS = (
    [("neurons negative, the network margin positive from step 100 and rising", _five())],
    [
        ("a neuron whose own margin turns positive", _five(neurons=_neuron_turns_positive())),
        ("a network margin that never turns positive", _five(gamma=np.minimum(_NET, -0.001))),
        (
            "a network margin that falls once positive",
            _five(gamma=np.where(_t < 100, _NET, 0.02 / _AFTER)),
        ),
    ],
)

# Fig. 1 ------------------------------------------------------------------------------------

_SEEDS = 3
_LARGE3 = np.repeat(_RISK[:, None], _SEEDS, axis=1)
_SMALL3 = np.repeat(np.log(0.69 / (1 + 0.01 * _t))[:, None], _SEEDS, axis=1)


def _column(values, j, new):
    out = values.copy()
    out[:, j] = new
    return out


FIG1_PHASES = (
    [
        (
            "three seeds: large oscillates for 10 steps, small monotone",
            {"log_loss_large": _LARGE3, "log_loss_small": _SMALL3},
        )
    ],
    [
        (
            "a small-step seed that rose",
            {"log_loss_large": _LARGE3, "log_loss_small": _column(_SMALL3, 1, _RISK)},
        ),
        (
            "a large-step seed that never rose",
            {"log_loss_large": _column(_LARGE3, 2, _SMALL3[:, 0]), "log_loss_small": _SMALL3},
        ),
        (
            "a large-step seed oscillating until 80% of the run",
            {
                "log_loss_large": _column(
                    _LARGE3, 0, np.where((_t < 800) & (_t % 2 == 1), 0.0, -1.0 - 1e-3 * _t)
                ),
                "log_loss_small": _SMALL3,
            },
        ),
        (
            "a diverged seed",
            {"log_loss_large": _column(_LARGE3, 0, _diverged(_RISK)), "log_loss_small": _SMALL3},
        ),
    ],
)

_GAMMA4 = np.repeat(_RISING[:, None], _SEEDS, axis=1)
_NORM3 = np.repeat(_NORM[:, None], _SEEDS, axis=1)


def _fig1_margin(gamma):
    return {"log_loss": _LARGE3, "q_min": gamma * _NORM3**4, "norm": _NORM3, "n": 4, "order": 4.0}


FIG1_MARGIN = (
    [("three seeds, gamma = q_min / ||w||^4 rising", _fig1_margin(_GAMMA4))],
    [
        ("one seed whose margin falls", _fig1_margin(_column(_GAMMA4, 1, 0.05 / np.sqrt(_t + 1)))),
        (
            "a seed that never classifies every point",
            _fig1_margin(_column(_GAMMA4, 0, -0.01 - _RISING)),
        ),
    ],
)

FIG1_ACCURACY = (
    [
        (
            "large 0.90 +- 0.01, small 0.85 +- 0.01",
            {"accuracy_large": [0.9, 0.91, 0.89], "accuracy_small": [0.85, 0.86, 0.84]},
        )
    ],
    [
        (
            "the small step better",
            {"accuracy_large": [0.85, 0.86, 0.84], "accuracy_small": [0.9, 0.91, 0.89]},
        ),
        ("equal", {"accuracy_large": [0.9, 0.9], "accuracy_small": [0.9, 0.9]}),
        ("unpaired seeds", {"accuracy_large": [0.9, 0.91, 0.89], "accuracy_small": [0.85]}),
    ],
)

_PER_DATA_SET = {
    "oscillation": OSCILLATION,
    "phase1-ends": PHASE1_ENDS,
    "threshold": THRESHOLD,
    "margin": MARGIN,
    "rate": RATE,
    "faster": FASTER,
}

CONTROLS = {
    **{f"{data}-{key}": value for data in ("xor", "cifar") for key, value in _PER_DATA_SET.items()},
    "five-point-neurons": FIVE_NEURONS,
    "five-point-phase1-ends": PHASE1_ENDS,
    "fig1-phases": FIG1_PHASES,
    "fig1-margin": FIG1_MARGIN,
    "fig1-test-accuracy": FIG1_ACCURACY,
}
