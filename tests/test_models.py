"""The model zoo: orders and layer degrees checked numerically in float64, specs, seeds, init."""

import functools
import math
import re

import pytest
import torch
from torch import nn
from torch.func import functional_call

from marginlab.models import (
    ACTIVATIONS,
    CNN,
    MLP,
    MNIST_CNN_SPEC,
    MODEL_KINDS,
    DeepLinear,
    DiagonalLinear,
    Linear,
    TwoLayer,
    build_model,
    check_homogeneity,
    he_normal_,
    make_activation,
    parse_spec,
    vgg16,
)

SMALL_SPEC = "conv3x3-4,maxpool,conv5x5-6,avgpool,fc5,fc3"

# name -> (factory taking a bias mode, input shape); bias=None: the model has no bias option.
ZOO = {
    "mlp_relu": (lambda bias: MLP(6, [5, 4], 3, bias=bias), (6,)),
    "mlp_leaky": (lambda bias: MLP(6, [5], 2, activation="leaky_relu", bias=bias), (6,)),
    "mlp_relu_k": (lambda bias: MLP(6, [5, 4], 1, activation="relu_k", k=2, bias=bias), (6,)),
    "cnn_small": (lambda bias: CNN(SMALL_SPEC, (2, 8, 8), bias=bias), (2, 8, 8)),
    "cnn_relu_k": (
        lambda bias: CNN(
            "conv3x3-3,maxpool,fc4,fc2", (1, 6, 6), bias=bias, activation="relu_k", k=2
        ),
        (1, 6, 6),
    ),
    "mnist_cnn": (lambda bias: CNN(MNIST_CNN_SPEC, (1, 28, 28), bias=bias), (1, 28, 28)),
    "vgg16": (lambda bias: vgg16(bias=bias), (3, 32, 32)),
    "two_layer": (lambda bias: TwoLayer(6, 7, 2, bias=bias), (6,)),
    "two_layer_relu_k": (lambda bias: TwoLayer(6, 7, activation="relu_k", k=3, bias=bias), (6,)),
    "two_layer_output": (lambda bias: TwoLayer(6, 7, train="output", bias=bias), (6,)),
    "linear": (lambda bias: Linear(6, 2), (6,)),
    "deep_linear": (lambda bias: DeepLinear(6, depth=3, width=4), (6,)),
    "diagonal_linear": (lambda bias: DiagonalLinear(6, depth=3), (6,)),
}
BIASED = {
    "mlp_relu",
    "mlp_leaky",
    "mlp_relu_k",
    "cnn_small",
    "cnn_relu_k",
    "mnist_cnn",
    "vgg16",
    "two_layer",
    "two_layer_relu_k",
    "two_layer_output",
}
HOMOGENEOUS_CASES = [(name, "none") for name in ZOO] + [(name, "first") for name in sorted(BIASED)]


def _batch(shape, seed=0):
    # Two samples for the big image nets keep the whole file fast.
    n = 2 if math.prod(shape) > 500 else 4
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, dtype=torch.float64, generator=generator)


def _prepare(model):
    """float64 model whose biases (and diagonal weights) are generic, nonzero values."""
    model = model.double()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.fill_(0.1)
            elif isinstance(model, DiagonalLinear):  # its init makes f identically 0
                p.add_(torch.rand(p.shape, dtype=p.dtype, generator=generator))
    return model


@functools.cache  # shared by several tests, which never modify it (functional_call)
def _build(name, bias="none"):
    factory, shape = ZOO[name]
    return _prepare(factory(bias)), _batch(shape)


def _scaled_output(model, x, params, c):
    """f with the parameters in ``params`` (by identity) multiplied by ``c``."""
    scaled = {n: c * p.detach() for n, p in model.named_parameters() if any(p is q for q in params)}
    return functional_call(model, scaled, (x,))


@pytest.mark.parametrize(("name", "bias"), HOMOGENEOUS_CASES)
def test_zoo_models_are_homogeneous_of_their_declared_order(name, bias):
    model, x = _build(name, bias)
    report = check_homogeneity(model, x)
    assert report.declared_order == model.homogeneity_order is not None
    assert report.euler_error < 1e-10, str(report)
    assert report.scale_error < 1e-10, str(report)
    assert abs(report.measured_order - report.declared_order) < 1e-6, str(report)
    assert report.is_homogeneous
    assert sum(g.degree for g in model.layer_groups()) == model.homogeneity_order


