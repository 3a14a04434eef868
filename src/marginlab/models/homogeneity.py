"""Numerical check that a network is homogeneous in its trainable parameters."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, jvp


@dataclass(frozen=True)
class HomogeneityReport:
    """Result of :func:`check_homogeneity`.

    Attributes
    ----------
    measured_order : float
        ``L`` fitted from ``f(2 theta)``, ``f(theta)``, ``f(theta / 2)``; NaN when every
        output is (nearly) 0.
    declared_order : float or None
        The order checked against: the ``order`` argument, else ``model.homogeneity_order``.
    euler_error : float
        ``||<theta, grad f> - L f|| / ||L f||`` over all outputs.
    scale_error : float
        ``||f(2 theta) - 2^L f(theta)|| / ||2^L f(theta)||``.
    is_homogeneous : bool
        Both errors below ``rtol``.
    """

    measured_order: float
    declared_order: float | None
    euler_error: float
    scale_error: float
    is_homogeneous: bool

    def __str__(self) -> str:
        verdict = "homogeneous" if self.is_homogeneous else "NOT homogeneous"
        declared = "none" if self.declared_order is None else f"{self.declared_order:g}"
        return (
            f"{verdict}: measured L={self.measured_order:.6g}, declared L={declared}, "
            f"Euler error {self.euler_error:.2e}, scale error {self.scale_error:.2e}"
        )


def _relative(error: torch.Tensor, reference: torch.Tensor) -> float:
    numerator, denominator = float(error.norm()), float(reference.norm())
    if denominator == 0.0:
        return 0.0 if numerator == 0.0 else math.inf
    return numerator / denominator


def _along_theta_by_reverse_mode(
    f: Callable[[dict[str, torch.Tensor]], torch.Tensor], theta: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(theta)`` and its derivative along ``theta`` (``<theta, grad f_j>`` for every
    output ``j``), one backward pass per output: the slow way, for modules that forward
    mode cannot run."""
    params = {name: p.detach().requires_grad_() for name, p in theta.items()}
    with torch.enable_grad():
        value = f(params)
        along = torch.zeros(value.numel(), dtype=value.dtype, device=value.device)
        for j, output in enumerate(value.reshape(-1)):
            grads = torch.autograd.grad(
                output, list(params.values()), retain_graph=True, allow_unused=True
            )
            with torch.no_grad():  # a sum of products, not part of any graph
                for grad, p in zip(grads, params.values(), strict=True):
                    if grad is not None:
                        along[j] += (grad * p).sum()
    return value.detach(), along.detach().reshape(value.shape)


def check_homogeneity(
    model: nn.Module, x: torch.Tensor, order: float | None = None, *, rtol: float = 1e-8
) -> HomogeneityReport:
    """Check ``f(c theta; x) = c^L f(theta; x)`` for the trainable parameters ``theta``.

    Works on any ``nn.Module``. Two tests are run, for every output at once:

    - Euler's identity ``<theta, grad_theta f_j> = L f_j``: its left side is the JVP of
      ``theta -> f(theta; x)`` along ``theta`` itself (one forward-mode pass);
    - scaling: ``f(2 theta) = 2^L f(theta)``.

    ``L`` is the declared order when there is one, else the measured one. The model is
    never modified (:func:`torch.func.functional_call` substitutes the parameters). The
    check runs in the model's dtype: use float64 for ``rtol`` near 1e-8 (float32 rounding
    alone gives errors near 1e-7).

    Parameters
    ----------
    model : nn.Module
        Any network; ``theta`` is its parameters with ``requires_grad=True``.
    x : torch.Tensor
        A small input batch; cast to the model's dtype.
    order : float, optional
        Order to check; defaults to ``model.homogeneity_order`` when the model has one.
    rtol : float
        Threshold on both relative errors for ``is_homogeneous``.

    Returns
    -------
    HomogeneityReport

    Raises
    ------
    ValueError
        If the model has no trainable parameter.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.ReLU(),
    ...                           torch.nn.Linear(4, 2, bias=False)).double()
    >>> report = check_homogeneity(net, torch.randn(5, 3))
    >>> round(report.measured_order, 6), report.is_homogeneous
    (2.0, True)
    """
    theta = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    if not theta:
        raise ValueError("model has no trainable parameters (requires_grad=True)")
    dtype = next(iter(theta.values())).dtype
    x = x.to(dtype) if x.is_floating_point() else x

    def f(params: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(model, params, (x,))

    with torch.no_grad(), warnings.catch_warnings():
        # torch's first jvp loads its decompositions through the deprecated torch.jit.script;
        # the warning is about torch internals, not anything the caller can change.
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        try:
            value, euler_lhs = jvp(f, (theta,), (theta,))
        except RuntimeError:
            # forward mode refused (an autograd.Function without a forward-mode rule)
            value, euler_lhs = _along_theta_by_reverse_mode(f, theta)
        doubled = f({name: 2 * p for name, p in theta.items()})
        halved = f({name: p / 2 for name, p in theta.items()})

    # Least squares of log|f(c theta)| = L log c + const_j over c in {1/2, 1, 2} has slope
    # (log|f(2 theta)| - log|f(theta/2)|) / (2 log 2) per output; average over outputs large
    # enough for their logs to be meaningful.
    # "Tiny" is relative to the largest output at the same scale: f(2 theta) and
    # f(theta / 2) differ by 4^L, which is 2^56 for VGG-16.
    magnitudes = torch.stack([value, doubled, halved]).abs().flatten(1)
    usable = (magnitudes > 1e-8 * magnitudes.amax(1, keepdim=True)).all(0)
    slopes = (doubled.abs().log() - halved.abs().log()) / (2 * math.log(2.0))
    measured = float(slopes.flatten()[usable].mean()) if bool(usable.any()) else math.nan

    declared = order if order is not None else getattr(model, "homogeneity_order", None)
    declared = None if declared is None else float(declared)
    used = measured if declared is None else declared
    euler_error = _relative(euler_lhs - used * value, used * value)
    scale_error = _relative(doubled - 2.0**used * value, 2.0**used * value)
    return HomogeneityReport(
        measured_order=measured,
        declared_order=declared,
        euler_error=euler_error,
        scale_error=scale_error,
        is_homogeneous=bool(euler_error < rtol and scale_error < rtol),
    )
