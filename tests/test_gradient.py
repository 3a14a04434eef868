"""The log of the summed loss and its closed-form gradient, against autograd and mpmath."""

import mpmath
import pytest
import torch

from marginlab.losses import get_loss
from marginlab.measure.gradient import grouped_log_loss_sums, log_loss_and_grad, log_loss_sum
from marginlab.measure.margins import pairwise_margins
from marginlab.numerics import log_softplus

mpmath.mp.dps = 50
LOSSES = ["exponential", "logistic", "cross_entropy"]


def _composed(outputs, y, loss):
    return torch.logsumexp(loss.log_per_sample(pairwise_margins(outputs, y)), dim=0)


def _outputs(n, classes, scale, seed, separable=False):
    generator = torch.Generator().manual_seed(seed)
    outputs = torch.randn(n, classes, generator=generator, dtype=torch.float64) * scale
    y = torch.randint(0, max(classes, 2), (n,), generator=generator)
    if separable:  # every margin about `scale`: the loss is near exp(-scale)
        if classes == 1:
            outputs[:, 0] = (2.0 * y - 1.0) * (outputs[:, 0].abs() + scale)
        else:
            outputs[torch.arange(n), y] += 5 * scale
    return outputs, y


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("classes", [1, 2, 10])
@pytest.mark.parametrize(
    "scale, separable",
    [(1e-3, False), (1.0, False), (30.0, False), (1e3, False), (1e3, True), (1e6, True)],
)
def test_value_and_gradient_equal_the_composed_formula(name, classes, scale, separable):
    loss = get_loss(name)
    outputs, y = _outputs(40, classes, scale, seed=classes, separable=separable)
    outputs.requires_grad_(True)
    ours = log_loss_sum(outputs, y, loss)
    reference = _composed(outputs, y, loss)
    (grad,) = torch.autograd.grad(ours, outputs)
    (reference_grad,) = torch.autograd.grad(reference, outputs)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-13, abs=1e-13)
    assert torch.allclose(grad, reference_grad, rtol=1e-10, atol=1e-300)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("shift", [-800.0, -3.0, 0.0, 2.0, 750.0, 2500.0])
def test_gradient_matches_mpmath_differentiation(name, shift):
    # two samples, three classes; the true-class logit is raised by `shift`, so the loss runs
    # from 1e3 to 1e-1000
    rows = [[shift + 0.7, -0.4, 0.9], [0.3, shift - 1.1, 0.2]]
    y = [0, 1]
    loss = get_loss(name)

    def log_total(*flat):
        total = 0
        for n in range(2):
            wrong = [flat[3 * n + j] - flat[3 * n + y[n]] for j in range(3) if j != y[n]]
            inner = mpmath.fsum(mpmath.exp(z) for z in wrong)
            total += inner if name == "exponential" else mpmath.log1p(inner)
        return mpmath.log(total)

    flat = [mpmath.mpf(v) for row in rows for v in row]
    outputs = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    value = log_loss_sum(outputs, torch.tensor(y), loss)
    (grad,) = torch.autograd.grad(value, outputs)
    assert float(value) == pytest.approx(float(log_total(*flat)), rel=1e-13)
    for i in range(6):
        partial = [0] * 6
        partial[i] = 1
        exact = float(mpmath.diff(log_total, flat, tuple(partial)))
        assert grad.view(-1)[i].item() == pytest.approx(exact, rel=1e-10, abs=1e-15), i


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("classes", [1, 3, 10])
@pytest.mark.parametrize("scale, separable", [(1.0, False), (30.0, False), (1e3, True)])
def test_grouped_sums_and_gradient_equal_the_composed_formula_of_each_group(
    name, classes, scale, separable
):
    # three groups of different scales, so that a weight normalized by the wrong group's
    # sum (or by the sum of all groups) is off by orders of magnitude
    loss = get_loss(name)
    groups = [_outputs(12, classes, scale * f, seed=k, separable=separable) for k, f in
              enumerate((1.0, 0.5, 3.0))]  # fmt: skip
    outputs = torch.stack([o for o, _ in groups]).requires_grad_(True)
    y = torch.stack([label for _, label in groups])
    log_losses, margins, sums, grad = grouped_log_loss_sums(outputs, y, loss)
    for k in range(3):
        per_sample = pairwise_margins(outputs[k].detach(), y[k])
        expected = loss.log_per_sample(per_sample)
        # equal up to the last bits that vectorized log1p leaves to the tensor's length
        torch.testing.assert_close(log_losses[k], expected, rtol=1e-14, atol=0)
        assert torch.equal(margins[k], per_sample.amin(dim=1))
    references = torch.stack([_composed(outputs[k], y[k], loss) for k in range(3)])
    (reference_grad,) = torch.autograd.grad(references.sum(), outputs)
    assert torch.allclose(sums, references.detach(), rtol=1e-13, atol=1e-13)
    assert torch.allclose(grad, reference_grad, rtol=1e-10, atol=1e-300)


