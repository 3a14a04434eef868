"""A reference max-margin solution beside a run's margin: :func:`compare_reference`.

``marginlab reference RUN --kind KIND`` prints a :class:`ReferenceComparison` and writes it
as ``reference-<kind>.json``; the report reads it through :meth:`ReferenceComparison.load`.
The references themselves are :mod:`marginlab.measure.references`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

# The solvers (scipy, cvxpy) load when a reference is computed, not when one is read.
from marginlab.measure.margins import MARGIN_LABELS
from marginlab.progress import Bar
from marginlab.results.record import Record, finite_or_none, shown
from marginlab.runs.checkpoint_spec import CheckpointSpec
from marginlab.runs.run import Run, load_run

REFERENCE_KINDS = ("svm", "f1", "rkhs", "nonconvex")
# Both margins of a comparison are in the network's normalization, so that their ratio is 1
# when the network reached the reference.
NETWORK_MARGIN = MARGIN_LABELS["normalized_margin"]


@dataclass(frozen=True)
class DirectionError:
    """``svm``: the angle-like distance of a checkpoint's predictor to the SVM direction."""

    epoch: int
    log10_loss: float | None
    error: float


@dataclass(frozen=True)
class ReferenceComparison(Record):
    """A run's normalized margin against a reference max-margin solution.

    Attributes
    ----------
    kind : str
        ``svm``, ``f1``, ``rkhs`` or ``nonconvex``.
    epoch : int
        The checkpoint compared.
    network_margin : float
        ``q_min / ||theta||^L`` of the network at that checkpoint.
    reference_margin : float
        The best that normalization allows, by the reference.
    details : dict
        The solver's result (its ``to_dict``) and what the kind adds, e.g. ``width``.
    note : str
        How ``reference_margin`` is normalized.
    direction_errors : tuple of DirectionError
        ``svm`` only: every checkpoint's distance to the SVM direction.

    Examples
    --------
    >>> record = ReferenceComparison("svm", 9, 0.5, 0.6, {"margin": 1.2}, "note")
    >>> round(record.ratio, 4), ReferenceComparison.from_json(record.to_json()) == record
    (0.8333, True)
    """

    kind: str
    epoch: int
    network_margin: float
    reference_margin: float
    details: dict[str, Any]
    note: str
    direction_errors: tuple[DirectionError, ...] = field(default=())

    FORMAT = "marginlab.reference"
    VERSION = 2
    REGENERATE = "marginlab reference RUN_DIR --kind KIND"
    PATTERN = "reference-*.json"

    @property
    def file_name(self) -> str:
        return f"reference-{self.kind}.json"

    @property
    def ratio(self) -> float:
        """``network_margin / reference_margin``: 1 when the network reached the reference."""
        return self.network_margin / self.reference_margin

    def __str__(self) -> str:
        """The comparison as ``marginlab reference`` prints it."""
        lines = [
            f"  epoch {row.epoch:>8}  log10 loss {shown(row.log10_loss, '.2f'):>8}  "
            f"direction error {row.error:.3e}"
            for row in self.direction_errors
        ]
        details = self.details
        if self.kind == "f1":
            lines.append(
                f"  gamma_1 in [{details['lower']:.6g}, {details['upper']:.6g}] "
                f"(certified: {details['certified']})"
            )
        if self.kind == "rkhs":
            lines.append(
                f"  gamma_2: empirical kernel of the first layer "
                f"{details['empirical']['margin']:.6g}, closed-form arc-cosine kernel "
                f"{details['closed_form']['margin']:.6g}"
            )
        lines.append(
            f"reference margin ({self.kind}) {NETWORK_MARGIN} {self.reference_margin:.6g}   "
            f"network margin {NETWORK_MARGIN} {self.network_margin:.6g}   ratio {self.ratio:.4f}"
        )
        lines.append(f"  ({self.note})")
        return "\n".join(lines)

    @classmethod
    def find(cls, run: Run) -> list[ReferenceComparison]:
        """Every reference comparison of the run, by file name."""
        return [cls.load(path) for path in sorted(run.path.glob(cls.PATTERN))]

    def _payload(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "epoch": self.epoch,
            "network_margin": self.network_margin,
            "reference_margin": self.reference_margin,
            "details": self.details,
            "note": self.note,
            "direction_errors": [
                {
                    "epoch": d.epoch,
                    "log10_loss_mean": finite_or_none(d.log10_loss),
                    "error": d.error,
                }
                for d in self.direction_errors
            ],
        }

    @classmethod
    def _from_payload(cls, payload: dict[str, Any], version: int) -> ReferenceComparison:
        if version == 1:  # `marginlab reference` before records: the solver's fields at the top
            own = {"kind", "epoch", "network_margin", "reference_margin", "note"}
            details = {k: v for k, v in payload.items() if k not in own | {"direction_errors"}}
            errors = [
                DirectionError(d["epoch"], d["log10_loss_mean"], d["direction_error"])
                for d in payload.get("direction_errors", [])
            ]
        else:
            details = dict(payload["details"])
            errors = [
                DirectionError(d["epoch"], d["log10_loss_mean"], d["error"])
                for d in payload["direction_errors"]
            ]
        return cls(
            kind=payload["kind"],
            epoch=int(payload["epoch"]),
            network_margin=float(payload["network_margin"]),
            reference_margin=float(payload["reference_margin"]),
            details=details,
            note=str(payload.get("note", "")),
            direction_errors=tuple(errors),
        )