@pytest.mark.parametrize(("name", "bias"), HOMOGENEOUS_CASES)
def test_scaling_one_layer_group_scales_the_output_by_its_degree(name, bias):
    model, x = _build(name, bias)
    with torch.no_grad():
        base = model(x)
        for group in model.layer_groups():
            scaled = _scaled_output(model, x, group.params, 2.0)
            expected = 2.0**group.degree * base
            error = float((scaled - expected).norm() / expected.norm())
            assert error < 1e-10, (group.name, group.degree, error)


def test_layer_groups_follow_forward_order_and_hold_only_the_first_bias():
    model = MLP(4, [5, 6], 2, bias="all")
    groups = model.layer_groups()
    assert [g.name for g in groups] == ["fc1", "fc2", "fc3"]
    assert groups[0].params == (model.body.fc1.weight, model.body.fc1.bias)
    assert groups[1].params == (model.body.fc2.weight,)
    assert groups[2].params == (model.body.fc3.weight,)
    assert [g.degree for g in groups] == [1.0, 1.0, 1.0]


NON_HOMOGENEOUS = {
    "mlp_bias_all": lambda: MLP(6, [5, 4], 3, bias="all"),
    "cnn_bias_all": lambda: CNN(SMALL_SPEC, (2, 8, 8), bias="all"),
    "two_layer_bias_all": lambda: TwoLayer(6, 7, bias="all"),
    **{
        f"mlp_{act}": (lambda act=act: MLP(6, [5, 4], 2, activation=act))
        for act in ("softplus", "gelu", "silu", "leaky_softplus")
    },
    **{
        f"two_layer_{act}": (lambda act=act: TwoLayer(6, 7, activation=act, bias="first"))
        for act in ("softplus", "gelu", "silu", "leaky_softplus")
    },
}


@pytest.mark.parametrize("name", sorted(NON_HOMOGENEOUS))
def test_biased_and_smooth_models_are_not_homogeneous(name):
    model = _prepare(NON_HOMOGENEOUS[name]())
    x = _batch((2, 8, 8) if "cnn" in name else (6,))
    assert model.homogeneity_order is None
    report = check_homogeneity(model, x)
    assert report.declared_order is None
    assert not report.is_homogeneous
    assert report.euler_error > 1e-3, str(report)
    assert "NOT homogeneous" in str(report)


def test_a_frozen_first_layer_makes_output_training_linear_whatever_the_bias_or_activation():
    # f = (1/m) B phi(A x + a) + c is linear in the trainable (B, c) when A, a are frozen.
    for model in (
        TwoLayer(6, 7, train="output", bias="all"),
        TwoLayer(6, 7, train="output", activation="gelu"),
    ):
        model = _prepare(model)
        assert model.homogeneity_order == 1.0
        assert check_homogeneity(model, _batch((6,))).is_homogeneous


def test_output_only_two_layer_has_order_one_and_only_the_output_group():
    model = TwoLayer(5, 8, activation="relu_k", k=3, train="output", bias="first")
    assert model.homogeneity_order == 1.0
    assert [g.name for g in model.layer_groups()] == ["output"]
    assert not model.body.hidden.weight.requires_grad and not model.body.hidden.bias.requires_grad
    assert model.output.weight.requires_grad
    assert TwoLayer(5, 8, activation="relu_k", k=3).homogeneity_order == 4.0


def test_relu_k_orders_follow_the_recursion():
    # f = W3 phi(W2 phi(W1 x)), phi = relu^2: order 1 -> 2 -> 3 -> 6 -> 7.
    mlp = MLP(4, [5, 5], 1, activation="relu_k", k=2)
    assert mlp.homogeneity_order == 7.0
    assert [g.degree for g in mlp.layer_groups()] == [4.0, 2.0, 1.0]
    # conv 1 -> phi 2 -> pool 2 -> fc 3 -> phi 6 -> fc 7
    cnn = CNN("conv3x3-3,maxpool,fc4,fc2", (1, 6, 6), activation="relu_k", k=2)
    assert cnn.homogeneity_order == 7.0
    # (1/m) b relu^3(a.x): order 3 + 1, degrees a: 3, b: 1
    two = TwoLayer(3, 4, activation="relu_k", k=3)
    assert (two.homogeneity_order, [g.degree for g in two.layer_groups()]) == (4.0, [3.0, 1.0])
    assert MLP(4, [5], 1, activation="relu_k", k=3, bias="all").homogeneity_order is None


