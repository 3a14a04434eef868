"""Per-layer optimality: with every other layer fixed, is a layer optimal for the max margin?

For a network without biases past its first layer, the output is positively 1-homogeneous in
each layer's weights ``W_l``. The max-margin problem restricted to layer ``l`` is

    (P_l)   min 1/2 ||W_l||^2   s.t.   s_i(W_1, ..., W_l, ..., W_D) >= 1,   other layers fixed,

and a network is *per-layer global* (*local*) when every layer, rescaled so that its smallest
margin is 1, is a global (local) solution of its ``(P_l)``. These definitions are ours: Vardi,
Shamir & Srebro (2022) state per-layer results, but the body of the paper, where they are
defined, was not read (``shared/papers/published-text.md``). A KKT point of the full problem
is a KKT point of every ``(P_l)`` (the layer's block of the KKT condition), so the question
is whether these KKT points are optimal.

How each layer is decided (:func:`per_layer_optimality`):

- **linear**: a layer in which the network is linear (every layer of a linear network, the
  last layer of a ReLU network). ``(P_l)`` is a hard-margin SVM in the features
  ``d s_i / d W_l``, a convex QP solved exactly (:func:`~.svm.least_distance`); local and
  global coincide.
- **relu cones**: the first layer of a one-hidden-layer ReLU network with one output. On the
  cone of weights with activation pattern ``A`` (``A_ij = 1[w_j . x_i > 0]``) the network is
  linear, and ``(P_l)`` on the cone is a QP with the cone's inequalities. The cones that
  contain the layer (its own pattern, free where a pre-activation is zero) cover a
  neighbourhood of it and are convex, so the layer is a local solution exactly when it
  solves each of their QPs; the global value is the smallest over all ``2^(n m)`` patterns
  (enumerated up to ``max_patterns``; infeasible cones are skipped).
- any other layer: no exact decision (``None``).

Every layer also gets the numerical probe of
:func:`~marginlab.measure.references.local_probe.local_probe` with the other layers frozen,
an independent check of the local verdicts.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev

from marginlab.measure.references.local_probe import local_probe
from marginlab.measure.references.nonconvex import MarginProblem
from marginlab.measure.references.svm import least_distance
from marginlab.measure.references.vardi import DiagonalNet
from marginlab.models.activations import Activation
from marginlab.models.base import Scale, SequentialNet

LINEAR, RELU_CONES, UNDECIDED = "linear", "relu cones", "undecided"
_LINEAR_MODULES = (nn.Linear, nn.Conv2d, nn.Flatten, nn.AvgPool2d, Scale)


@dataclass(frozen=True)
class LayerOptimality:
    """How optimal one layer is for its restricted max-margin problem ``(P_l)``.

    Attributes
    ----------
    layer : str
        The layer's name.
    method : str
        ``"linear"``, ``"relu cones"`` or ``"undecided"`` (module notes).
    norm_sq : float
        ``||W_l||^2`` after rescaling the layer so that its smallest margin is 1.
    local_value : float or None
        The smallest ``||W||^2`` over the feasible points of the cones that contain the
        layer (exact); None when undecided.
    global_value : float or None
        The optimum of ``(P_l)`` (exact); None when undecided.
    probe_gain : float
        Relative gain in ``q_min / ||W_l||`` that the numerical probe found nearby, with the
        other layers frozen (0 when it found none).
    patterns : int
        Activation cones whose QP was solved (0 for a linear layer).
    """

    layer: str
    method: str
    norm_sq: float
    local_value: float | None
    global_value: float | None
    probe_gain: float
    patterns: int = 0

    def is_local(self, tol: float = 1e-9) -> bool | None:
        """No shorter feasible ``W_l`` nearby (relative ``tol``); None when undecided."""
        if self.local_value is None:
            return None
        return bool(self.norm_sq <= self.local_value * (1.0 + tol))

    def is_global(self, tol: float = 1e-9) -> bool | None:
        """``W_l`` solves ``(P_l)`` (relative ``tol``); None when undecided."""
        if self.global_value is None:
            return None
        return bool(self.norm_sq <= self.global_value * (1.0 + tol))

    def to_dict(self) -> dict:
        return asdict(self)


def layer_names(model: nn.Module) -> list[str]:
    """The layers of ``model``: its layer groups (zoo models), else one per parameter.

    Examples
    --------
    >>> from marginlab.models import MLP
    >>> layer_names(MLP(2, [3], 1)), layer_names(DiagonalNet(2, depth=2))
    (['fc1', 'fc2'], ['layers.0', 'layers.1'])
    """
    if isinstance(model, SequentialNet):
        return [group.name for group in model.layer_groups()]
    return [name for name, p in model.named_parameters() if p.requires_grad]


def _layer_parameters(model: nn.Module, layer: str) -> set[str]:
    if isinstance(model, SequentialNet):
        ids = {id(p) for group in model.layer_groups() if group.name == layer for p in group.params}
        return {name for name, p in model.named_parameters() if id(p) in ids}
    return {layer} if layer in dict(model.named_parameters()) else set()


def only_layer(model: nn.Module, layer: str) -> nn.Module:
    """A float64 copy of ``model`` whose only trainable parameters are the layer's: the
    network of the restricted problem ``(P_l)``, 1-homogeneous in what it trains.

    Examples
    --------
    >>> from marginlab.models import MLP
    >>> [n for n, p in only_layer(MLP(2, [3], 1), "fc2").named_parameters() if p.requires_grad]
    ['body.fc2.weight']
    """
    names = _layer_parameters(model, layer)
    if not names:
        raise ValueError(f"layer: {layer!r} is not a layer of the model; expected one of "
                         f"{layer_names(model)}")  # fmt: skip
    frozen = copy.deepcopy(model).double()
    for name, param in frozen.named_parameters():
        param.requires_grad_(name in names)
    return frozen


def _is_linear_map(modules: list[nn.Module]) -> bool:
    return all(
        isinstance(m, _LINEAR_MODULES) or (isinstance(m, Activation) and m.name == "identity")
        for m in modules
    )


def layer_method(model: nn.Module, layer: str) -> str:
    """How :func:`per_layer_optimality` decides ``layer`` (module notes).

    Examples
    --------
    >>> from marginlab.models import MLP, DeepLinear
    >>> [layer_method(MLP(2, [3], 1), name) for name in ("fc1", "fc2")]
    ['relu cones', 'linear']
    >>> layer_method(DeepLinear(2, hidden=[3]), "fc1"), layer_method(MLP(2, [3, 3], 1), "fc1")
    ('linear', 'undecided')
    """
    if isinstance(model, DiagonalNet):
        index = int(layer.split(".")[-1])
        return LINEAR if not model.relu or index == len(model.layers) - 1 else UNDECIDED
    if not isinstance(model, SequentialNet):
        return UNDECIDED
    children = list(model.body.named_children())
    position = [name for name, _ in children].index(layer)
    after = [module for _, module in children[position + 1 :]]
    if _is_linear_map(after):
        return LINEAR
    before = [module for _, module in children[:position]]
    first = all(isinstance(m, nn.Flatten) for m in before)
    if (
        first
        and isinstance(children[position][1], nn.Linear)
        and after
        and isinstance(after[0], Activation)
        and after[0].name == "relu"
        and _is_linear_map(after[1:])
        and model.n_outputs == 1
    ):
        return RELU_CONES
    return UNDECIDED


def _cone_parts(
    model: SequentialNet, layer: str, x: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pre-activations ``z`` (n, m), their Jacobian ``dz/dW`` (n, m, P) and the output
    weights ``r`` (m,) of a relu-cones layer: ``f(x_i) = sum_j r_j relu(z_ij)``.

    ``W`` is the layer's parameters flattened in their order (weight, then bias), the order
    of :class:`~.nonconvex.MarginProblem`.
    """
    children = list(model.body.named_children())
    position = [name for name, _ in children].index(layer)
    inputs = nn.Sequential(*[m for _, m in children[:position]])(x.double())
    module = children[position][1]
    rest = nn.Sequential(*[m for _, m in children[position + 2 :]])
    names = [name for name, _ in module.named_parameters()]
    shapes = [p.shape for p in module.parameters()]
    sizes = [p.numel() for p in module.parameters()]

    def pre_activations(theta: torch.Tensor) -> torch.Tensor:
        parts = torch.split(theta, sizes)
        params = {n: v.reshape(s) for n, v, s in zip(names, parts, shapes, strict=True)}
        return functional_call(module, params, (inputs,))

    theta = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    with torch.no_grad():
        z = pre_activations(theta).cpu().numpy()
        hidden = torch.zeros(1, z.shape[1], dtype=torch.float64, device=inputs.device)
        if float(rest(hidden).abs().max()) != 0.0:
            raise ValueError(
                f"layer {layer}: the layers after it have a bias, so (P_l) is not homogeneous"
            )
    jac = jacrev(pre_activations)(theta).detach().cpu().numpy()
    r = jacrev(lambda h: rest(h)[0, 0])(hidden).detach().cpu().numpy().reshape(-1)
    return z, jac, r


