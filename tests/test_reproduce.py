"""`marginlab reproduce`: the claims machinery, the Lyu & Li measurements, and the whole
ci-scale reproduction of every paper, which must pass every claim it runs."""

from __future__ import annotations

import json
import sys
import types
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from marginlab.cli import main
from marginlab.experiments import reproduce as reproduce_module
from marginlab.experiments.claims import (
    FAIL,
    NOT_RUN,
    PASS,
    Claim,
    check,
    counts,
    not_run,
    read_claims,
    write_claims,
)
from marginlab.experiments.papers.lyu_li import (
    after_threshold,
    first_fit_epoch,
    linearity,
    relative_drops,
    spread,
)
from marginlab.experiments.reproduce import PAPERS, claims_table, papers_for
from marginlab.experiments.study import Study
from marginlab.measure.rates import rates_table


def test_check_verdicts_and_nan_never_passes():
    assert check("p", "k", "s", ours=1.0, passed=True, tolerance="t").verdict == PASS
    assert check("p", "k", "s", ours=1.0, passed=False, tolerance="t").verdict == FAIL
    assert check("p", "k", "s", ours=float("nan"), passed=True, tolerance="t").verdict == FAIL
    skipped = not_run("p", "k", "s", "needs MNIST")
    assert (skipped.verdict, skipped.ours, skipped.note) == (NOT_RUN, None, "needs MNIST")
    with pytest.raises(ValueError, match="verdict"):
        Claim("p", "k", "s", None, None, "", "MAYBE")


def test_claims_round_trip_and_table(tmp_path):
    claims = [
        check("a", "x", "s", ours=[1.23456, 2.0], passed=True, tolerance="t", paper_value="1"),
        check("a", "y", "s", ours="text", passed=False, tolerance="t"),
        not_run("b", "z", "s", "why"),
    ]
    path = write_claims(claims, tmp_path / "claims.json", scale="ci")
    assert read_claims(path) == claims
    assert json.loads(path.read_text())["meta"] == {"scale": "ci"}
    assert claims[0].ours == "[1.235, 2]"
    assert counts(claims) == {PASS: 1, FAIL: 1, NOT_RUN: 1}
    table = claims_table(claims).splitlines()
    assert len(table) == 5 and table[-1] == "1 PASS, 1 FAIL, 1 NOT RUN"
    assert "FAIL" in table[2] and "NOT RUN" in table[3]


def test_papers_for():
    assert papers_for("all") == list(PAPERS)
    assert papers_for("soudry") == ["soudry"]
    with pytest.raises(KeyError, match="PAPER"):
        papers_for("nobody")


def test_study_rejects_unknown_scale(tmp_path):
    with pytest.raises(ValueError, match="--scale"):
        Study("soudry", "huge", tmp_path)


def test_a_crashing_paper_becomes_a_fail_row_and_others_still_run(tmp_path, monkeypatch):
    def crash(study):
        study.check("first", "s", ours=1, passed=True, tolerance="t")
        raise RuntimeError("boom")

    def fine(study):
        study.check("only", "s", ours=1, passed=True, tolerance="t")

    for name, body in (("crashing", crash), ("fine", fine)):
        module = types.ModuleType(f"marginlab.experiments.papers.{name}")
        module.reproduce = body
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(
        reproduce_module, "PAPERS", {"crashing": ("C", "crashing"), "fine": ("F", "fine")}
    )
    out = reproduce_module.reproduce("all", "ci", tmp_path)
    claims = read_claims(out / "claims.json")
    assert [(c.paper, c.key, c.verdict) for c in claims] == [
        ("crashing", "first", PASS),
        ("crashing", "completed", FAIL),
        ("fine", "only", PASS),
    ]
    assert "RuntimeError: boom" in claims[1].ours


def test_relative_drops_and_spread():
    assert relative_drops(np.array([2.0, 1.0, 1.5, 1.2])).tolist() == pytest.approx([0.5, 0.0, 0.2])
    assert relative_drops(np.array([1.0, 2.0, 3.0])).max() == 0.0
    assert spread(np.array([1.0, 1.1, 0.9])) == pytest.approx(0.2)


def test_linearity_detects_a_bend():
    x = np.arange(20.0)
    assert linearity(x, -3.0 * x) == pytest.approx(1.0)
    assert linearity(x, (x - 10.0) ** 2) < 0.1