def test_orders_of_the_reference_architectures():
    assert CNN(MNIST_CNN_SPEC, (1, 28, 28), bias="first").homogeneity_order == 4.0
    assert DeepLinear(3, [4, 4, 4]).homogeneity_order == 4.0
    assert DiagonalLinear(3, depth=5).homogeneity_order == 5.0


@pytest.mark.parametrize(
    ("bias", "mnist", "vgg"),
    # Lyu & Li's summary lists 3,240,768 and 14,715,648 as "no-bias": those are the counts
    # with the first-layer bias (their "without bias" mode); without any bias it is 32 / 64 less.
    [
        ("none", 3_240_736, 14_715_584),
        ("first", 3_240_768, 14_715_648),
        ("all", 3_241_866, 14_719_818),
    ],
)
def test_parameter_counts_of_the_lyu_li_architectures(bias, mnist, vgg):
    def count(model):
        return sum(p.numel() for p in model.parameters())

    mnist_cnn = _build("mnist_cnn", bias)[0]
    assert count(mnist_cnn) == mnist
    assert f"{mnist:,} params" in mnist_cnn.describe()
    vgg_net = _build("vgg16", bias)[0]
    assert count(vgg_net) == vgg
    assert sum(isinstance(m, nn.Conv2d) for m in vgg_net.modules()) == 13


def test_describe_is_one_informative_line():
    text = CNN(MNIST_CNN_SPEC, (1, 28, 28), bias="first").describe()
    assert text == (
        "cnn conv5x5-32,maxpool,conv3x3-64,maxpool,fc1024,fc10 | bias=first | relu | L=4 "
        "| 3,240,768 params"
    )
    assert "L=none" in MLP(3, [4], 1, activation="gelu").describe()
    assert "(8 trainable)" in TwoLayer(3, 8, train="output").describe()


@pytest.mark.parametrize(
    ("spec", "bad"),
    [
        ("conv3x3,fc2", "conv3x3"),
        ("conv3x3-0,fc2", "conv3x3-0"),
        ("pool,fc2", "pool"),
        ("fc", "fc"),
        ("conv3x3-4,fc10x", "fc10x"),
        ("conv3x3-4,maxpool", "maxpool"),
        ("fc10,conv3x3-4,fc2", "conv3x3-4"),
        ("conv3x3-4,maxpool8,fc2", "maxpool8"),
        ("conv3x3-4,,fc2", ""),
    ],
)
def test_bad_spec_tokens_are_named(spec, bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        CNN(spec, (1, 4, 4))


def test_spec_grammar_is_in_the_message_and_whitespace_is_allowed():
    with pytest.raises(ValueError, match=r"conv\{kh\}x\{kw\}-\{channels\}"):
        parse_spec("dense10")
    assert [t.text for t in parse_spec(" conv3x3-8 , maxpool3 ,fc2")] == [
        "conv3x3-8",
        "maxpool3",
        "fc2",
    ]
    assert parse_spec("avgpool4,fc1")[0].kernel == (4, 4)


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda: MLP(0, [3], 1), ["input_dim", "0"]),
        (lambda: MLP(3, [3, -1], 1), ["hidden", "-1"]),
        (lambda: MLP(3, 5, 1), ["hidden", "5"]),
        (lambda: MLP(3, [3], 1, bias="some"), ["bias", "'some'", "'first'"]),
        (lambda: MLP(3, [3], 1, activation="tanh"), ["activation", "'tanh'", "'relu'"]),
        (lambda: MLP(3, [3], 1, k=2), ["'relu'", "k"]),
        (lambda: MLP(3, [3], 1, activation="relu_k", k=0.5), ["k", "0.5"]),
        (lambda: MLP(3, [3], 1, seed="a"), ["seed", "'a'"]),
        (lambda: CNN("fc2", (1, 28)), ["input_shape", "(1, 28)"]),
        (lambda: TwoLayer(3, 4, train="first"), ["train", "'first'", "'output'"]),
        (lambda: TwoLayer(3, 0), ["width", "0"]),
        (lambda: DeepLinear(3, [2], depth=2), ["hidden", "depth"]),
        (lambda: DeepLinear(3, depth=3), ["width", "None"]),
        (lambda: DiagonalLinear(3, init_scale=-1.0), ["init_scale", "-1.0"]),
        (lambda: make_activation("leaky_softplus", c=2.0), ["c", "2.0"]),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(build, names):
    with pytest.raises(ValueError) as error:
        build()
    for name in names:
        assert name in str(error.value)


