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
    ClaimSpec,
    Judgement,
    counts,
    read_claims,
    write_claims,
)
from marginlab.experiments.reproduce import PAPERS, claim_specs, claims_table, papers_for
from marginlab.experiments.study import Study
from marginlab.measure.rates import rates_table
from marginlab.measure.trajectory import after_threshold, first_fit_epoch


def _spec(key="k", source="ours"):
    return ClaimSpec(
        "p", key, "s", source, lambda value: Judgement(f"{value}", value > 0), "value > 0"
    )


def test_a_spec_judges_measurements_and_rows_record_its_source_and_criterion():
    spec = _spec(source="paper (Fig. 1)")
    passed, failed = spec.judge(value=1.0), spec.judge(value=-1.0)
    assert (passed.verdict, failed.verdict) == (PASS, FAIL)
    assert passed.source == "paper (Fig. 1)" and passed.criterion == "<lambda>"
    skipped = spec.not_run("needs MNIST")
    assert (skipped.verdict, skipped.ours, skipped.note) == (NOT_RUN, None, "needs MNIST")
    with pytest.raises(ValueError, match="verdict"):
        Claim("p", "k", "s", None, None, "", "MAYBE")
    with pytest.raises(ValueError, match="source"):
        _spec(source="the paper, we think")
    with pytest.raises(ValueError, match="scales"):
        ClaimSpec("p", "k", "s", "ours", lambda: None, "t", scales=("huge",))


def test_claims_round_trip_table_and_the_first_format(tmp_path):
    claims = [_spec("x").judge(value=2.0), _spec("y").judge(value=-2.0), _spec("z").not_run("why")]
    path = write_claims(claims, tmp_path / "claims.json", scale="ci")
    assert read_claims(path) == claims
    payload = json.loads(path.read_text())
    assert payload["meta"] == {"scale": "ci"} and payload["format"] == 2
    assert counts(claims) == {PASS: 1, FAIL: 1, NOT_RUN: 1}
    table = claims_table(claims).splitlines()
    assert len(table) == 5 and table[-1] == "1 PASS, 1 FAIL, 1 NOT RUN"
    assert "FAIL" in table[2] and "NOT RUN" in table[3]
    # a file written before sources and criteria existed still loads
    old = {
        "meta": {},
        "claims": [
            {k: v for k, v in payload["claims"][0].items() if k not in ("source", "criterion")}
        ],
    }
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert read_claims(tmp_path / "old.json")[0].source == "ours"
    (tmp_path / "new.json").write_text(json.dumps({**payload, "format": 99}))
    with pytest.raises(ValueError, match="newer"):
        read_claims(tmp_path / "new.json")


def test_papers_for():
    assert papers_for("all") == list(PAPERS)
    assert papers_for("soudry") == ["soudry"]
    with pytest.raises(KeyError, match="PAPER"):
        papers_for("nobody")


def test_study_rejects_unknown_scale(tmp_path):
    with pytest.raises(ValueError, match="--scale"):
        Study("soudry", "huge", tmp_path)


def test_study_rows_every_declared_claim_and_a_raising_criterion_fails(tmp_path):
    specs = [
        _spec("measured"),
        ClaimSpec(
            "p", "full-only", "s", "ours", lambda: Judgement("", True), "t", scales=("full",)
        ),
        _spec("forgotten"),
        ClaimSpec("p", "raises", "s", "ours", lambda values: Judgement(f"{values[5]}", True), "t"),
    ]
    progress = []
    study = Study("p", "ci", tmp_path, specs=specs, on_progress=progress.append)
    study.judge("measured", value=1.0)
    study.judge("raises", values=[1.0])
    assert progress == [0.25, 0.5]
    study.finish()
    assert progress[-1] == 1.0
    verdicts = {c.key: (c.verdict, c.note) for c in study.claims}
    assert verdicts["measured"] == (PASS, "")
    assert verdicts["full-only"] == (NOT_RUN, "measured at the full scale only")
    assert verdicts["forgotten"][0] == FAIL
    assert verdicts["raises"] == (FAIL, "the criterion raised")
    with pytest.raises(KeyError, match="no claim"):
        study.judge("undeclared", value=1.0)