def _two_layer_inputs(
    model: nn.Module, x: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, int, float | None]:
    """A two-layer ReLU network seen as the F1/RKHS references see it: the inputs of its
    first layer, its first-layer weights, the width ``m`` its output is averaged over (1 for
    a plain sum), and its homogeneity order."""
    from torch import nn as torch_nn

    from marginlab.measure.references.rkhs import augmented_inputs
    from marginlab.models import TwoLayer

    inputs = x.flatten(1).double().cpu().numpy()
    if isinstance(model, TwoLayer) and model.body.act.name == "relu":
        if model.output.bias is not None:
            raise ValueError("kind f1/rkhs: bias 'all' is not homogeneous; use bias none or first")
        hidden = model.body.hidden
        weights = hidden.weight.detach().double().cpu().numpy()
        if hidden.bias is not None:
            bias = hidden.bias.detach().double().cpu().numpy()[:, None]
            return (
                augmented_inputs(inputs),
                np.hstack([weights, bias]),
                len(weights),
                model.homogeneity_order,
            )
        return inputs, weights, len(weights), model.homogeneity_order
    layers = list(model.children()) if isinstance(model, torch_nn.Sequential) else []
    if (
        len(layers) == 3
        and isinstance(layers[0], torch_nn.Linear)
        and isinstance(layers[1], torch_nn.ReLU)
        and isinstance(layers[2], torch_nn.Linear)
        and layers[0].bias is None
        and layers[2].bias is None
        and layers[2].out_features == 1
    ):
        weights = layers[0].weight.detach().double().cpu().numpy()
        order = float(layers[0].weight.requires_grad) + float(layers[2].weight.requires_grad)
        return inputs, weights, 1, order
    raise ValueError(
        "kind f1/rkhs: the run's model must be a ReLU two-layer network with one output: "
        "model.kind two_layer (activation relu), or nn.Sequential(Linear, ReLU, Linear) "
        "without biases"
    )


