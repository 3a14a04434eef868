"""Satisfying and falsifying measurements for the Soudry et al. claims (see test_claims.py)."""

import numpy as np

T = np.unique(np.round(np.logspace(0, 6, 61)))
LATE = T[T >= 1e4]
MARGIN = 0.2


def direction(error, t=T):
    return {"t": t, "error": error}


CONTROLS = {
    "direction-rate": (
        [("error = 1/log t", direction(1.0 / np.log(T + 2.0)))],
        [
            ("error ~ (log t)^-0.1", direction(np.log(T + 2.0) ** -0.1)),
            ("error that stops falling", direction(np.full(len(T), 0.05))),
            ("error ~ (log t)^-2", direction(np.log(T + 2.0) ** -2.0)),
            ("a run of 2 decades", direction(1.0 / np.log(LATE), t=LATE)),
        ],
    ),
    "loss-rate": (
        [("L = 3/t", {"t": T, "loss": 3.0 / T})],
        [
            ("L = 1/sqrt(t)", {"t": T, "loss": T**-0.5}),
            ("L = 1/t^2", {"t": T, "loss": T**-2.0}),
            ("a loss that stops falling", {"t": T, "loss": np.full(len(T), 1e-3)}),
        ],
    ),
    "norm-growth": (
        [
            (
                "||w|| = log t / gamma + 2",
                {"t": T, "norm": np.log(T) / MARGIN + 2.0, "svm_margin": MARGIN},
            )
        ],
        [
            ("a norm inflated 2x", {"t": T, "norm": 2 * np.log(T) / MARGIN, "svm_margin": MARGIN}),
            ("a norm that stalls", {"t": T, "norm": np.full(len(T), 5.0), "svm_margin": MARGIN}),
        ],
    ),
}
