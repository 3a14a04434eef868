"""``marginlab kkt`` and ``marginlab reference``: diagnostics of a finished run."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads only when a command runs, so `marginlab --help` stays fast
    import numpy as np
    import torch
    from torch import nn

    from marginlab.runs.run import Checkpoint, Run

REFERENCE_KINDS = ("svm", "f1", "rkhs", "nonconvex")


def _checkpoint_spec(text: str) -> str | int | float:
    """``last``, ``all``, an epoch (``1200``) or a loss level (``1e-20``)."""
    if text in ("last", "all"):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--checkpoint: expected last, all, an epoch or a loss level like 1e-20; got {text!r}"
        ) from None


def _load(run: Run, checkpoint: Checkpoint) -> nn.Module:
    """Load the model of a kept checkpoint (``last`` for the latest state)."""
    return run.load_model("last" if checkpoint.reason == "last" else checkpoint.epoch)


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else format(value, spec)
    )


def _fell(values: list[float]) -> str:
    """``first -> last (k of n fell)``: how a quantity moved across the checkpoints."""
    falls = sum(after < before for before, after in zip(values, values[1:], strict=False))
    return f"{values[0]:.3e} -> {values[-1]:.3e} (fell at {falls} of {len(values) - 1})"


def _trend(records: list[dict]) -> list[str]:
    """How 1 - beta and each certificate moved from checkpoint to checkpoint."""
    measured = [r for r in records if "certificates" in r]
    # the last checkpoint can repeat the last loss-level one
    measured = [
        r for i, r in enumerate(measured) if i == 0 or r["epoch"] != measured[i - 1]["epoch"]
    ]
    if len(measured) < 3:
        return []
    lines = [f"across {len(measured)} checkpoints, first -> last (steps at which it fell):"]
    lines.append(f"  {'1-beta':<16} {_fell([1.0 - r['beta'] for r in measured])}")
    labels = ["weights"] + [f"tau {c['tau']:g}" for c in measured[0]["certificates"]]
    for i, label in enumerate(labels):
        certs = [r["loss_weights"] if i == 0 else r["certificates"][i - 1] for r in measured]
        lines.append(f"  {label + ' eps_rel':<16} {_fell([c['eps_rel'] for c in certs])}")
        lines.append(f"  {label + ' delta':<16} {_fell([c['delta'] for c in certs])}")
    return lines


def _kkt(args: argparse.Namespace) -> int:
    from marginlab.measure.kkt import DEFAULT_MEMORY_BUDGET, DEFAULT_TAUS, kkt_certificates
    from marginlab.runs.run import load_run

    taus = list(args.tau or DEFAULT_TAUS)
    budget = args.memory_budget or DEFAULT_MEMORY_BUDGET
    run = load_run(args.run_dir)
    x, y = run.load_data("train")
    chosen = run.checkpoints if args.checkpoint == "all" else [run.checkpoint(args.checkpoint)]
    header = f"{'epoch':>8} {'log10 loss':>10} {'margin':>11} {'1-beta':>14} {'tau':>7} "
    header += f"{'eps_rel':>10} {'delta':>10} {'active':>7}"
    print(header)
    records = []
    for checkpoint in chosen:
        record = {
            "epoch": checkpoint.epoch,
            "reason": checkpoint.reason,
            "log10_loss_mean": checkpoint.log10_loss_mean,
        }
        lead = f"{checkpoint.epoch:>8} {_fmt(checkpoint.log10_loss_mean, '.2f'):>10}"
        try:
            result = kkt_certificates(
                _load(run, checkpoint),
                x,
                y,
                run.config["loss"],
                taus=taus,
                memory_budget=budget,
            )
        except ValueError as error:
            record["error"] = str(error)
            records.append(record)
            print(f"{lead}  skipped: {error}")
            continue
        record.update(result.to_dict())
        records.append(record)
        certs = [("weights", result.loss_weights)]
        certs += [(f"{c.tau:g}", c) for c in result.certificates]
        for label, cert in certs:
            print(
                f"{lead} {result.normalized_margin:>11.5g} {1.0 - result.beta:>14.3e} "
                f"{label:>7} {cert.eps_rel:>10.3e} {cert.delta:>10.3e} {cert.n_active:>7}"
            )
            lead = " " * len(lead)
    print("(tau 'weights': the certificate with the loss weights as multipliers)")
    for line in _trend(records):
        print(line)
    path = run.store.write_json("kkt.json", {"taus": taus, "checkpoints": records})
    print(f"written: {path}")
    return 0


def _two_layer_inputs(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The inputs as the first layer of a ``TwoLayer`` sees them, and its weights."""
    import numpy as np

    from marginlab.measure.references.rkhs import augmented_inputs
    from marginlab.models import TwoLayer

    if not isinstance(model, TwoLayer) or model.body.act.name != "relu":
        raise ValueError(
            "--kind f1/rkhs: the run's model must be a ReLU two_layer network "
            "(model.kind: two_layer, activation: relu)"
        )
    if model.output.bias is not None:
        raise ValueError("--kind f1/rkhs: bias 'all' is not homogeneous; use bias none or first")
    hidden = model.body.hidden
    weights = hidden.weight.detach().double().cpu().numpy()
    inputs = x.flatten(1).double().cpu().numpy()
    if hidden.bias is not None:
        bias = hidden.bias.detach().double().cpu().numpy()[:, None]
        return augmented_inputs(inputs), np.hstack([weights, bias])
    return inputs, weights