def _cone_value(
    pattern: np.ndarray, jac: np.ndarray, r: np.ndarray, signs: np.ndarray
) -> float | None:
    """``min ||W||^2`` on the cone of ``pattern`` s.t. every margin >= 1 (None: infeasible)."""
    n, m, p = jac.shape
    margins = signs[:, None] * np.einsum("ij,j,ijp->ip", pattern, r, jac)
    cone = ((2.0 * pattern - 1.0)[:, :, None] * jac).reshape(n * m, p)
    g = np.vstack([margins, cone])
    h = np.concatenate([np.ones(n), np.zeros(n * m)])
    try:
        w, _ = least_distance(g, h)
    except ValueError:
        return None
    # NNLS ends a little off the feasible set; a point outside it would understate the value
    if np.min(g @ w - h) < -1e-9 * max(1.0, float(np.abs(g).max())):
        return None
    return float(w @ w)


def _cone_values(
    model: nn.Module, layer: str, problem: MarginProblem, *, zero_tol: float, max_patterns: int
) -> tuple[float | None, float | None, int]:
    """The local and global values of a relu-cones layer and the number of QPs solved.

    Either value is None when its cones are more than ``max_patterns`` (or, for the local
    value, when no QP of the cones around the layer was solved to feasibility).
    """
    z, jac, r = _cone_parts(model, layer, problem.x)  # type: ignore[arg-type]
    signs = 2.0 * problem.y.double().cpu().numpy() - 1.0
    own = (z > 0).astype(float)
    zero = np.abs(z) <= zero_tol * np.abs(z).max()

    def smallest(patterns: Iterable[np.ndarray]) -> tuple[float | None, int]:
        values = [_cone_value(pattern, jac, r, signs) for pattern in patterns]
        return min((v for v in values if v is not None), default=None), len(values)

    def around() -> Iterator[np.ndarray]:
        for free in itertools.product((0.0, 1.0), repeat=int(zero.sum())):
            pattern = own.copy()
            pattern[zero] = free
            yield pattern

    def every() -> Iterator[np.ndarray]:
        for bits in itertools.product((0.0, 1.0), repeat=z.size):
            yield np.array(bits, dtype=float).reshape(z.shape)

    local_value = global_value = None
    solved = 0
    if 2 ** int(zero.sum()) <= max_patterns:
        local_value, count = smallest(around())
        solved += count
    if 2**z.size <= max_patterns:
        global_value, count = smallest(every())
        solved += count
    return local_value, global_value, solved


