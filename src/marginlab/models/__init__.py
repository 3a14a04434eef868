"""Homogeneous (and deliberately non-homogeneous) networks, and a numerical homogeneity check.

Every zoo model is a :class:`HomogeneousNet`: ``forward(x)`` gives ``(N, n_outputs)``,
``homogeneity_order`` is the order ``L`` in the trainable parameters (``None`` if not
homogeneous), ``layer_groups()`` lists each layer's parameters with its degree, and
``describe()`` is a one-line summary. :func:`build_model` builds one from a config mapping;
:func:`check_homogeneity` verifies any ``nn.Module`` numerically.
"""

from marginlab.models.activations import (
    ACTIVATIONS,
    Activation,
    ActivationKind,
    activation_degree,
    make_activation,
)
from marginlab.models.base import BIAS_MODES, HomogeneousNet, LayerGroup, SequentialNet
from marginlab.models.build import MODEL_KINDS, build_model
from marginlab.models.cnn import CNN, MNIST_CNN_SPEC, SPEC_GRAMMAR, parse_spec, vgg16, vgg16_spec
from marginlab.models.homogeneity import HomogeneityReport, check_homogeneity
from marginlab.models.init import he_normal_, lecun_normal_, variance_scaling_
from marginlab.models.linear import DeepLinear, DiagonalLinear, Linear
from marginlab.models.mlp import MLP
from marginlab.models.two_layer import TwoLayer

__all__ = [
    "ACTIVATIONS",
    "BIAS_MODES",
    "CNN",
    "MLP",
    "MNIST_CNN_SPEC",
    "MODEL_KINDS",
    "SPEC_GRAMMAR",
    "Activation",
    "ActivationKind",
    "DeepLinear",
    "DiagonalLinear",
    "HomogeneityReport",
    "HomogeneousNet",
    "LayerGroup",
    "Linear",
    "SequentialNet",
    "TwoLayer",
    "activation_degree",
    "build_model",
    "check_homogeneity",
    "he_normal_",
    "lecun_normal_",
    "make_activation",
    "parse_spec",
    "variance_scaling_",
    "vgg16",
    "vgg16_spec",
]