def test_measurements_are_computed_once_and_judged_as_saved(tmp_path):
    study = Study("p", "ci", tmp_path)
    calls = []

    def measure():
        calls.append(1)
        return {"t": np.arange(3.0), "note": "x", "nan": float("nan")}

    first = study.measured("m", {"n": 3}, measure)
    again = study.measured("m", {"n": 3}, measure)
    assert len(calls) == 1 and np.array_equal(first["t"], again["t"]) and again["note"] == "x"
    assert np.isnan(again["nan"])
    path = tmp_path / "measurements" / "m.json"
    saved = json.loads(path.read_text())
    saved["values"]["t"] = [5.0, 6.0, 7.0]  # an altered file is judged as it now reads
    path.write_text(json.dumps(saved))
    assert study.measured("m", {"n": 3}, measure)["t"].tolist() == [5.0, 6.0, 7.0]
    study.measured("m", {"n": 4}, measure)  # other settings: measured again
    assert len(calls) == 2


def test_a_crashing_paper_fails_what_it_left_unmeasured_and_others_still_run(tmp_path, monkeypatch):
    def declared(paper):
        return (
            ClaimSpec(paper, "first", "s", "ours", lambda: Judgement("1", True), "t"),
            ClaimSpec(paper, "second", "s", "ours", lambda: Judgement("1", True), "t"),
        )

    def crash(study):
        study.judge("first")
        raise RuntimeError("boom")

    def fine(study):
        study.judge("first")
        study.judge("second")

    for name, body in (("crashing", crash), ("fine", fine)):
        module = types.ModuleType(f"marginlab.experiments.papers.{name}")
        module.reproduce, module.CLAIMS = body, declared(name)
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(
        reproduce_module, "PAPERS", {"crashing": ("C", "crashing"), "fine": ("F", "fine")}
    )
    out = reproduce_module.reproduce("all", "ci", tmp_path)
    claims = read_claims(out / "claims.json")
    assert [(c.paper, c.key, c.verdict) for c in claims] == [
        ("crashing", "first", PASS),
        ("crashing", "second", FAIL),
        ("fine", "first", PASS),
        ("fine", "second", PASS),
    ]
    assert "RuntimeError: boom" in claims[1].note


def test_list_prints_every_claim_with_its_source_criterion_and_tolerance(capsys):
    assert main(["reproduce", "--list"]) == 0
    printed = capsys.readouterr().out
    for spec in claim_specs("all"):
        assert f"{spec.paper}/{spec.key}" in printed
        assert spec.criterion_name in printed and spec.source in printed


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
    # every declared claim has a row, with a source, and a NOT RUN says why
    assert sorted(keys) == sorted((s.paper, s.key) for s in claim_specs("all"))
    assert all(c.source and c.criterion for c in claims)
    assert all(c.note for c in claims if c.verdict == NOT_RUN)
    verdict = {(c.paper, c.key): c for c in claims}
    for headline in ("const-margin", "loss-based-margin", "loss-below-1e-800", "loss-at-10000"):
        assert verdict["lyu-li", headline].verdict == NOT_RUN
    # a run past float64's smallest subnormal, judged
    assert verdict["lyu-li", "deep-loss"].verdict == PASS
    deep = pd.DataFrame(
        [
            json.loads(line)
            for line in (tmp_path / "lyu-li/runs/mlp-relu3-gd-loss-based/metrics.jsonl").open()
        ]
    )
    assert deep["log10_loss_mean"].min() < -400

    # What a broken trainer would have written: the loss-based CNN's loss stops falling in
    # the late half, and Soudry et al.'s loss stops falling. Judged again from the files.
    metrics = tmp_path / "lyu-li/runs/cnn-loss-based/metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    middle = len(rows) // 2
    for row in rows[middle:]:
        row["log10_loss_mean"] = rows[middle]["log10_loss_mean"]
        row["log10_loss_sum"] = rows[middle]["log10_loss_sum"]
        row["test_acc"] = rows[middle]["test_acc"] - 0.05  # and generalizes worse
    metrics.write_text("".join(json.dumps(row) + "\n" for row in rows))
    measured = tmp_path / "soudry/measurements/gd.json"
    saved = json.loads(measured.read_text())
    saved["values"]["loss"] = [saved["values"]["loss"][0]] * len(saved["values"]["loss"])
    measured.write_text(json.dumps(saved))
    for paper in ("lyu-li", "soudry"):
        assert main(["reproduce", paper, "--scale", "ci", "--out", str(tmp_path), "--quiet"]) == 1
        again = {c.key: c.verdict for c in read_claims(tmp_path / "claims.json")}
        broken = (
            ("loss-linear-in-epochs", "test-accuracy-flat") if paper == "lyu-li" else ("loss-rate",)
        )
        assert all(again[key] == FAIL for key in broken), paper


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
