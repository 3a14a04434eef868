"""Seeded weight initializers matching TensorFlow 1's ``VarianceScaling`` (truncated normal).

Lyu & Li's reference code initializes weights with TF1.13 ``he_normal``:
``VarianceScaling(scale=2, mode="fan_in", distribution="truncated_normal")``. TF draws from
``N(0, s^2)`` truncated to ``[-2 s, 2 s]`` and inflates ``s`` by ``1 / 0.8796...`` (the std of a
standard normal truncated at +-2) so that the truncated draw has std ``sqrt(scale / fan_in)``.
"""

from __future__ import annotations

import math

import torch

TRUNCATED_STD = 0.87962566103423978
"""Standard deviation of a standard normal truncated to ``[-2, 2]``."""


@torch.no_grad()
def variance_scaling_(
    tensor: torch.Tensor, fan_in: int, generator: torch.Generator, scale: float
) -> torch.Tensor:
    """Fill ``tensor`` in place from a truncated normal with std ``sqrt(scale / fan_in)``.

    Parameters
    ----------
    tensor : torch.Tensor
        Filled in place.
    fan_in : int
        ``in_features`` for a dense layer, ``k_h * k_w * c_in`` for a convolution.
    generator : torch.Generator
        Source of randomness (a model's construction seed).
    scale : float
        2 for He (ReLU) init, 1 for LeCun (linear) init.

    Returns
    -------
    torch.Tensor
        ``tensor``.

    Examples
    --------
    >>> w = variance_scaling_(torch.empty(3, 4), 4, torch.Generator().manual_seed(0), 1.0)
    >>> bool(w.abs().max() <= 2 * 0.5 / TRUNCATED_STD)
    True
    """
    std = math.sqrt(scale / fan_in) / TRUNCATED_STD
    return torch.nn.init.trunc_normal_(tensor, 0.0, std, -2.0 * std, 2.0 * std, generator)


def he_normal_(tensor: torch.Tensor, fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """TF1 ``he_normal``: truncated normal whose post-truncation std is ``sqrt(2 / fan_in)``.

    Examples
    --------
    >>> w = he_normal_(torch.empty(1000, 500), 500, torch.Generator().manual_seed(0))
    >>> round(float(w.std()) / (2 / 500) ** 0.5, 2)
    1.0
    """
    return variance_scaling_(tensor, fan_in, generator, scale=2.0)


def lecun_normal_(tensor: torch.Tensor, fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """TF1 ``lecun_normal``: post-truncation std ``sqrt(1 / fan_in)``, variance-preserving
    through a linear layer (used for the linear models, which have no ReLU halving).

    Examples
    --------
    >>> w = lecun_normal_(torch.empty(1000, 500), 500, torch.Generator().manual_seed(0))
    >>> round(float(w.std()) * 500 ** 0.5, 2)
    1.0
    """
    return variance_scaling_(tensor, fan_in, generator, scale=1.0)