def test_threshold_fit_and_norm_rate_on_a_scripted_run():
    metrics = pd.DataFrame(
        {
            "epoch": [0, 10, 20, 30],
            "train_acc": [0.5, 0.9, 1.0, 1.0],
            "smoothed_margin": [np.nan, np.nan, 0.1, 0.2],
            "log10_loss_sum": [1.0, 0.5, -1.0, -2.0],
            "param_norm": [1.0, 1.0, 2.0, 2.0],
            "log10_accumulated_lr": [None, 0.5, 1.0, 1.5],
        }
    )
    assert after_threshold(metrics)["epoch"].tolist() == [20, 30]
    assert after_threshold(metrics.assign(smoothed_margin=np.nan)).empty
    assert first_fit_epoch(metrics) == 20
    assert first_fit_epoch(metrics.assign(train_acc=0.5)) is None
    # rho^L / log(1/L): 2^2 / (2 ln 10) at the last row
    norm_rate = rates_table(metrics, 2.0)["norm_rate"].to_numpy(float)
    assert norm_rate[-1] == pytest.approx(4.0 / (2.0 * np.log(10.0)))


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_reproduce_all_at_ci_scale_passes_every_claim_it_runs(tmp_path, capsys):
    """The acceptance run of `marginlab reproduce all --scale ci` (minutes on 2 cores)."""
    status = main(["reproduce", "all", "--scale", "ci", "--out", str(tmp_path), "--quiet"])
    printed = capsys.readouterr().out
    claims = read_claims(tmp_path / "claims.json")
    failed = [f"{c.paper}/{c.key}: {c.ours} ({c.tolerance})" for c in claims if c.verdict == FAIL]
    assert not failed, "\n".join(failed)
    assert status == 0
    assert "claims.html" in printed and f"{counts(claims)[PASS]} PASS" in printed
    for paper in PAPERS:
        assert any(c.paper == paper and c.verdict == PASS for c in claims), paper
    keys = [(c.paper, c.key) for c in claims]
    assert len(keys) == len(set(keys)), "claim keys must be unique within a paper"
    # the page is self-contained: every image embedded, nothing fetched
    page = (tmp_path / "claims.html").read_text()
    parser = _Collect()
    parser.feed(page)
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert images and all(a["src"].startswith("data:image/png;base64,") for a in images)
    # each figure is shown at its own size in inches, whatever dpi its writer used
    from PIL import Image

    from marginlab.report import DISPLAY_PX_PER_INCH

    expected = []
    for png in [*tmp_path.glob("*/figures/*.png"), *tmp_path.glob("*/runs/*/robustness-*.png")]:
        with Image.open(png) as image:
            expected.append(round(image.width / image.info["dpi"][0] * DISPLAY_PX_PER_INCH))
    assert sorted(int(a["width"]) for a in images) == sorted(expected)
    assert not [a for t, a in parser.tags if t in ("script", "link")]
    assert page.count("<tr>") == len(claims) + 1


@pytest.mark.parametrize("scale", ["ci", "cpu", "full"])
def test_every_lyu_li_scale_builds_valid_run_configs(scale):
    from marginlab.config import validate
    from marginlab.experiments.papers.lyu_li import SETTINGS, _cnn_config, _gd_config

    setting = SETTINGS[scale]
    based = validate(_cnn_config(setting, {"schedule": "loss_based"}, setting.max_epochs))
    const = validate(_cnn_config(setting, {"schedule": "constant", "lr": setting.const_lr}, 10))
    assert based.train.schedule == "loss_based" and based.train.batch_size == (
        50 if scale == "ci" else 100
    )
    assert const.train.target_log10_loss is None and const.train.lr == setting.const_lr
    assert based.model["bias"] == "first"
    for schedule in ("constant", "loss_based"):
        gd = validate(_gd_config(setting, schedule))
        assert gd.train.batch_size is None and gd.model["activation"] == "relu_k"
    if scale == "full":  # the paper's own run: all of MNIST, its CNN, 10000 epochs
        assert based.data.n_train is None and based.train.max_epochs == 10000
        assert based.model["spec"] == "conv5x5-32,maxpool,conv3x3-64,maxpool,fc1024,fc10"
        assert const.train.lr == 0.01
