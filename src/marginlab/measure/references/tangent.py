"""The tangent kernel of a mean-field two-layer ReLU network: the limit of lazy training.

For ``f(x) = (1/m) sum_j b_j relu(a_j . x)`` trained on both layers with the mean-field
flow ``theta_j' = m grad_{theta_j} S`` (Chizat & Bach's time scale), the function moves as

    f'(x) = sum_i p_i y_i K(x, x_i),
    K(x, x') = m sum_j <grad_{theta_j} f(x), grad_{theta_j} f(x')>
             = (1/m) sum_j [b_j^2 1[a_j . x > 0] 1[a_j . x' > 0] <x, x'>
                            + relu(a_j . x) relu(a_j . x')],

with ``p`` the soft-min weights of the samples.

While the weights stay near their initialization (a large initial scale: the lazy regime),
``f`` is a kernel method with the kernel at initialization, and with an exponentially
tailed loss it converges in direction to the kernel's max-margin classifier (the SVM
without offset of :func:`~marginlab.measure.references.rkhs.kernel_svm`). The second term
alone is the output-layer kernel :func:`~marginlab.measure.references.rkhs.empirical_kernel`.
``relu'(0) = 0``, as in torch.
"""

from __future__ import annotations

import numpy as np
import torch

from marginlab.measure.references.svm import _as_numpy


def tangent_kernel(
    first_layer: torch.Tensor | np.ndarray,
    second_layer: torch.Tensor | np.ndarray,
    x1: torch.Tensor | np.ndarray,
    x2: torch.Tensor | np.ndarray,
) -> np.ndarray:
    """The mean-field tangent kernel at weights ``a`` (``(m, d)``) and ``b`` (``(m,)``).

    Parameters
    ----------
    first_layer : tensor or array
        ``(m, d)`` input weights ``a_j`` (a bias is a constant input coordinate).
    second_layer : tensor or array
        ``(m,)`` output weights ``b_j``.
    x1, x2 : tensor or array
        ``(n1, d)`` and ``(n2, d)`` inputs.

    Returns
    -------
    numpy.ndarray
        ``(n1, n2)`` Gram matrix ``K(x1_k, x2_l)``.

    Examples
    --------
    >>> a, b = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([2.0, -1.0])
    >>> x = np.array([[1.0, 1.0]])
    >>> tangent_kernel(a, b, x, x).tolist()  # ((4 + 1) * 2 + 1 + 1) / 2
    [[6.0]]
    """
    a = _as_numpy(first_layer)
    b = _as_numpy(second_layer).reshape(-1)
    u, v = _as_numpy(x1), _as_numpy(x2)
    if a.ndim != 2 or b.shape != (a.shape[0],):
        raise ValueError(
            f"first_layer of shape {a.shape} and second_layer of shape {b.shape}: expected "
            "(m, d) and (m,)"
        )
    if u.shape[1:] != (a.shape[1],) or v.shape[1:] != (a.shape[1],):
        raise ValueError(
            f"x1 of shape {u.shape} and x2 of shape {v.shape}: expected (n, {a.shape[1]})"
        )
    z1, z2 = u @ a.T, v @ a.T
    gates = ((z1 > 0) * b**2) @ (z2 > 0).T
    features = np.maximum(z1, 0.0) @ np.maximum(z2, 0.0).T
    return (gates * (u @ v.T) + features) / len(b)
