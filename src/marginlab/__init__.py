"""marginlab: the implicit bias of gradient descent toward maximum margin, measured exactly.

Examples
--------
>>> import marginlab
>>> sorted(marginlab.LOSSES)
['cross_entropy', 'exponential', 'logistic']
"""

from importlib import import_module

from marginlab.losses import LOSSES, get_loss

__version__ = "0.1.0"

# Heavier entry points load on first use, so `import marginlab` and the CLI start fast.
_LAZY = {
    "fit": "marginlab.training.fit",
    "Constant": "marginlab.training.schedules",
    "LossBased": "marginlab.training.schedules",
    "Normalized": "marginlab.training.schedules",
    "InverseSqrt": "marginlab.training.schedules",
    "train": "marginlab.training.engine",
    "resume": "marginlab.training.engine",
    "load_run": "marginlab.runs.run",
    "Run": "marginlab.runs.run",
    "check_homogeneity": "marginlab.models",
    "build_model": "marginlab.models",
    "load_dataset": "marginlab.data",
    "normalized_margin": "marginlab.measure.margins",
    "kkt_certificates": "marginlab.measure.kkt",
    "kkt_along_training": "marginlab.results.kkt",
    "attack_along_training": "marginlab.results.robustness",
    "compare_reference": "marginlab.results.reference",
}

__all__ = ["LOSSES", "get_loss", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'marginlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names too: tab completion in a notebook shows fit, LossBased, load_run...
    return sorted({*globals(), *__all__})
