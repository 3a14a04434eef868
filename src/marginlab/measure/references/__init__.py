"""Reference max-margin solutions to compare a trained network with.

- :mod:`.svm`: linear hard-margin SVM (limit of linear models and linear networks);
- :mod:`.f1`: F1 max-margin of two-layer ReLU networks (limit when both layers train);
- :mod:`.rkhs`: RKHS max-margin (limit when only the output layer trains);
- :mod:`.nonconvex`: the nonconvex max-margin problem of a small network, solved directly;
- :mod:`.local_probe`: is a KKT point a local optimum?
- :mod:`.per_layer`: with all layers but one fixed, is that layer optimal?
- :mod:`.vardi`: KKT points that are not optimal (Vardi, Shamir & Srebro 2022).

Every margin is also given in the normalization of the network's normalized margin
(:mod:`marginlab.measure.margins`), so the two can be printed side by side.
"""

from marginlab.measure.references.f1 import F1Result, f1_max_margin, sphere_grid, sphere_maximum
from marginlab.measure.references.local_probe import ProbeResult, local_probe
from marginlab.measure.references.nonconvex import (
    MarginProblem,
    NonconvexResult,
    maximize_margin,
    nonconvex_max_margin,
)
from marginlab.measure.references.per_layer import LayerOptimality, per_layer_optimality
from marginlab.measure.references.rkhs import (
    KernelSVMResult,
    arccos_kernel,
    augmented_inputs,
    empirical_kernel,
    kernel_svm,
    sphere_kernel,
)
from marginlab.measure.references.svm import (
    SVMResult,
    direction_error,
    least_distance,
    linear_svm,
)

__all__ = [
    "F1Result",
    "KernelSVMResult",
    "LayerOptimality",
    "MarginProblem",
    "NonconvexResult",
    "ProbeResult",
    "SVMResult",
    "arccos_kernel",
    "augmented_inputs",
    "direction_error",
    "empirical_kernel",
    "f1_max_margin",
    "kernel_svm",
    "least_distance",
    "linear_svm",
    "local_probe",
    "maximize_margin",
    "nonconvex_max_margin",
    "per_layer_optimality",
    "sphere_grid",
    "sphere_kernel",
    "sphere_maximum",
]