def per_layer_optimality(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    layers: list[str] | None = None,
    zero_tol: float = 1e-12,
    max_patterns: int = 2**16,
    radius: float = 1e-2,
    n_random: int = 200,
    n_local: int = 2,
    seed: int = 0,
) -> list[LayerOptimality]:
    """Decide, layer by layer, whether ``model`` solves its restricted max-margin problems.

    Parameters
    ----------
    model : torch.nn.Module
        A network that classifies every sample correctly (``q_min > 0``) and is
        1-homogeneous in each layer (no bias past the first layer).
    x, y : torch.Tensor
        Training inputs and class indices.
    layers : list of str, optional
        The layers to decide (default :func:`layer_names`).
    zero_tol : float
        A pre-activation with ``|z| <= zero_tol * max |z|`` counts as zero (both of its
        cones contain the layer).
    max_patterns : int
        Largest number of activation cones enumerated, for the global value and for the
        cones around the layer; beyond it that value of a relu-cones layer is None.
    radius, n_random, n_local, seed
        Settings of the numerical probe (:func:`~.local_probe.local_probe`).

    Returns
    -------
    list of LayerOptimality
        One per layer, in order.

    Examples
    --------
    A width-2 ReLU net on two unit inputs 100 degrees apart, each neuron on its own input
    (construction V5): its first layer is a local but not a global solution of ``(P_1)``.

    >>> from marginlab.measure.references.vardi import construction
    >>> v5 = construction("V5")
    >>> first, second = per_layer_optimality(v5.model, v5.x, v5.y, n_random=50)
    >>> first.is_local(), first.is_global(), round(first.norm_sq, 6), round(first.global_value, 4)
    (True, False, 2.0, 1.2101)
    >>> second.method, second.is_global()
    ('linear', True)
    """
    results = []
    for layer in layers if layers is not None else layer_names(model):
        frozen = only_layer(model, layer)
        problem = MarginProblem(frozen, x, y, order=1.0)
        theta = problem.theta0
        q_min = float(problem.margins(theta).min())
        if not q_min > 0:
            raise ValueError(
                f"model: q_min = {q_min:.3g} <= 0; the per-layer problems start from a "
                "network that classifies every training sample correctly"
            )
        norm_sq = float(theta @ theta) / q_min**2
        method = layer_method(model, layer)
        local_value = global_value = None
        patterns = 0
        if method == LINEAR:
            w, _ = least_distance(problem.jacobian(theta), np.ones(len(problem.margins(theta))))
            local_value = global_value = float(w @ w)
        elif method == RELU_CONES:
            local_value, global_value, patterns = _cone_values(
                frozen, layer, problem, zero_tol=zero_tol, max_patterns=max_patterns
            )
        probe = local_probe(
            frozen, x, y, order=1.0, radius=radius, n_random=n_random, n_local=n_local,
            tol=0.0, seed=seed,
        )  # fmt: skip
        results.append(
            LayerOptimality(
                layer, method, norm_sq, local_value, global_value, probe.improvement, patterns
            )
        )
    return results
