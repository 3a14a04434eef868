"""Satisfying and falsifying measurements for the Wu et al. claims (see test_claims.py).

The theorem controls start from real gradient-descent runs (:func:`logistic_gd` on the
unit-radius toy set and the lower-bound set, a fraction of a second) and break them the way a
false statement or a broken trainer would.
"""

import math

import numpy as np

from marginlab.experiments.papers import wu

# Fig. 1 phases -------------------------------------------------------------------------------

_toy_x, _toy_y = wu.toy_set()
_FIG1 = wu.logistic_gd(_toy_x, _toy_y, wu.TOY_ETAS, 2000, record=[0, 2000])
_SLOW = wu.logistic_gd(_toy_x, _toy_y, (1.0, 2.0, 3.0), 2000, record=[0, 2000])


def _phases(runs, small, large, **changes):
    measured = {
        "eta": runs.eta,
        "increases": runs.increases.copy(),
        "last_increase": runs.last_increase.copy(),
        "steps": 2000,
        "small": small,
        "large": list(large),
    }
    measured.update(changes)
    return measured


def _rising_small():
    ups = _FIG1.increases.copy()
    ups[0] = 3
    return ups


def _late_oscillation():
    last = _FIG1.last_increase.copy()
    last[-1] = 1800
    return last


PHASES = (
    [("the toy runs of Fig. 1 (2000 steps)", _phases(_FIG1, 4.0, (8.0, 16.0, 32.0)))],
    [
        (
            "large steps that never rise (eta = 2, 3 below the edge of stability)",
            _phases(_SLOW, 1.0, (2.0, 3.0)),
        ),
        ("the small step rose", _phases(_FIG1, 4.0, (8.0, 16.0, 32.0), increases=_rising_small())),
        (
            "oscillation until 90% of the run",
            _phases(_FIG1, 4.0, (8.0, 16.0, 32.0), last_increase=_late_oscillation()),
        ),
        ("a large step size that was not run", _phases(_FIG1, 4.0, (8.0, 64.0))),
    ],
)

# Fig. 1 rate ---------------------------------------------------------------------------------

_T = wu.early_and_log_spaced(100_000, early=10).astype(float)
_ETA = np.array(wu.TOY_ETAS)


def _rate(loss):
    with np.errstate(divide="ignore"):
        return {"eta": _ETA, "t": _T, "log_loss": np.log(loss)}


_t = np.maximum(_T, 1.0)[:, None]
RATE = (
    [
        ("L = 25 / (eta t) (1 + 1/sqrt(t))", _rate(25.0 / (_ETA * _t) * (1 + _t**-0.5))),
    ],
    [
        ("L = 25 / t: larger steps do not help (eta T L_T spread x8)", _rate(25.0 / _t + 0 * _ETA)),
        ("L = 1 / (eta sqrt(t)): a rate off by t^0.5", _rate(1.0 / (_ETA * np.sqrt(_t)))),
        ("a risk that stops falling", _rate(np.full((len(_T), len(_ETA)), 1e-4))),
    ],
)

# Theorems ------------------------------------------------------------------------------------

_unit_x, _radius = wu.unit_radius(_toy_x)
_GAMMA = wu.TOY_MARGIN / _radius
_STABLE = wu.logistic_gd(_unit_x, _toy_y, (1.0, 16.0, 256.0), 3000)


def _stable(log_loss=None, eta=None, log_exp_loss=None, gamma=_GAMMA):
    return {
        "eta": _STABLE.eta if eta is None else eta,
        "gamma": gamma,
        "log_loss": _STABLE.log_loss if log_loss is None else log_loss,
        "log_exp_loss": _STABLE.log_exp_loss if log_exp_loss is None else log_exp_loss,
    }


def _stuck_after(column: int, start: int) -> np.ndarray:
    """The run's risk frozen from ``start`` on: it stops falling (no increase, but above the
    bound eventually)."""
    log_loss = _STABLE.log_loss.copy()
    log_loss[start:, column] = log_loss[start, column]
    return log_loss


def _bump(column: int, step: int, factor: float) -> np.ndarray:
    log_loss = _STABLE.log_loss.copy()
    log_loss[step, column] += math.log(factor)
    return log_loss


STABLE = (
    [("GD on the unit-radius toy set, eta = 1, 16, 256", _stable())],
    [
        (
            "the 1/eta condition broken: the eta = 256 run judged from s = 0, where L = ln 2 > "
            "1/eta (a threshold 1e4 times too high): its oscillation follows",
            _stable(
                log_loss=_STABLE.log_loss[:, 2:],
                eta=np.array([256.0 / 1e4]),
                log_exp_loss=_STABLE.log_exp_loss[:, 2:],
            ),
        ),
        ("a 1% rise of the risk 200 steps after s", _stable(log_loss=_bump(1, 309, 1.01))),
        (
            "the eta = 1 run stalled at ln 2 from step 1 (no rise, but above the bound later)",
            _stable(log_loss=_stuck_after(0, 0)),
        ),
        ("a risk that never reaches 1/eta", _stable(log_loss=_STABLE.log_loss + math.log(300.0))),
    ],
)

