"""Satisfying and falsifying measurements for the Vardi et al. claims (see test_claims.py).

The satisfying inputs are built from each construction's exact numbers; the falsifying ones
are what a wrong construction, a broken probe or classifier, or a false statement would give.
"""

import math

from marginlab.experiments.papers.vardi import (
    IMPROVABLE,
    NOT_KKT,
    NOT_SEPARATED,
    STATED_ENDS,
    UNIMPROVABLE,
)
from marginlab.measure.references.vardi import CONSTRUCTIONS, construction

EPS = (1e-1, 1e-2, 1e-3)


def exact(name):
    """What an exact measurement of construction ``name`` reads."""
    c = construction(name)
    gains = [c.gain(eps) for eps in EPS] if c.gain is not None else []
    return {
        "optimality": c.optimality,
        "margin": c.margin,
        "stated_margin": c.margin,
        "kkt_residual": 2e-16,
        "multipliers": list(c.multipliers),
        "stated_multipliers": list(c.multipliers),
        "gains": gains,
        "stated_gains": gains,
        "better_margin": math.nan if c.better_margin is None else c.better_margin,
        "stated_better_margin": math.nan if c.better_margin is None else c.better_margin,
        # the probe's gain: first- or second-order along the stated direction when not local
        "probe_gain": 1e-4 if c.optimality == "not local" else 0.0,
        "search_margin": c.margin if c.optimality == "global" else math.nan,
    }


def construction_controls(name):
    good = exact(name)
    wrong_probe = 0.0 if good["optimality"] == "not local" else 1e-3
    failing = [
        ("the probe says the opposite", {**good, "probe_gain": wrong_probe}),
        ("not a KKT point", {**good, "kkt_residual": 1e-4}),
        ("a margin off by 1e-6", {**good, "margin": good["margin"] * (1 + 1e-6)}),
        ("other multipliers", {**good, "multipliers": [2 * m for m in good["multipliers"]]}),
        ("a nan margin", {**good, "margin": math.nan}),
        ("an unknown optimality", {**good, "optimality": "maybe"}),
    ]
    if good["optimality"] == "global":
        failing.append(("a search finds better", {**good, "search_margin": good["margin"] * 1.01}))
    if good["gains"]:
        failing.append(("no gain along d", {**good, "gains": [good["margin"]] * 3}))
    return [("exact", good)], failing


def stated(name, **change):
    c = construction(name)
    good = {
        "cosine": 1 - 1e-6,
        "margin": c.margin + 2e-4,
        "stated_margin": c.margin,
        "status": STATED_ENDS[name],
        "expected_status": STATED_ENDS[name],
    }
    return {**good, **change}


def stated_controls(name):
    other = UNIMPROVABLE if STATED_ENDS[name] == IMPROVABLE else IMPROVABLE
    return (
        [("converged", stated(name))],
        [
            ("ended at the global optimum", stated(name, cosine=0.9, margin=0.3536, status=other)),
            ("at theta* but misclassified", stated(name, status=other)),
            ("direction off by 1e-3", stated(name, cosine=1 - 1e-3)),
            ("a nan margin", stated(name, margin=math.nan)),
        ],
    )


def ball(statuses, margins):
    return {"statuses": statuses, "margins": margins, "stated_margin": 0.25}


def runs(improvable, separated, total=None):
    """Statuses of ``total`` runs, ``separated`` of them separated, ``improvable`` improvable."""
    total = separated if total is None else total
    return (
        [IMPROVABLE] * improvable
        + [UNIMPROVABLE] * (separated - improvable)
        + [NOT_SEPARATED] * (total - separated)
    )


CONTROL_RUNS = {"V2": runs(0, 32), "V5": runs(0, 44, 96), "V6-L2": runs(0, 32)}
MEASURED_SHAPE = {"V1": runs(0, 32), "V3": runs(0, 32), "V4": runs(18, 112, 256)}

