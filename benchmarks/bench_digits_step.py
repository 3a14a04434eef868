"""The digits-cnn step and evaluation against their plain-PyTorch baselines, in one process.

Times, alternating ``--repeats`` rounds so that both sides see the same machine (one thread):

- the SGD step (batch 25): ``log_loss_and_grad`` against the same gradient through the
  composed formula ``logsumexp(loss.log_per_sample(pairwise_margins(...)))`` and autograd;
- the full training-set forward (1797 images): the zoo's convolution (dense matrix for the
  4x4 maps) against ``torch.nn.Conv2d`` with the same weights;
- a whole attempt (71 steps and the evaluation): the package against both baselines at once.

Run: ``python benchmarks/bench_digits_step.py [--repeats 5]``.

Example
-------
>>> parts = digits_cnn()
>>> baseline = with_torch_convolutions(parts.model)
>>> x = parts.data.x_train[:100]
>>> bool(torch.allclose(baseline(x), parts.model(x)))
True
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from marginlab.config import validate
from marginlab.experiments.presets import preset
from marginlab.measure import gradient
from marginlab.measure.margins import pairwise_margins, trainable_parameters
from marginlab.models.conv import SameConv2d
from marginlab.training.assembly import Assembly, assemble
from marginlab.training.attempt import evaluate_split, run_attempt


def digits_cnn() -> Assembly:
    """The preset's model, data and schedule."""
    return assemble(validate(preset("digits-cnn")))


def with_torch_convolutions(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose convolutions are plain ``torch.nn.Conv2d`` layers."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, SameConv2d):
                plain = nn.Conv2d(
                    child.in_channels,
                    child.out_channels,
                    child.kernel_size,
                    padding="same",
                    bias=child.bias is not None,
                ).to(child.weight)
                plain.load_state_dict(child.state_dict())
                setattr(module, name, plain)
    return model


def _composed_log_loss_sum(outputs, y, loss):
    return torch.logsumexp(loss.log_per_sample(pairwise_margins(outputs, y)), dim=0)


def _ms_per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    parts = digits_cnn()
    baseline_parts = copy.copy(parts)
    baseline_parts.model = with_torch_convolutions(parts.model)
    x, y = parts.data.x_train, parts.data.y_train
    state = parts.schedule.init(evaluate_split(parts, x, y).log_loss_mean)

    def step(model: nn.Module) -> Callable[[], object]:
        params = trainable_parameters(model)
        return lambda: gradient.log_loss_and_grad(model, params, x[:25], y[:25], parts.loss)

    def attempt(which: Assembly) -> Callable[[], object]:
        params = trainable_parameters(which.model)
        start = [p.detach().clone() for p in params]

        def run() -> None:
            with torch.no_grad():
                torch._foreach_copy_(params, start)
            run_attempt(which, params, state, index=0)

        return run

    fused = gradient.log_loss_sum
    timings: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for label, head, fn, calls in [
            ("step, composed loss", _composed_log_loss_sum, step(parts.model), 300),
            ("step, fused loss", fused, step(parts.model), 300),
            ("evaluation, torch conv", fused, lambda: evaluate_split(baseline_parts, x, y), 20),
            ("evaluation, zoo conv", fused, lambda: evaluate_split(parts, x, y), 20),
            ("attempt, baselines", _composed_log_loss_sum, attempt(baseline_parts), 5),
            ("attempt, package", fused, attempt(parts), 5),
        ]:
            gradient.log_loss_sum = head  # log_loss_and_grad looks it up at call time
            timings.setdefault(label, []).append(_ms_per_call(fn, calls))
    gradient.log_loss_sum = fused
    medians = {label: statistics.median(values) for label, values in timings.items()}
    for label, value in medians.items():
        print(f"{label:<24} {value:8.3f} ms")
    labels = list(medians)
    for baseline, ours in zip(labels[::2], labels[1::2], strict=True):
        ratios = [a / b for a, b in zip(timings[baseline], timings[ours], strict=True)]
        print(f"{ours}: {statistics.median(ratios):.2f}x faster than {baseline.split(', ')[1]}")


if __name__ == "__main__":
    main()
