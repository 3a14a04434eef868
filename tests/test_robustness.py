"""Adversarial robustness: verified attack distances, the certified margin bound, the CLI."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from marginlab import load_run, train
from marginlab.cli import main
from marginlab.measure.attacks import AttackResult, run_attack
from marginlab.measure.lipschitz import _conv_norm_bound, certified_radius, lipschitz_constants
from marginlab.measure.margins import pairwise_margins
from marginlab.models import CNN, build_model
from marginlab.results.robustness import (
    RobustnessReport,
    attack_along_training,
    paired_changes,
)

# Few C&W steps: enough to converge on these small nets, and the test stays fast.
FAST_CW = {"binary_search_steps": 6, "steps": 500}
L2_ATTACKS = {"cw": FAST_CW, "deepfool": None, "fmn": None}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny tensors on shared cores: threads only contend (a 7x slowdown measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, one_thread):
    config = {
        "name": "robust-mlp",
        "seed": 0,
        "loss": "cross_entropy",
        "data": {"name": "digits", "classes": [0, 1, 2]},
        "model": {"kind": "mlp", "hidden": [16]},
        "train": {"schedule": "loss_based", "max_epochs": 300, "target_log10_loss": None},
        "log": {"every": 20, "checkpoint_decades": 2},
    }
    return train(config, tmp_path_factory.mktemp("r") / "run", progress=False)


@pytest.fixture(scope="module")
def samples(run_dir):
    run = load_run(run_dir)
    x, y = run.load_data("train")
    return run.load_model("last"), x[::10][:50], y[::10][:50]


@pytest.fixture(scope="module")
def l2_results(samples):
    model, x, y = samples
    return {
        name: run_attack(model, x, y, attack=name, options=options, progress=False)
        for name, options in L2_ATTACKS.items()
    }


def random_cnn():
    """A random-weight CNN (max pool, first-layer bias) and digits-like inputs that it
    classifies 'correctly' by construction: the labels are its own predictions."""
    model = CNN("conv3x3-4,maxpool,conv3x3-6,fc12,fc3", (1, 8, 8), bias="first", seed=1)
    model = model.double().eval()
    x = torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def assert_verified(result: AttackResult, model, x, y, norm="l2"):
    found = result.success & ~result.misclassified
    assert found.any()
    adversarials = result.adversarials[found]
    assert adversarials.min() >= 0 and adversarials.max() <= 1
    with torch.no_grad():
        margins = pairwise_margins(model(adversarials), y[found]).min(1).values
    assert (margins <= 0).all()
    order = 2 if norm == "l2" else math.inf
    recomputed = (adversarials - x[found]).flatten(1).norm(p=order, dim=1).numpy()
    np.testing.assert_allclose(result.distances[found], recomputed, rtol=1e-12)
    # where nothing was found the input itself is returned, at distance inf
    assert torch.equal(result.adversarials[~result.success], x[~result.success])


def test_every_l2_adversarial_example_is_verified(samples, l2_results):
    model, x, y = samples
    for result in l2_results.values():
        assert result.success.all(), result.attack
        assert_verified(result, model, x, y)


def test_cw_deepfool_and_fmn_agree_within_a_factor_1_5(samples):
    # DeepFool meets the box only by clipping its steps, so where most pixels sit on a face
    # of the box (digits are mostly 0) it overshoots C&W by up to 1.6x; the three attacks
    # are compared on the same images moved into the interior, labelled by the model.
    model, x, _ = samples
    x = 0.2 + 0.6 * x
    with torch.no_grad():
        y = model(x).argmax(1)
    options = {"cw": {"binary_search_steps": 9, "steps": 1000}, "deepfool": None, "fmn": None}
    results = [
        run_attack(model, x, y, attack=name, options=opts, progress=False)
        for name, opts in options.items()
    ]
    distances = np.stack([r.distances for r in results])
    assert np.isfinite(distances).all() and (distances > 0).all()
    ratio = distances.max(axis=0) / distances.min(axis=0)
    assert (ratio <= 1.5).mean() >= 0.9


def test_lower_bound_never_exceeds_an_attack_distance(samples, l2_results):
    model, x, y = samples
    lower = certified_radius(model, x, y)
    closest = np.min([r.distances for r in l2_results.values()], axis=0)
    assert (lower > 0).all()
    assert (lower <= closest).all()

    cnn, xc, yc = random_cnn()
    lower = certified_radius(cnn, xc, yc)
    for name in ("deepfool", "fmn"):
        result = run_attack(cnn, xc, yc, attack=name, progress=False)
        assert_verified(result, cnn, xc, yc)
        assert (lower <= result.distances).all()
    linf = run_attack(cnn, xc, yc, attack="fmn", norm="linf", progress=False)
    assert_verified(linf, cnn, xc, yc, norm="linf")
    assert (certified_radius(cnn, xc, yc, norm="linf") <= linf.distances).all()


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_conv_bound_is_above_the_power_iteration_norm():
    generator = torch.Generator().manual_seed(0)
    for kernel, padding, stride in [(3, "same", 1), (4, "same", 1), (3, "valid", 1), (5, 1, 2)]:
        conv = torch.nn.Conv2d(2, 3, kernel, padding=padding, stride=stride, bias=False).double()
        u = torch.randn(1, 2, 9, 9, dtype=torch.float64, generator=generator)
        for _ in range(300):  # power iteration on conv^T conv, through autograd
            u.requires_grad_()
            out = conv(u)
            (u,) = torch.autograd.grad(out, u, out)
            u = u / u.norm()
        with torch.no_grad():
            estimate = float(conv(u).norm())
        bound = _conv_norm_bound(conv, (2, 9, 9))
        assert estimate <= bound * (1 + 1e-9)
        if stride == 1:  # the bound ignores what a stride drops, so it is tight only here
            assert bound <= 1.3 * estimate


def test_lipschitz_constants_of_a_linear_model_are_exact():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3, bias=False)).double()
    weight = net[1].weight.detach()
    expected = (weight[:, None] - weight[None, :]).norm(dim=2)
    torch.testing.assert_close(lipschitz_constants(net, (1, 2, 2)), expected)
    # for a linear model the bound is the exact distance to the nearest pairwise boundary
    x = torch.rand(5, 1, 2, 2, dtype=torch.float64)
    y = net(x).argmax(1)
    result = run_attack(net, x, y, attack="deepfool", progress=False, bounds=(-10.0, 10.0))
    np.testing.assert_allclose(certified_radius(net, x, y), result.distances, rtol=0.03)


def test_misclassified_samples_have_distance_zero(samples):
    model, x, y = samples
    wrong = y.clone()
    wrong[:5] = (y[:5] + 1) % 3
    result = run_attack(model, x[:10], wrong[:10], attack="deepfool", progress=False)
    assert result.misclassified.tolist() == [True] * 5 + [False] * 5
    assert (result.distances[:5] == 0).all() and (result.distances[5:] > 0).all()
    assert (certified_radius(model, x[:10], wrong[:10])[:5] == 0).all()


def test_robust_accuracy_is_non_increasing_in_eps(samples, l2_results):
    model, x, y = samples
    grid = np.linspace(0, 3, 61)
    for result in l2_results.values():
        accuracy = result.robust_accuracy(grid)
        assert accuracy[0] == 1.0 and (np.diff(accuracy) <= 0).all()
    eps = (0.02, 0.05, 0.1, 0.2)
    pgd = run_attack(
        model,
        x[:20],
        y[:20],
        attack="pgd",
        norm="linf",
        eps=eps,
        options={"restarts": 2, "steps": 20},
        progress=False,
    )
    assert_verified(pgd, model, x[:20], y[:20], norm="linf")
    assert (pgd.distances[pgd.success] <= max(eps) + 1e-12).all()
    assert (np.diff(pgd.robust_accuracy(eps)) <= 0).all()
    with pytest.raises(ValueError, match="eps: pgd ran at eps <= 0.2"):
        pgd.robust_accuracy([0.5])


def test_binary_single_output_model_is_attacked_as_two_logits():
    model = build_model({"kind": "mlp", "hidden": [8], "seed": 2}, (1, 8, 8), 1).double().eval()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        y = (model(x)[:, 0] > 0).long()
    result = run_attack(model, x, y, attack="fmn", progress=False)
    assert result.success.all() and (result.distances > 0).all()
    assert_verified(result, model, x, y)
    assert (certified_radius(model, x, y) <= result.distances).all()


def test_attack_does_not_touch_the_global_rng_or_the_models_mode(samples):
    model, x, y = samples
    model.train()
    state = torch.get_rng_state()

    def attack():
        return run_attack(
            model,
            x[:8],
            y[:8],
            attack="pgd",
            norm="linf",
            progress=False,
            eps=[0.05, 0.1],
            options={"restarts": 1, "steps": 10},
        )

    first, again = attack(), attack()
    assert torch.equal(state, torch.get_rng_state())
    assert model.training
    model.eval()
    np.testing.assert_array_equal(first.distances, again.distances)


def test_errors_name_the_argument(samples, run_dir):
    model, x, y = samples
    with pytest.raises(ValueError, match="norm: expected one of"):
        run_attack(model, x, y, norm="l1")
    with pytest.raises(ValueError, match="attack: 'cw' does not attack the linf norm"):
        run_attack(model, x, y, norm="linf", attack="cw")
    with pytest.raises(ValueError, match="options: 'step' is not an option of cw"):
        run_attack(model, x, y, options={"step": 10})
    with pytest.raises(ValueError, match=r"x: inputs must lie in the box"):
        run_attack(model, x * 2, y)
    with pytest.raises(ValueError, match="checkpoint: 'best' is not a checkpoint"):
        attack_along_training(run_dir, ["best"])
    with pytest.raises(ValueError, match="model: no Lipschitz bound for layer"):
        certified_radius(torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(2, 2)), x, y)


def test_cli_writes_json_csv_png_and_the_table_matches_the_json(run_dir, capsys):
    run = load_run(run_dir)
    levels = [c.reason.removeprefix("loss<") for c in run.checkpoints if c.reason != "init"]
    levels = [level for level in levels if level != "last"]
    assert len(levels) >= 2, "the run should keep several loss-level checkpoints"
    checkpoints = [*levels, "last", levels[0]]
    argv = ["attack", str(run_dir), "--checkpoints", ",".join(checkpoints), "--n", "40"]
    argv += ["--attack", "fmn", "--eps", "0.2,0.5,1", "--option", "steps=100"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    stem = run_dir / "robustness-l2-fmn-train"
    paths = {suffix: stem.with_suffix(f".{suffix}") for suffix in ("json", "csv", "png")}
    assert all(path.exists() and path.stat().st_size > 0 for path in paths.values())
    payload = json.loads(paths["json"].read_text())
    assert payload["format"] == "marginlab.robustness" and payload["version"] == 2
    report = RobustnessReport.load(paths["json"])
    stored = report.table()
    table = pd.read_csv(paths["csv"], dtype={"checkpoint": str})
    assert table["checkpoint"].tolist() == checkpoints
    pd.testing.assert_frame_equal(table, stored, check_dtype=False)
    for checkpoint in checkpoints:
        assert checkpoint in printed
    assert len(report.indices) == 40
    # the same samples for every checkpoint; a repeated checkpoint is the same result
    assert all(len(c.distances) == 40 for c in report.checkpoints)
    first, repeat = report.checkpoints[0], report.checkpoints[-1]
    assert first.epoch == repeat.epoch
    np.testing.assert_array_equal(first.distances, repeat.distances)
    # each checkpoint against the next, recounted from the stored distances
    paired = pd.DataFrame(payload["paired"])
    assert len(paired) == (len(checkpoints) - 1) * 4
    assert "from each checkpoint to the next" in printed
    by_label = {c["checkpoint"]: c["distances"] for c in payload["checkpoints"]}
    for record in payload["paired"]:
        d0, d1 = (
            np.array([np.inf if v is None else v for v in by_label[label]])
            for label in (record["from"], record["to"])
        )
        if record["at"] == "distance":
            up, down = (d1 > d0).sum(), (d1 < d0).sum()
        else:
            e = float(record["at"].removeprefix("eps="))
            up, down = ((d1 > e) & (d0 <= e)).sum(), ((d0 > e) & (d1 <= e)).sum()
        assert (record["more_robust"], record["less_robust"]) == (up, down)
    last_level = next(c for c in report.checkpoints if c.checkpoint == levels[-1])
    assert (last_level.lower_bounds <= last_level.distances).all()
    assert all(table["accuracy"] == 1.0)


def test_best_keeps_each_samples_closest_verified_example(samples, l2_results):
    model, x, y = samples
    options = {f"cw.{key}": value for key, value in FAST_CW.items()}
    best = run_attack(model, x, y, attack="best", options=options, progress=False)
    each = np.stack([l2_results[name].distances for name in ("cw", "deepfool", "fmn")])
    np.testing.assert_array_equal(best.distances, each.min(axis=0))
    assert_verified(best, model, x, y)
    for i, name in enumerate(best.found_by):
        assert best.distances[i] == l2_results[name].distances[i]
    assert len(set(best.found_by)) > 1  # no single attack wins everywhere here
    with pytest.raises(ValueError, match="cw.steps=1000"):
        run_attack(model, x, y, attack="best", options={"steps": 10}, progress=False)


def exact_sign_test(up: int, down: int) -> float:
    """Two-sided exact binomial test at 1/2, summed from its definition."""
    moved = up + down
    tail = sum(math.comb(moved, k) for k in range(min(up, down) + 1)) / 2**moved
    return min(1.0, 2 * tail)


def test_paired_changes_count_the_samples_that_moved_and_test_them_exactly():
    rng = np.random.default_rng(3)
    before = rng.uniform(0.0, 1.0, 400)
    # most samples move out, some in, some stay; inf is a sample no attack broke
    after = before * rng.choice([1.1, 0.95, 1.0], size=400, p=[0.5, 0.3, 0.2])
    before[:5], after[:3] = np.inf, np.inf
    table = paired_changes({"early": before, "late": after, "same": after}, eps=[0.3, 0.6])
    assert table[["from", "to", "at"]].values.tolist() == [
        ["early", "late", "distance"],
        ["early", "late", "eps=0.3"],
        ["early", "late", "eps=0.6"],
        ["late", "same", "distance"],
        ["late", "same", "eps=0.3"],
        ["late", "same", "eps=0.6"],
    ]
    rows = table.to_dict(orient="records")
    # inf -> inf and x -> x do not move; x -> inf moved out, inf -> x moved in
    assert rows[0]["more_robust"] == int((after > before).sum()) > 150
    assert rows[0]["less_robust"] == int((after < before).sum()) > 100
    for row, e in zip(rows[1:3], [0.3, 0.6], strict=True):
        gained = int(((before <= e) & (after > e)).sum())
        lost = int(((before > e) & (after <= e)).sum())
        assert (row["more_robust"], row["less_robust"]) == (gained, lost)
        assert gained + lost > 0
    for row in rows[:3]:
        assert row["p_value"] == pytest.approx(
            exact_sign_test(row["more_robust"], row["less_robust"]), rel=1e-9, abs=1e-300
        )
    assert rows[0]["p_value"] < 1e-3  # 5:3 over hundreds of samples is no accident
    assert all(r["more_robust"] == r["less_robust"] == 0 and r["p_value"] == 1 for r in rows[3:])


@pytest.mark.parametrize(
    ("attack", "options", "upper_bound"),
    [
        ("cw", {"binary_search_steps": 2, "steps": 200}, True),  # abort_early: stops early
        ("cw", {"binary_search_steps": 2, "steps": 200, "abort_early": False}, False),
        ("fmn", {"steps": 200}, False),  # runs every step
    ],
)
def test_attack_estimate_says_upper_bound_only_where_the_attack_stops_early(
    run_dir, capsys, attack, options, upper_bound
):
    attack_along_training(run_dir, ["last"], n=4, attack=attack, options=options)
    (estimate,) = [line for line in capsys.readouterr().err.splitlines() if "would take" in line]
    assert ("would take at most" in estimate) == upper_bound
    assert ("would take about" in estimate) == (not upper_bound)
    assert ("an upper bound, as if every step ran" in estimate) == upper_bound
    if upper_bound:
        assert "C&W ends a binary-search step once its loss stops falling" in estimate


def test_a_one_batch_attack_shows_the_estimate_as_its_remaining_time(run_dir, capsys):
    # every sample in one batch: finished batches give no pace before the end, so the bar
    # counts down the estimate printed before the attack
    attack_along_training(
        run_dir, ["last"], n=4, attack="fmn", options={"steps": 200}, batch_size=128
    )
    lines = capsys.readouterr().err.splitlines()
    first = next(line for line in lines if "samples" in line and "elapsed" in line)
    assert "left" in first and "time left unknown" not in first