V6_LAYERS = ["V6-L2/fc1", "V6-L2/fc2", "V6-L3/fc1", "V6-L3/fc2", "V6-L3/fc3"]
S2, S3 = 1.25**0.5, 1.25 ** (1 / 3)  # ||W_l||^2 of the balanced V6 layers: ||w||^(2/L)
V6 = {
    "layers": V6_LAYERS,
    "norm_sq": [S2, S2, S3, S3, S3],
    "global_value": [S2, S2, S3, S3, S3],
    "probe_gain": [0.0] * 5,
}
DIAGONAL = {
    "layers": ["V1/layers.0", "V1/layers.1", "V3/layers.0", "V3/layers.1", "V3/layers.2"],
    "norm_sq": [2.0, 2.0, 2 ** (1 / 3), 2 ** (1 / 3), 2 ** (1 / 3)],
    "global_value": [2.0, 2.0, 2 ** (1 / 3), 2 ** (1 / 3), 2 ** (1 / 3)],
    "probe_gain": [0.0, 0.0, 2e-16, 2e-16, 0.0],
}
V5_GLOBAL = 1 / (2 * math.cos(math.radians(50)) ** 2)  # 1.2101
V5 = {
    "layers": ["V5/fc1", "V5/fc2"],
    "norm_sq": [2.0, 2.0],
    "local_value": [2.0, 2.0],
    "global_value": [V5_GLOBAL, 2.0],
    "probe_gain": [0.0, 0.0],
    "stated_norm_sq": 2.0,
    "stated_global_value": V5_GLOBAL,
}
V4 = {"layer": "V4/fc1", "norm_sq": 2.0, "local_value": 1.0, "probe_gain": 9.9e-3}


def per_layer_global_controls(good):
    n = len(good["layers"])
    return (
        [("every layer at its optimum", good)],
        [
            (
                "a layer shorter elsewhere (V5's first)",
                {**good, "global_value": [V5_GLOBAL] + good["global_value"][1:]},
            ),
            ("undecided layers", {**good, "global_value": [math.nan] * n}),
            ("the probe finds a better point", {**good, "probe_gain": [1e-3] + [0.0] * (n - 1)}),
            ("no layers", {"layers": [], "norm_sq": [], "global_value": [], "probe_gain": []}),
        ],
    )


CONTROLS = {
    **{f"construction-{name}": construction_controls(name) for name in CONSTRUCTIONS},
    **{f"gd-stated-init-{name}": stated_controls(name) for name in STATED_ENDS},
    "gd-open-set-V4": (
        [("every run at theta*", ball([IMPROVABLE] * 16, [0.2499] * 16))],
        [
            (
                "one run went to the global optimum",
                ball([IMPROVABLE] * 15 + [UNIMPROVABLE], [0.2499] * 15 + [0.3535]),
            ),  # fmt: skip
            ("too few runs", ball([IMPROVABLE] * 4, [0.25] * 4)),
            ("no runs", ball([], [])),
            ("improvable elsewhere", ball([IMPROVABLE] * 16, [0.3] * 16)),
        ],
    ),
    "gd-random-init-not-local": (
        [
            (
                "18 of 176 against 0 of 108",
                {"statuses": MEASURED_SHAPE, "control_statuses": CONTROL_RUNS},
            ),  # fmt: skip
        ],
        [
            (
                "one improvable end point among 224 runs",
                {"statuses": {"V4": runs(1, 224)}, "control_statuses": CONTROL_RUNS},
            ),
            (
                "a frequency that is zero",
                {"statuses": {"V4": runs(0, 176)}, "control_statuses": CONTROL_RUNS},
            ),
            (
                "a classifier that flags the controls as often",
                {
                    "statuses": MEASURED_SHAPE,
                    "control_statuses": {"V2": runs(11, 108)},
                },
            ),
            (
                "no control runs",
                {"statuses": MEASURED_SHAPE, "control_statuses": {"V2": runs(0, 0, 32)}},
            ),
        ],
    ),
    "gd-random-init-controls": (
        [("no improvable end point", {"control_statuses": CONTROL_RUNS})],
        [
            (
                "one improvable end point",
                {"control_statuses": {**CONTROL_RUNS, "V5": runs(1, 44, 96)}},
            ),
            (
                "runs that never reach a KKT point",
                {"control_statuses": {**CONTROL_RUNS, "V2": [NOT_KKT] * 32}},
            ),
            ("no control sets", {"control_statuses": {}}),
        ],
    ),
    "per-layer-linear-global": per_layer_global_controls(V6),
    "per-layer-diagonal-global": per_layer_global_controls(DIAGONAL),
    "per-layer-V5-local-not-global": (
        [("V5 as constructed", V5)],
        [
            (
                "per-layer global (no shorter first layer)",
                {**V5, "global_value": [2.0, 2.0]},
            ),  # fmt: skip
            ("not per-layer local", {**V5, "local_value": [1.0, 2.0]}),
            ("the probe finds a better point", {**V5, "probe_gain": [1e-3, 0.0]}),
            ("another global value than 1.2101", {**V5, "global_value": [1.0, 2.0]}),
            ("undecided", {**V5, "local_value": [math.nan, math.nan]}),
        ],
    ),
    "per-layer-V4-not-local": (
        [("V4 as constructed", V4)],
        [
            ("per-layer local", {**V4, "local_value": 2.0}),
            ("the probe finds nothing", {**V4, "probe_gain": 0.0}),
            ("undecided", {**V4, "local_value": math.nan}),
        ],
    ),
}