def test_grouped_gradient_takes_the_outputs_dtype():
    outputs = torch.randn(2, 5, 3, dtype=torch.float32)
    _, _, sums, grad = grouped_log_loss_sums(
        outputs, torch.randint(0, 3, (2, 5)), get_loss("cross_entropy")
    )
    assert sums.dtype == torch.float64 and grad.dtype == torch.float32


def test_float32_outputs_get_a_float32_gradient_from_a_float64_loss():
    outputs, y = _outputs(20, 10, 30.0, seed=0)
    single = outputs.float().requires_grad_(True)
    value = log_loss_sum(single, y, get_loss("cross_entropy"))
    (grad,) = torch.autograd.grad(value, single)
    assert value.dtype == torch.float64 and grad.dtype == torch.float32
    reference = outputs.float().double().requires_grad_(True)
    (reference_grad,) = torch.autograd.grad(
        _composed(reference, y, get_loss("cross_entropy")), reference
    )
    assert torch.allclose(grad.double(), reference_grad, rtol=1e-5, atol=1e-12)


def test_chunked_gradient_equals_one_chunk():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8, bias=False), torch.nn.ReLU(), torch.nn.Linear(8, 3, bias=False)
    ).double()
    params = list(model.parameters())
    x, y = torch.randn(37, 5, dtype=torch.float64), torch.randint(0, 3, (37,))
    loss = get_loss("cross_entropy")
    whole, whole_grads = log_loss_and_grad(model, params, x, y, loss)
    chunked, chunked_grads = log_loss_and_grad(model, params, x, y, loss, chunk_size=10)
    assert chunked == pytest.approx(whole, rel=1e-14)
    for a, b in zip(whole_grads, chunked_grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["binary-mlp", "multiclass-cnn"])
def test_one_pass_evaluation_and_gradient_equal_the_two_passes(kind, dtype):
    from marginlab.measure.gradient import evaluation_and_grad
    from marginlab.measure.margins import evaluate
    from marginlab.models import CNN

    torch.manual_seed(0)
    if kind == "binary-mlp":
        model = torch.nn.Sequential(
            torch.nn.Linear(5, 8, bias=False), torch.nn.ReLU(), torch.nn.Linear(8, 1, bias=False)
        )
        x, y, loss = torch.randn(37, 5), torch.randint(0, 2, (37,)), get_loss("logistic")
    else:
        model = CNN("conv3x3-4,maxpool,fc12,fc3", (1, 8, 8), seed=0)
        x, y, loss = torch.rand(37, 1, 8, 8), torch.randint(0, 3, (37,)), get_loss("cross_entropy")
    model, x = model.to(dtype), x.to(dtype)
    params = list(model.parameters())
    for chunk in (37, 10):
        evaluation, log_loss, grads = evaluation_and_grad(model, params, x, y, loss, chunk)
        expected = evaluate(model, x, y, loss, chunk)
        expected_log_loss, expected_grads = log_loss_and_grad(model, params, x, y, loss, chunk)
        assert torch.equal(evaluation.log_losses, expected.log_losses)
        assert torch.equal(evaluation.margins, expected.margins)
        assert log_loss == expected_log_loss
        for a, b in zip(grads, expected_grads, strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize(
    "u",
    [
        -1e6,
        -2000.0,
        -745.5,
        -700.0,
        -20.0001,
        -20.0,
        -19.9999,
        -3.0,
        0.0,
        0.5,
        39.9999,
        40.0,
        40.0001,
        700.0,
        1e3,
    ],
)
def test_the_forward_log_softplus_matches_mpmath_on_both_sides_of_its_branches(u):
    exact = mpmath.log(mpmath.log1p(mpmath.exp(mpmath.mpf(u))))
    value = log_softplus(torch.tensor([u], dtype=torch.float64)).item()
    assert value == pytest.approx(float(exact), rel=1e-14, abs=1e-300)
