"""The RKHS max-margin classifier: the limit of output-layer-only training (Chizat & Bach).

With the first layer frozen at ``a_j ~ N(0, I_d)``, a mean-field two-layer ReLU network
``f(x) = (1/m) sum_j b_j relu(a_j . x)`` is linear in ``b`` and converges in direction to the
hard-margin SVM (no offset) in the feature space ``phi_j(x) = relu(a_j . x)``: the kernel SVM
with the empirical kernel ``K_m(x, x') = (1/m) sum_j relu(a_j . x) relu(a_j . x')``. As
``m -> infinity``, ``K_m`` tends to the degree-1 arc-cosine kernel (Cho & Saul 2009;
``chizat-vardi.md`` section 3.2), with ``phi`` the angle between ``x`` and ``x'``:

    K(x, x') = ||x|| ||x'|| (sin phi + (pi - phi) cos phi) / (2 pi).

``gamma_2 = max_{||f||_H <= 1} min_n y_n f(x_n) = 1 / sqrt(sum alpha)`` for the SVM dual
``alpha``. Chizat & Bach's F2 draws the weights uniformly on the sphere instead
(:func:`sphere_kernel`, ``K / d``): the same classifier, ``gamma_2`` divided by ``sqrt(d)``.
Normalizations of the same quantity for a width-``m`` network:

- the network's normalized margin ``q_min / ||b||`` (:mod:`marginlab.measure.margins`, order 1)
  is at most ``gamma_2(K_m) / sqrt(m)``, its exact limit under output-layer training;
- the Chizat-Bach code reports ``q_min / (||b|| / m)``, at most ``sqrt(m) gamma_2(K_m)``.

A first-layer bias ``c_j`` (``bias="first"``) is the same as a constant input coordinate:
pass inputs with a column of ones appended (:func:`augmented_inputs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from marginlab.measure.references.svm import _as_numpy, least_distance


@dataclass(frozen=True)
class KernelSVMResult:
    """A hard-margin kernel SVM without offset.

    Attributes
    ----------
    alpha : numpy.ndarray
        Dual multipliers; ``f(x) = sum_n alpha_n y_n K(x_n, x)``.
    margin : float
        ``gamma_2 = 1 / ||f||_H`` (``= 1 / sqrt(sum alpha)`` at the optimum).
    min_output : float
        ``min_n y_n f(x_n)``, 1 up to rounding (a check of the solve).
    """

    alpha: np.ndarray
    margin: float
    min_output: float

    def network_margin(self, width: int) -> float:
        """``gamma_2 / sqrt(m)``: the bound on ``q_min / ||b||`` of a width-``m`` network.

        Examples
        --------
        >>> KernelSVMResult(np.ones(1), 0.5, 1.0).network_margin(100)
        0.05
        """
        return self.margin / math.sqrt(width)

    def to_dict(self) -> dict:
        return {
            "margin": self.margin,
            "min_output": self.min_output,
            "support": np.flatnonzero(self.alpha > 0).tolist(),
        }


def augmented_inputs(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Append a constant 1 to each flattened input (a first-layer bias as an input).

    Examples
    --------
    >>> augmented_inputs(np.array([[2.0, 3.0]])).tolist()
    [[2.0, 3.0, 1.0]]
    """
    x = _as_numpy(x)
    x = x.reshape(len(x), -1)
    return np.hstack([x, np.ones((len(x), 1))])


def arccos_kernel(x1: torch.Tensor | np.ndarray, x2: torch.Tensor | np.ndarray) -> np.ndarray:
    """Degree-1 arc-cosine kernel ``E_{a ~ N(0, I)}[relu(a . x) relu(a . x')]`` in closed form.

    Examples
    --------
    >>> x = np.array([[3.0, 4.0]])
    >>> float(arccos_kernel(x, x)[0, 0])  # ||x||^2 / 2
    12.5
    """
    a, b = _as_numpy(x1), _as_numpy(x2)
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.clip(np.where(norms > 0, (a @ b.T) / norms, 1.0), -1.0, 1.0)
    angle = np.arccos(cosine)
    return norms * (np.sin(angle) + (np.pi - angle) * cosine) / (2.0 * np.pi)


def sphere_kernel(x1: torch.Tensor | np.ndarray, x2: torch.Tensor | np.ndarray) -> np.ndarray:
    """``E_{a ~ U(S^{d-1})}[relu(a . x) relu(a . x')]``: the kernel of Chizat & Bach's F2.

    The paper's RKHS integrates over input weights uniform on the sphere (its eq. 5, the
    bias a coordinate of ``x``). For ``g ~ N(0, I_d)``, ``||g||^2`` and ``g / ||g||`` are
    independent and ``E ||g||^2 = d``, so this is :func:`arccos_kernel` over ``d``: the same
    max-margin classifier, and a ``gamma_2`` ``sqrt(d)`` times smaller.

    Examples
    --------
    >>> x = np.array([[3.0, 4.0]])
    >>> float(sphere_kernel(x, x)[0, 0])  # ||x||^2 / (2 d)
    6.25
    """
    a = _as_numpy(x1)
    return arccos_kernel(x1, x2) / a.reshape(len(a), -1).shape[1]


def empirical_kernel(
    first_layer: torch.Tensor | np.ndarray,
    x1: torch.Tensor | np.ndarray,
    x2: torch.Tensor | np.ndarray,
) -> np.ndarray:
    """``K_m(x, x') = (1/m) sum_j relu(a_j . x) relu(a_j . x')`` for weights ``(m, d)``.

    Examples
    --------
    >>> a = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> empirical_kernel(a, np.array([[2.0, 2.0]]), np.array([[1.0, -1.0]])).tolist()
    [[1.0]]
    """
    a = _as_numpy(first_layer)
    f1 = np.maximum(_as_numpy(x1).reshape(len(x1), -1) @ a.T, 0.0)
    f2 = np.maximum(_as_numpy(x2).reshape(len(x2), -1) @ a.T, 0.0)
    return f1 @ f2.T / len(a)


def kernel_svm(kernel: np.ndarray, y: torch.Tensor | np.ndarray) -> KernelSVMResult:
    """Hard-margin SVM without offset for a PSD Gram matrix and labels (class indices 0/1).

    ``K = F F^T`` from its eigendecomposition (negative rounding eigenvalues dropped), then
    the exact least-distance solve of :func:`~marginlab.measure.references.svm.least_distance`
    in the coordinates ``F``.

    Examples
    --------
    >>> result = kernel_svm(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([1, 0]))
    >>> round(result.margin, 12), round(result.min_output, 12)
    (1.0, 1.0)
    """
    kernel = 0.5 * (kernel + kernel.T)
    signs = 2.0 * _as_numpy(y) - 1.0
    values, vectors = np.linalg.eigh(kernel)
    keep = values > values.max() * len(values) * np.finfo(float).eps
    features = vectors[:, keep] * np.sqrt(values[keep])
    w, alpha = least_distance(signs[:, None] * features, np.ones(len(signs)))
    outputs = signs * (kernel @ (alpha * signs))
    return KernelSVMResult(alpha, 1.0 / float(np.linalg.norm(w)), float(outputs.min()))
