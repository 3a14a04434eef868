"""Every number that is a margin names what it is divided by, wherever it is shown.

The two normalizations differ by orders of magnitude (1e-13 against 3e-8 on the MNIST job),
so a margin without its normalization cannot be read. These tests collect the labels of
every table, progress line and plot axis that shows one and fail if a label lost it.
"""

from __future__ import annotations

import html
import re
import shutil

from rich.console import Console

from marginlab import load_run
from marginlab.commands.train import HEADERS
from marginlab.measure.margins import MARGIN_LABELS, PAPER_MARGIN
from marginlab.report import figure, write_report
from marginlab.results.kkt import KKTTable
from marginlab.results.reference import ReferenceComparison
from marginlab.training.progress import progress_line, summary_table

NORMALIZATIONS = ("rho^L", "prod||W_i||")  # in text
LATEX_NORMALIZATIONS = (r"\rho^L", r"\Pi_i \|w_i\|")  # on plot axes
PAPER = "Lyu & Li"


def _margin_labels(labels) -> list[str]:
    """The labels that name a margin's value (a count of its decreases is scale-free)."""
    return [
        label
        for label in labels
        if re.search(r"\bmargins?\b|_margin", label.lower()) and "decrease" not in label
    ]


def _named(label: str) -> bool:
    return any(norm in label for norm in NORMALIZATIONS)


def test_every_margin_label_names_its_normalization():
    assert set(MARGIN_LABELS) == {
        "normalized_margin",
        "normalized_margin_layers",
        "smoothed_margin",
        "smoothed_margin_layers",
    }
    assert all(_named(label) for label in MARGIN_LABELS.values())
    assert HEADERS["normalized_margin_layers"] == MARGIN_LABELS["normalized_margin_layers"]


def test_the_report_names_the_normalization_of_every_margin(recorded_runs, tmp_path):
    # a copy of the digits run, with a reference comparison beside its KKT and attack records
    digits = shutil.copytree(recorded_runs[0], tmp_path / "digits")
    run = load_run(digits)
    ReferenceComparison("nonconvex", run.checkpoints[-1].epoch, 0.5, 0.6, {}, "note").save(run)
    text = write_report([digits], tmp_path / "report.html").read_text(encoding="utf-8")
    headers = [html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", text)]
    shown = _margin_labels(headers)
    unnamed = [label for label in shown if not _named(label)]
    assert not unnamed, f"margins without their normalization in the report: {unnamed}"
    # every place is there: the summary's four rows, the KKT, attack and reference tables
    for key in MARGIN_LABELS:
        assert any(MARGIN_LABELS[key] in label for label in shown), key
    assert sum(label == MARGIN_LABELS["normalized_margin"] for label in headers) >= 2
    assert any(label.startswith("network margin") for label in shown)
    (paper,) = [label for label in shown if PAPER in label]
    assert MARGIN_LABELS[PAPER_MARGIN] in paper


def test_every_margin_axis_names_its_normalization(recorded_runs):
    for what in ("margins", "training"):
        axes = figure(recorded_runs[:1], what).axes
        margin_axes = [ax for ax in axes if "margin" in ax.get_ylabel()]
        assert len(margin_axes) == 2, what
        for ax in margin_axes:
            assert any(norm in ax.get_ylabel() for norm in LATEX_NORMALIZATIONS), ax.get_ylabel()
        titles = [ax.get_title() for ax in margin_axes]
        assert [PAPER in title for title in titles] == [False, True]  # rho^L, then layers


def test_the_progress_line_and_the_summary_table_name_the_normalization():
    row = {
        "epoch": 3,
        "log10_loss_mean": -881.5,
        "log10_loss_sum": -877.7,
        "normalized_margin": 1e-13,
        "normalized_margin_layers": 3e-8,
        "smoothed_margin": 9e-14,
        "param_norm": 12.0,
        "train_acc": 1.0,
        "alpha": 0.5,
        "rollbacks": 2,
    }
    # the paper's quantity where there is one, else q_min / rho^L
    assert f"{MARGIN_LABELS[PAPER_MARGIN]} 3e-08" in progress_line(row)
    no_layers = {**row, "normalized_margin_layers": None}
    assert f"{MARGIN_LABELS['normalized_margin']} 1e-13" in progress_line(no_layers)

    console = Console(width=200, record=True)
    console.print(summary_table("run", row, [1.0, 2.0]))
    lines = console.export_text().splitlines()
    shown = _margin_labels(lines)
    assert len(shown) == 3 and all(_named(line) for line in shown), shown
    assert any(PAPER in line and "3e-08" in line for line in shown)


def test_the_kkt_and_reference_tables_name_the_normalization(recorded_runs):
    kkt = str(KKTTable.load(recorded_runs[0] / "kkt.json"))
    assert MARGIN_LABELS["normalized_margin"] in kkt.splitlines()[0]
    comparison = str(ReferenceComparison("svm", 9, 0.5, 0.6, {}, "how it is normalized"))
    shown = _margin_labels(comparison.replace("   ", "\n").splitlines())
    assert len(shown) == 2 and all(_named(label) for label in shown), shown
    assert "how it is normalized" in comparison
