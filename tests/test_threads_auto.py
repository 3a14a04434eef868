"""``threads: auto``: one thread for small steps, torch's default for large ones."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from marginlab.config import validate
from marginlab.training.assembly import (
    ONE_THREAD_FLOPS,
    Assembly,
    forward_flops,
    session_threads,
)


def test_forward_flops_count_linear_and_conv_layers_exactly():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten())
    linear = nn.Sequential(nn.Linear(10, 7, bias=False), nn.ReLU(), nn.Linear(7, 1))
    assert forward_flops(conv, torch.zeros(1, 3, 5, 5)) == 2 * (8 * 3 * 9) * 25
    assert forward_flops(linear, torch.zeros(1, 10)) == 2 * (70 + 7)


def _threads(model: nn.Module, n: int) -> int:
    """The threads of a full-batch run of ``model`` on ``n`` samples, under ``auto``."""
    config = validate({"data": {"name": "gaussians"}, "model": {"kind": "linear"}})
    x = torch.zeros(n, model[0].in_features)
    data = SimpleNamespace(x_train=x, n_train=n)
    parts = Assembly(config, torch.device("cpu"), data, model, None, None)
    return session_threads(parts)


def test_small_steps_take_one_thread_and_large_ones_torch_s_default():
    small = nn.Sequential(nn.Linear(5, 1, bias=False))
    large = nn.Sequential(nn.Linear(2000, 2000, bias=False), nn.ReLU(), nn.Linear(2000, 1))
    assert 3 * 2 * 5 * 200 < ONE_THREAD_FLOPS < 3 * 2 * 2000 * 2000 * 20
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the suite runs on one thread, which would hide the difference
    try:
        assert _threads(small, 200) == 1
        assert _threads(large, 20) == 2
    finally:
        torch.set_num_threads(before)