def _reference_payload(
    kind: str,
    run: Run,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    args: argparse.Namespace,
) -> dict:
    """Compute the reference ``kind``; return its payload with ``reference_margin``."""
    from marginlab.measure.references import (
        arccos_kernel,
        direction_error,
        empirical_kernel,
        f1_max_margin,
        kernel_svm,
        linear_svm,
        nonconvex_max_margin,
    )

    if kind == "svm":
        if not hasattr(model, "end_to_end"):
            raise ValueError(
                "--kind svm: the run's model must be linear, deep_linear or diagonal_linear "
                "(it needs an end-to-end linear predictor)"
            )
        result = linear_svm(x, y, model.n_outputs)
        errors = [
            {
                "epoch": c.epoch,
                "log10_loss_mean": c.log10_loss_mean,
                "direction_error": direction_error(
                    _load(run, c).end_to_end().detach().reshape(result.w.shape), result.w
                ),
            }
            for c in run.checkpoints
        ]
        for row in errors:
            print(
                f"  epoch {row['epoch']:>8}  log10 loss {_fmt(row['log10_loss_mean'], '.2f'):>8}  "
                f"direction error {row['direction_error']:.3e}"
            )
        order = model.homogeneity_order
        return {
            **result.to_dict(),
            "reference_margin": result.network_margin(order),
            "direction_errors": errors,
            "note": "reference_margin = gamma_SVM / L^(L/2), the best q_min/||theta||^L",
        }
    if kind == "f1":
        inputs, weights = _two_layer_inputs(model, x)
        if model.homogeneity_order != 2.0:
            raise ValueError("--kind f1: train both layers (model.train: both); use rkhs")
        result = f1_max_margin(inputs, y.cpu().numpy(), tol=args.tol)
        width = len(weights)
        print(
            f"  gamma_1 in [{result.lower:.6g}, {result.upper:.6g}] (certified: {result.certified})"
        )
        return {
            **result.to_dict(),
            "width": width,
            "reference_margin": result.network_margin(width),
            "note": "reference_margin = gamma_1 / (2 m); code normalization gamma_1 / 2",
        }
    if kind == "rkhs":
        inputs, weights = _two_layer_inputs(model, x)
        if model.homogeneity_order != 1.0:
            raise ValueError(
                "--kind rkhs: the RKHS reference is the limit of output-layer training "
                "(model.train: output); use --kind f1 when both layers train"
            )
        width = len(weights)
        empirical = kernel_svm(empirical_kernel(weights, inputs, inputs), y)
        closed = kernel_svm(arccos_kernel(inputs, inputs), y)
        print(
            f"  gamma_2: empirical kernel of the first layer {empirical.margin:.6g}, "
            f"closed-form arc-cosine kernel {closed.margin:.6g}"
        )
        return {
            "empirical": empirical.to_dict(),
            "closed_form": closed.to_dict(),
            "width": width,
            "reference_margin": empirical.network_margin(width),
            "closed_form_margin": closed.network_margin(width),
            "note": "reference_margin = gamma_2(K_m) / sqrt(m), the limit of output-layer "
            "training; closed_form_margin = gamma_2(K) / sqrt(m)",
        }
    result = nonconvex_max_margin(model, x, y, n_starts=args.starts, seed=args.seed)
    return {**result.to_dict(), "reference_margin": result.margin}


def _reference(args: argparse.Namespace) -> int:
    from marginlab.measure.margins import normalized_margin
    from marginlab.runs.run import load_run

    if args.checkpoint == "all":
        print("marginlab: error: --checkpoint: reference takes one checkpoint", file=sys.stderr)
        return 2
    run = load_run(args.run_dir)
    checkpoint = run.checkpoint(args.checkpoint)
    model = _load(run, checkpoint)
    x, y = run.load_data("train")
    print(f"run {run.path.name}, epoch {checkpoint.epoch}, reference {args.kind}")
    try:
        network = normalized_margin(model, x, y)
        payload = _reference_payload(args.kind, run, model, x, y, args)
    except ValueError as error:
        print(f"marginlab: error: {error}", file=sys.stderr)
        return 2
    reference = payload["reference_margin"]
    print(f"reference margin {reference:.6g}   network margin {network:.6g}   ", end="")
    print(f"ratio {network / reference:.4f}")
    payload.update({"kind": args.kind, "epoch": checkpoint.epoch, "network_margin": network})
    path = run.store.write_json(f"reference-{args.kind}.json", payload)
    print(f"written: {path}")
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    kkt = sub.add_parser("kkt", help="KKT certificates of a run's checkpoints (Lyu & Li B7)")
    kkt.add_argument("run_dir")
    kkt.add_argument(
        "--checkpoint",
        type=_checkpoint_spec,
        default="last",
        help="last (default), all, an epoch, or a loss level such as 1e-20",
    )
    kkt.add_argument(
        "--tau",
        type=_positive_float,
        nargs="+",
        help="activity tolerances (default: 0.001 0.01 0.1 1)",
    )
    kkt.add_argument(
        "--memory-budget",
        type=int,
        help="bytes for a dense Jacobian; above it the solve is matrix-free (default 256 MiB)",
    )
    kkt.set_defaults(func=_kkt)

    reference = sub.add_parser(
        "reference", help="a reference max-margin solution beside the run's margin"
    )
    reference.add_argument("run_dir")
    reference.add_argument("--kind", choices=REFERENCE_KINDS, required=True)
    reference.add_argument(
        "--checkpoint", type=_checkpoint_spec, default="last", help="last, an epoch or a loss level"
    )
    reference.add_argument("--tol", type=float, default=1e-4, help="f1: relative gap to reach")
    reference.add_argument("--starts", type=int, default=20, help="nonconvex: random starts")
    reference.add_argument("--seed", type=int, default=0, help="nonconvex: seed of the starts")
    reference.set_defaults(func=_reference)