def _same_parameters(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(
    "factory",
    [
        lambda seed: MLP(5, [7], 2, seed=seed),
        lambda seed: CNN(SMALL_SPEC, (2, 8, 8), seed=seed),
        lambda seed: TwoLayer(5, 9, seed=seed),
        lambda seed: DeepLinear(5, depth=3, width=4, seed=seed),
    ],
)
def test_seed_fixes_the_weights_and_leaves_the_global_rng_alone(factory):
    state = torch.random.get_rng_state()
    assert _same_parameters(factory(3), factory(3))
    assert not _same_parameters(factory(3), factory(4))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_he_normal_matches_tf_truncated_variance_scaling():
    fan_in = 1000
    w = he_normal_(torch.empty(2000, fan_in), fan_in, torch.Generator().manual_seed(0))
    target = math.sqrt(2 / fan_in)
    assert abs(float(w.std()) / target - 1) < 0.02
    assert float(w.abs().max()) <= 2 * target / 0.87962566103423978
    assert float(w.abs().max()) > 1.9 * target / 0.87962566103423978  # really truncated near 2s
    layer = CNN("conv3x3-2,fc3", (1, 4, 4), bias="all").body.conv1
    assert torch.all(layer.bias == 0)


def test_check_homogeneity_on_a_plain_module_measures_the_order_and_keeps_parameters():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5, bias=False), nn.ReLU(), nn.Linear(5, 2, bias=False))
    net = net.double()
    before = [p.detach().clone() for p in net.parameters()]
    report = check_homogeneity(net, torch.randn(4, 3))
    assert report.declared_order is None
    assert abs(report.measured_order - 2.0) < 1e-6
    assert report.is_homogeneous and report.euler_error < 1e-12
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before, strict=True))
    wrong = check_homogeneity(net, torch.randn(4, 3), order=3)
    assert wrong.declared_order == 3.0 and not wrong.is_homogeneous
    assert wrong.euler_error == pytest.approx(1 / 3) and wrong.scale_error == pytest.approx(0.5)