def _svm(run: Run, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    from marginlab.measure.references import direction_error, linear_svm

    if not hasattr(model, "end_to_end"):
        raise ValueError(
            "kind svm: the run's model must be linear, deep_linear or diagonal_linear "
            "(it needs an end-to-end linear predictor)"
        )
    result = linear_svm(x, y, model.n_outputs)
    errors = tuple(
        DirectionError(
            c.epoch,
            c.log10_loss_mean,
            direction_error(
                run.load_model(c).end_to_end().detach().reshape(result.w.shape), result.w
            ),
        )
        for c in run.checkpoints
    )
    return {
        "details": result.to_dict(),
        "reference_margin": result.network_margin(model.homogeneity_order),
        "direction_errors": errors,
        "note": "reference_margin = gamma_SVM / L^(L/2), the best q_min/||theta||^L",
    }


def _f1(model: nn.Module, x: torch.Tensor, y: torch.Tensor, tol: float) -> dict[str, Any]:
    from marginlab.measure.references import f1_max_margin

    inputs, weights, averaged_over, order = _two_layer_inputs(model, x)
    if order != 2.0:
        raise ValueError("kind f1: train both layers (model.train: both); use rkhs")
    result = f1_max_margin(inputs, y.cpu().numpy(), tol=tol)
    return {
        "details": {**result.to_dict(), "width": len(weights)},
        "reference_margin": result.network_margin(averaged_over),
        "note": "reference_margin = gamma_1 / (2 m) for an output averaged over m units "
        "(gamma_1 / 2 for a plain sum); code normalization gamma_1 / 2",
    }


def _rkhs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    from marginlab.measure.references import arccos_kernel, empirical_kernel, kernel_svm

    inputs, weights, averaged_over, order = _two_layer_inputs(model, x)
    if averaged_over == 1:
        raise ValueError(
            "kind rkhs: needs the mean-field two_layer model (model.kind: two_layer, train: "
            "output), whose kernel is averaged over its units; a plain network takes kind f1"
        )
    if order != 1.0:
        raise ValueError(
            "kind rkhs: the RKHS reference is the limit of output-layer training "
            "(model.train: output); use kind f1 when both layers train"
        )
    width = len(weights)
    empirical = kernel_svm(empirical_kernel(weights, inputs, inputs), y)
    closed = kernel_svm(arccos_kernel(inputs, inputs), y)
    return {
        "details": {
            "empirical": empirical.to_dict(),
            "closed_form": closed.to_dict(),
            "width": width,
            "closed_form_margin": closed.network_margin(width),
        },
        "reference_margin": empirical.network_margin(width),
        "note": "reference_margin = gamma_2(K_m) / sqrt(m), the limit of output-layer "
        "training; closed_form_margin = gamma_2(K) / sqrt(m)",
    }


def compare_reference(
    run: Run | str | os.PathLike,
    kind: str,
    checkpoint: str | int | float | CheckpointSpec = "last",
    *,
    tol: float = 1e-4,
    starts: int = 20,
    seed: int = 0,
    progress: bool = True,
) -> ReferenceComparison:
    """Compute the reference ``kind`` on the run's training set, beside its margin.

    Parameters
    ----------
    run : Run or path
        The run.
    kind : {"svm", "f1", "rkhs", "nonconvex"}
        ``svm``: hard-margin SVM of a linear model (and every checkpoint's direction
        error); ``f1``: the F1 (both layers) max margin of a ReLU two-layer net; ``rkhs``:
        the kernel max margin of its output layer; ``nonconvex``: the network's own
        max-margin problem from random starts.
    checkpoint : spec
        As for :meth:`Run.checkpoint`.
    tol : float
        ``f1``: relative gap to reach.
    starts, seed : int
        ``nonconvex``: random starts and their seed.
    progress : bool
        Show a bar with the time so far (over the starts, with the time left, for
        ``nonconvex``).

    Returns
    -------
    ReferenceComparison

    Raises
    ------
    ValueError
        When the reference does not apply to the run's model, saying which does.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> config = {"data": {"name": "gaussians", "params": {"n": 20, "d": 2}},
    ...           "model": {"kind": "linear"},
    ...           "train": {"schedule": "normalized", "max_epochs": 200}}
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> comparison = compare_reference(path, "svm")
    >>> 0 < comparison.ratio <= 1 + 1e-9
    True
    """
    if kind not in REFERENCE_KINDS:
        raise ValueError(f"kind: expected one of {REFERENCE_KINDS}, got {kind!r}")
    from marginlab.measure.margins import normalized_margin
    from marginlab.measure.references import nonconvex_max_margin

    run = run if isinstance(run, Run) else load_run(run)
    chosen = run.checkpoint(checkpoint)
    model = run.load_model(chosen)
    x, y = run.load_data("train")
    network = normalized_margin(model, x, y)
    if kind == "nonconvex":
        result = nonconvex_max_margin(model, x, y, n_starts=starts, seed=seed, progress=progress)
        parts = {
            "details": result.to_dict(),
            "reference_margin": result.margin,
            "note": f"reference_margin: the best {NETWORK_MARGIN} found from random starts",
        }
    else:
        solve = {"svm": lambda: _svm(run, model, x, y), "f1": lambda: _f1(model, x, y, tol)}
        solve["rkhs"] = lambda: _rkhs(model, x, y)
        with Bar(f"{kind} reference", total=1, enabled=progress) as bar:
            parts = solve[kind]()
            bar.update(1, "done")
    return ReferenceComparison(kind=kind, epoch=chosen.epoch, network_margin=network, **parts)
