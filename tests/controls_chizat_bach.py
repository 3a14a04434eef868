"""Satisfying and falsifying measurements for the Chizat & Bach claims (see test_claims.py).

Shapes follow the ci run: 4 widths x 3 replicas, each replica a data set with its own
gamma_1 (the paper's convention).
"""

import numpy as np

WIDTHS = [4, 16, 64, 256]
GAMMA = np.array([0.00999, 0.02756, 0.00823])
# margin / gamma_1 per width (rows) and replica (columns), the shape of the ci run
RATIOS = np.array(
    [[-0.61, -0.31, -2.30], [-0.69, 0.96, -0.08], [0.94, 0.95, 0.70], [0.925, 0.959, 0.925]]
)


def f1(ratios=RATIOS, gamma_lower=GAMMA, gamma_upper=GAMMA * (1 + 1e-4), widths=WIDTHS):
    return {
        "widths": widths,
        "margins": np.asarray(ratios) * gamma_lower,
        "gamma_lower": gamma_lower,
        "gamma_upper": gamma_upper,
    }


def falling(top):
    """Every replica loses 0.05 of gamma_1 from one width to the next, ending at ``top``."""
    return np.array([[top + 0.15] * 3, [top + 0.1] * 3, [top + 0.05] * 3, [top] * 3])


D = [3, 8]
BOTH_D = [[0.0, 0.001, 0.0005], [0.12, 0.13, 0.128]]
OUT_D = [[0.01, 0.008, 0.011], [0.30, 0.32, 0.31]]
SIZES = [32, 64, 128, 256]
BOTH_N = [[0.41, 0.43, 0.40], [0.22, 0.25, 0.21], [0.11, 0.13, 0.12], [0.03, 0.04, 0.035]]
OUT_N = [[0.40, 0.41, 0.39], [0.33, 0.31, 0.32], [0.27, 0.26, 0.265], [0.21, 0.22, 0.215]]


def errors(at, both, output, **extra):
    return {"at": at, "both": both, "output": output, **extra}


CONTROLS = {
    "f1-margin-vs-m": (
        [
            ("the ci run's shape", f1()),
            (
                "close to gamma_1 from m = 16 on",
                f1(np.array([[0.5] * 3, [0.9] * 3, [0.95] * 3, [0.99] * 3])),
            ),
        ],
        [
            ("a margin inflated 2x by a normalisation bug", f1(2 * RATIOS)),
            (
                "gamma_1 in our F1 norm's convention (2x the paper's)",
                {**f1(), "gamma_lower": 2 * GAMMA, "gamma_upper": 2 * GAMMA * (1 + 1e-4)},
            ),
            ("a margin 1% above gamma_1", f1(np.vstack([RATIOS[:3], [1.01, 0.95, 0.95]]))),
            ("a margin that stalls at half of gamma_1", f1(np.vstack([RATIOS[:3] / 2, [0.5] * 3]))),
            ("a margin that falls as m grows", f1(falling(0.9))),
            ("one replica", f1(RATIOS[:, :1], GAMMA[:1], GAMMA[:1])),
            ("a nan margin", f1(np.where(RATIOS == 0.94, np.nan, RATIOS))),
            ("no widths", f1(np.zeros((0, 3)), widths=[])),
        ],
    ),
    "rkhs-margin-output": (
        [
            (
                "the ci run's ratios",
                {"ratios": [0.933, 0.9995, 0.927], "arccos_ratios": [0.91, 0.98, 1.11]},
            )
        ],
        [
            ("a margin inflated 2x", {"ratios": [1.87, 1.999, 1.85]}),
            ("an unconverged replica", {"ratios": [0.93, 0.5, 0.95]}),
            ("a nan ratio", {"ratios": [0.93, np.nan, 0.95]}),
            ("no replicas", {"ratios": []}),
        ],
    ),
    "both-beats-output": (
        [("the ci run's shape", errors(D, BOTH_D, OUT_D, judged_from=4))],
        [
            (
                "both above output with spurious dims",
                errors(D, BOTH_D, [OUT_D[0], [0.1, 0.1, 0.1]], judged_from=4),
            ),
            ("equal errors", errors(D, BOTH_D, BOTH_D, judged_from=4)),
            ("no d with spurious dimensions", errors([3], BOTH_D[:1], OUT_D[:1], judged_from=4)),
            ("a nan error", errors(D, [BOTH_D[0], [np.nan] * 3], OUT_D, judged_from=4)),
        ],
    ),
    "spurious-dims": (
        [("the ci run's shape", errors(D, BOTH_D, OUT_D))],
        [
            ("output error flat in d", errors(D, BOTH_D, [OUT_D[0], OUT_D[0]])),
            ("both degrade as much as output", errors(D, [BOTH_D[0], [0.35, 0.36, 0.34]], OUT_D)),
            ("one d only", errors([3], BOTH_D[:1], OUT_D[:1])),
        ],
    ),
    "test-error-vs-n": (
        [
            (
                "Fig. 2(b)'s shape (a tie at n = 32 is not judged)",
                errors(SIZES, BOTH_N, OUT_N, judged_from=64, name="n"),
            )
        ],
        [
            (
                "both above output at n = 128",
                errors(
                    SIZES, BOTH_N[:2] + [[0.3] * 3] + BOTH_N[3:], OUT_N, judged_from=64, name="n"
                ),
            ),
            ("the two swapped", errors(SIZES, OUT_N, BOTH_N, judged_from=64, name="n")),
            ("only n = 32", errors(SIZES[:1], BOTH_N[:1], OUT_N[:1], judged_from=64, name="n")),
        ],
    ),
}