class _OldStyleRelu(torch.autograd.Function):
    """ReLU with a backward of the old style (no setup_context, no jvp): forward mode and
    vmap refuse it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0)


class _OldStyleReluModule(nn.Module):
    def forward(self, x):
        return _OldStyleRelu.apply(x)


def test_check_homogeneity_of_a_module_forward_mode_refuses_matches_the_plain_module():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 5, bias=False), nn.ReLU(), nn.Linear(5, 2, bias=False))
    plain = plain.double()
    custom = nn.Sequential(plain[0], _OldStyleReluModule(), plain[2])
    x = torch.randn(4, 3)
    with pytest.raises(RuntimeError):  # the case this covers: jvp cannot run it
        torch.func.jvp(lambda t: custom(t), (x.double(),), (x.double(),))
    report = check_homogeneity(custom, x)
    assert abs(report.measured_order - 2.0) < 1e-6
    assert report.is_homogeneous and report.euler_error < 1e-12
    wrong = check_homogeneity(custom, x, order=3)
    reference = check_homogeneity(plain, x, order=3)
    assert wrong.euler_error == pytest.approx(reference.euler_error, rel=1e-12)
    assert not wrong.is_homogeneous


def test_check_homogeneity_refuses_a_model_without_trainable_parameters():
    net = nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="trainable"):
        check_homogeneity(net, torch.randn(3, 2))


@pytest.mark.parametrize(
    ("name", "degree"),
    [
        ("relu", 1.0),
        ("leaky_relu", 1.0),
        ("identity", 1.0),
        ("relu_k", 3.0),
        ("softplus", None),
        ("gelu", None),
        ("silu", None),
        ("leaky_softplus", None),
    ],
)
def test_activation_degrees_hold_numerically(name, degree):
    act = make_activation(name)
    assert act.degree == degree and name in ACTIVATIONS
    z = torch.linspace(-3, 3, 13, dtype=torch.float64)
    ratio_error = float((act(2 * z) - 2.0**act.scale_degree * act(z)).abs().max())
    assert (ratio_error < 1e-12) == (degree is not None)


def test_leaky_softplus_is_cai_et_al_phi_c():
    z = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    expected = 0.5 * z + 0.5 * torch.log1p(torch.exp(z))
    assert torch.allclose(make_activation("leaky_softplus")(z), expected)
    assert torch.allclose(
        make_activation("leaky_softplus", c=0.25)(z), 0.25 * z + 0.75 * torch.log1p(torch.exp(z))
    )
    assert make_activation("leaky_relu")(torch.tensor([-1.0])).item() == pytest.approx(-0.01)


def test_unknown_activation_lists_the_allowed_names():
    with pytest.raises(ValueError) as error:
        make_activation("tanh")
    assert all(repr(name) in str(error.value) for name in ACTIVATIONS)


def test_linear_predictors_expose_their_end_to_end_vector():
    x = _batch((6,))
    deep = DeepLinear(6, [4, 3], 2).double()
    assert torch.allclose(deep(x), x @ deep.end_to_end().T)
    diagonal = DiagonalLinear(6, depth=2, init_scale=0.3).double()
    assert torch.equal(diagonal(x), torch.zeros(4, 1, dtype=torch.float64))
    with torch.no_grad():
        diagonal.u.add_(1.0)
    expected = torch.full((6,), 1.3**2 - 0.3**2, dtype=torch.float64)
    assert torch.allclose(diagonal.end_to_end(), expected)
    assert torch.allclose(diagonal(x), x @ diagonal.end_to_end().unsqueeze(1))
    assert torch.equal(Linear(6, 2).end_to_end(), Linear(6, 2).body.fc1.weight)


def test_build_model_builds_every_kind():
    configs = {
        "mlp": {"hidden": [8], "bias": "first"},
        "cnn": {"spec": "conv3x3-4,maxpool,fc3", "bias": "first", "activation": "relu"},
        "vgg16": {"bias": "first"},
        "linear": {},
        "deep_linear": {"depth": 3, "width": 4},
        "diagonal_linear": {"depth": 2, "init_scale": 0.5},
        "two_layer": {"width": 16, "activation": "relu_k", "k": 2, "train": "both"},
    }
    assert set(configs) == set(MODEL_KINDS)
    orders = {
        "mlp": 2,
        "cnn": 2,
        "vgg16": 14,
        "linear": 1,
        "deep_linear": 3,
        "diagonal_linear": 2,
        "two_layer": 3,
    }
    for kind, config in configs.items():
        shape = (3, 32, 32) if kind in ("cnn", "vgg16") else (1, 4, 4)
        n_outputs = 1 if kind == "diagonal_linear" else 3
        model = build_model({"kind": kind, "seed": 1, **config}, shape, n_outputs)
        assert model(torch.zeros(2, *shape)).shape == (2, n_outputs), kind
        assert model.homogeneity_order == orders[kind], kind


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"kind": "resnet"}, ["kind", "'resnet'", "mlp", "two_layer"]),
        ({"kind": "mlp", "hidden": [3], "depth": 2}, ["depth", "hidden", "activation", "seed"]),
        ({"kind": "cnn"}, ["spec"]),
        ({"kind": "mlp", "hidden": [3], "input_dim": 5}, ["input_dim", "allowed keys"]),
        ({"kind": "diagonal_linear"}, ["n_outputs=3"]),
        ({"kind": "two_layer", "width": 4, "negative_slope": 0.1}, ["negative_slope", "'relu'"]),
    ],
)
def test_build_model_errors_name_the_key(config, names):
    with pytest.raises(ValueError) as error:
        build_model(config, (1, 4, 4), 3)
    for name in names:
        assert name in str(error.value)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_builds_on_the_meta_device_with_the_shapes_of_a_real_build(name):
    # what the memory check counts before it allocates anything
    factory, _ = ZOO[name]
    bias = "first" if name in BIASED else "none"
    real = factory(bias)
    with torch.device("meta"):
        probe = factory(bias)
    assert all(p.is_meta for p in probe.parameters())
    assert [(n, p.shape) for n, p in probe.named_parameters()] == [
        (n, p.shape) for n, p in real.named_parameters()
    ]