EOS = (
    [
        (
            "GD on the unit-radius toy set, eta = 1, 16, 256",
            {"eta": _STABLE.eta, "gamma": _GAMMA, "log_loss": _STABLE.log_loss},
        )
    ],
    [
        (
            "a risk that stops falling after step 10",
            {"eta": _STABLE.eta, "gamma": _GAMMA, "log_loss": _stuck_after(0, 10)},
        ),
        (
            "a risk ten times too high",
            {"eta": _STABLE.eta, "gamma": _GAMMA, "log_loss": _STABLE.log_loss + math.log(10.0)},
        ),
    ],
)

_HELD = np.concatenate([np.full(2000, math.log(math.log(2.0))), np.full(10, -20.0)])
TRANSITION = (
    [
        (
            "GD on the unit-radius toy set",
            {"eta": _STABLE.eta, "gamma": _GAMMA, "n": 4, "log_loss": _STABLE.log_loss},
        )
    ],
    [
        (
            "a transition after tau (eta = 4, gamma = 1, n = 4: tau = 240; the risk held at "
            "ln 2 for 2000 steps)",
            {"eta": np.array([4.0]), "gamma": 1.0, "n": 4, "log_loss": _HELD[:, None]},
        ),
        (
            "a risk that never reaches 1/eta",
            {
                "eta": _STABLE.eta,
                "gamma": _GAMMA,
                "n": 4,
                "log_loss": _STABLE.log_loss + math.log(300.0),
            },
        ),
    ],
)

# Budget and lower bound ----------------------------------------------------------------------

_BUDGETS = np.array([50_000.0, 100_000.0, 200_000.0, 500_000.0])
_BUDGET_ETA = _GAMMA**2 * _BUDGETS / 120.0
_ASYMPTOTIC = -np.log(_GAMMA**2 * _BUDGET_ETA * _BUDGETS)  # L_T = 1 / (gamma^2 eta T)


def _budget(log_loss=_ASYMPTOTIC, steps=_BUDGETS, eta=_BUDGET_ETA):
    return {"steps": steps, "eta": eta, "log_loss": log_loss, "gamma": _GAMMA, "n": 4}


BUDGET = (
    [("L_T = 1 / (gamma^2 eta T) with eta = gamma^2 T / 120", _budget())],
    [
        (
            "L_T ~ 1/T: no acceleration",
            _budget(log_loss=_ASYMPTOTIC[0] - np.log(_BUDGETS / _BUDGETS[0])),
        ),
        (
            "L_T twice the corollary's bound",
            _budget(log_loss=np.log([2 * wu.budget_bound(_GAMMA, s) for s in _BUDGETS])),
        ),
        (
            "budgets over 0.6 decades",
            _budget(log_loss=_ASYMPTOTIC[:3], steps=_BUDGETS[:3], eta=_BUDGET_ETA[:3]),
        ),
        ("eta = T / 120 (gamma^2 dropped)", _budget(eta=_BUDGETS / 120.0)),
    ],
)

_lb_x, _lb_y = wu.lower_bound_set()
_LOWER = wu.logistic_gd(
    _lb_x, _lb_y, wu.LOWER_BOUND_ETAS, 20_000, record=wu.early_and_log_spaced(20_000, 0)
)


def _lower(log_loss=None, increases=None, eta=None, t=None):
    return {
        "eta": _LOWER.eta if eta is None else eta,
        "t": _LOWER.t if t is None else t,
        "log_loss": _LOWER.log_loss if log_loss is None else log_loss,
        "increases": _LOWER.increases if increases is None else increases,
    }


def _fast_best() -> np.ndarray:
    """The best monotone run replaced by one that falls like 1/t^2."""
    log_loss = _LOWER.log_loss.copy()
    best = 4  # eta = 8, the largest monotone step of the grid
    log_loss[:, best] = math.log(0.5) - 2.0 * np.log(np.maximum(_LOWER.t, 1.0))
    return log_loss


_MONOTONE = _LOWER.increases == 0
LOWER = (
    [("the step-size grid on the lower-bound set (20000 steps)", _lower())],
    [
        ("a monotone run falling like 1/t^2", _lower(log_loss=_fast_best())),
        (
            "a grid of monotone steps only (not bracketed)",
            _lower(
                log_loss=_LOWER.log_loss[:, _MONOTONE],
                increases=_LOWER.increases[_MONOTONE],
                eta=_LOWER.eta[_MONOTONE],
            ),
        ),
        (
            "a run recorded over one decade",
            _lower(log_loss=_LOWER.log_loss[_LOWER.t >= 2000], t=_LOWER.t[_LOWER.t >= 2000]),
        ),
        ("no monotone run", _lower(increases=_LOWER.increases + 1)),
    ],
)

CONTROLS = {
    "toy-phases": PHASES,
    "toy-rate": RATE,
    "mnist-phases": (
        [("MNIST-like: only the largest step must rise", _phases(_FIG1, 4.0, (32.0,)))],
        PHASES[1],
    ),
    "mnist-rate": RATE,
    "stable-phase": STABLE,
    "eos-average": EOS,
    "transition-before-tau": TRANSITION,
    "budget": BUDGET,
    "lower-bound": LOWER,
}
