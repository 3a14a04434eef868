"""Figures and one self-contained HTML report of run directories.

The one place where run directories meet the figures: it opens them, reads every record
through :mod:`marginlab.results` and draws with :mod:`marginlab.plots`. The HTML file has
no external references (no CDN, scripts, fonts or links): figures are embedded as base64
PNG, so it opens offline and can be mailed or archived as is.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd
import yaml
from matplotlib.figure import Figure

import marginlab
from marginlab.measure.margins import MARGIN_LABELS, PAPER_MARGIN, margin_label
from marginlab.measure.trajectory import threshold_row
from marginlab.numerics import format_log10
from marginlab.plots import FIGURES, FigureUnavailable, save
from marginlab.plots import figure as draw_figure
from marginlab.results.collect import RunResults, collect, collect_runs
from marginlab.results.reference import NETWORK_MARGIN
from marginlab.results.robustness import RobustnessReport
from marginlab.runs.run import Run
from marginlab.runs.store import no_link

REPORT_FIGURES = ("loss", "margins", "norms", "lr", "kkt", "robustness", "boundary")
REPORT_DPI = 150
DISPLAY_PX_PER_INCH = 110

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px;
       padding: 0 1em; color: #111; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left;
         vertical-align: top; }
th[scope=row] { font-weight: normal; color: #444; background: #f6f6f6; }
td { font-variant-numeric: tabular-nums; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.6em; font-size: 0.8em; overflow-x: auto; }
.wide { overflow-x: auto; max-width: 100%; }
"""


def _number(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, list):
        return ", ".join(_number(v) for v in value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _percent(value: object) -> str:
    return "-" if value is None or value != value else f"{100 * value:.2f}%"


def _log10(value: object) -> str:
    return format_log10(None if value is None else float(value), 3)


# Rows of the summary table: label -> how to show the last metrics row.
SUMMARY: dict[str, Callable[[dict], str]] = {
    "epochs": lambda row: _number(row.get("epoch")),
    "training loss (mean)": lambda row: _log10(row.get("log10_loss_mean")),
    "training loss (sum)": lambda row: _log10(row.get("log10_loss_sum")),
    "test loss (mean)": lambda row: _log10(row.get("log10_test_loss_mean")),
    "train accuracy": lambda row: _percent(row.get("train_acc")),
    "test accuracy": lambda row: _percent(row.get("test_acc")),
    "q_min": lambda row: _number(row.get("q_min")),
    # the paper's plotted quantity first
    **{
        margin_label(key): (lambda row, key=key: _number(row.get(key)))
        for key in sorted(MARGIN_LABELS, key=lambda key: key != PAPER_MARGIN)
    },
    "parameter norm rho = ||theta||": lambda row: _number(row.get("param_norm")),
    "layer norms": lambda row: _number(row.get("layer_norms")),
    "alpha": lambda row: _number(row.get("alpha")),
    "learning rate": lambda row: _log10(row.get("log10_lr")),
    "accumulated learning rate T": lambda row: _log10(row.get("log10_accumulated_lr")),
    "rollbacks": lambda row: _number(row.get("rollbacks")),
    "wall time": lambda row: f"{row.get('wall_time') or 0.0:.1f} s",
}
ENVIRONMENT = (
    "marginlab",
    "python",
    "torch",
    "numpy",
    "device",
    "device_name",
    "threads",
    "platform",
    "data_dir",
    "started",
)


def _table(columns: Iterable[str], rows: Mapping[str, Iterable[str]]) -> str:
    """A table with one column per run and one row per quantity (all cells escaped)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
    body = "".join(
        f'<tr><th scope="row">{html.escape(name)}</th>'
        + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in cells)
        + "</tr>"
        for name, cells in rows.items()
    )
    return _wide(f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>")


def _wide(table: str) -> str:
    """A table that scrolls sideways when its columns (runs) outgrow the page."""
    return f'<div class="wide"><table>{table}</table></div>'


def _frame(table: pd.DataFrame, digits: str = ".4g") -> str:
    """A table with a header row and one row per record (all cells escaped)."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else format(value, digits)
        return "-" if value is None else str(value)

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return _wide(f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>")


def _key_section(runs: Mapping[str, RunResults]) -> str:
    """Which run each short label of the figures and tables stands for."""
    if all(r.label == name for name, r in runs.items()):
        return ""
    key = pd.DataFrame(
        [(r.label, name, str(r.run.path)) for name, r in runs.items()],
        columns=["label", "run", "directory"],
    )
    return f'<h2 id="key">Runs</h2>{_frame(key)}'


def _setup_section(runs: Mapping[str, RunResults]) -> str:
    def describe(run: Run) -> dict[str, str]:
        config, status, env = run.config, run.status, run.environment
        data, train = config.get("data", {}), config.get("train", {})
        return {
            "directory": str(run.path),
            "status": f"{status.get('state', '-')}: {status.get('message', '')}".strip(": "),
            "seed": _number(config.get("seed")),
            "data": ", ".join(
                [str(data.get("name"))] + [f"{k}={v}" for k, v in data.items() if k != "name" and v]
            ),
            "model": ", ".join(f"{k}={v}" for k, v in config.get("model", {}).items()),
            "loss": str(config.get("loss")),
            "schedule": f"{train.get('schedule')} (batch {train.get('batch_size') or 'full'})",
            "dtype": str(config.get("dtype")),
            **{key: _number(env.get(key)) for key in ENVIRONMENT},
        }

    described = [describe(r.run) for r in runs.values()]
    rows = {key: [d[key] for d in described] for key in described[0]}
    labels = [r.label for r in runs.values()]
    configs = "".join(
        f"<details><summary>config.yaml of {html.escape(name)}</summary>"
        f"<pre>{html.escape(yaml.safe_dump(r.run.config, sort_keys=False))}</pre></details>"
        for name, r in runs.items()
    )
    return f"<h2>Runs: configuration and environment</h2>{_table(labels, rows)}{configs}"


def _summary_section(runs: Mapping[str, RunResults]) -> str:
    last, crossed = [], []
    for r in runs.values():
        metrics = r.metrics
        last.append(metrics.iloc[-1].to_dict() if len(metrics) else {})
        row = threshold_row(metrics)
        crossed.append("-" if row is None else str(int(metrics["epoch"].iloc[row])))
    rows = {name: [show(row) for row in last] for name, show in SUMMARY.items()}
    rows["summed loss below l(0) from epoch"] = crossed
    labels = [r.label for r in runs.values()]
    return f"<h2>Summary (last logged epoch)</h2>{_table(labels, rows)}"


def _kkt_records(r: RunResults) -> str:
    """One row per checkpoint; each certificate's ``eps_rel / delta`` in a column."""
    if r.kkt is None:
        return ""
    rows = []
    for row in r.kkt.rows:
        line = {"epoch": row.epoch, "log10 loss": row.log10_loss}
        if row.result is None:
            rows.append({**line, "not certified": row.error})
            continue
        res = row.result
        line.update(
            {MARGIN_LABELS["normalized_margin"]: res.normalized_margin, "1-beta": 1.0 - res.beta}
        )
        certs = [("loss weights", res.loss_weights)]
        certs += [(f"tau={c.tau:g}", c) for c in res.certificates]
        for name, cert in certs:
            line[f"{name}: eps_rel / delta"] = f"{cert.eps_rel:.3g} / {cert.delta:.3g}"
        rows.append(line)
    table = pd.DataFrame(rows)
    if "not certified" in table:  # the reason goes last
        table = table[[c for c in table.columns if c != "not certified"] + ["not certified"]]
    trend = r.kkt.trend()
    lines = "".join(f"<li>{html.escape(t.quantity)}: {html.escape(str(t))}</li>" for t in trend)
    trend_html = (
        f'<p class="note">first -&gt; last over {len(trend[0].values)} checkpoints '
        f"(steps at which it fell):</p><ul>{lines}</ul>"
        if trend
        else ""
    )
    return f"<h3>KKT certificates (kkt.json)</h3>{_frame(table, '.3g')}{trend_html}"


def _robustness_records(report: RobustnessReport) -> str:
    table = report.table().rename(columns=MARGIN_LABELS)  # names the margin's normalization
    paired = report.paired()
    moved = paired[paired["more_robust"] + paired["less_robust"] > 0]
    tests = (
        '<p class="note">From each checkpoint to the next, the same samples: how many became '
        "more and less robust, and the two-sided exact sign test.</p>" + _frame(moved, ".3g")
        if len(moved)
        else '<p class="note">No sample changed from one checkpoint to the next.</p>'
    )
    return (
        f"<h3>Robustness, {html.escape(report.setting)} ({len(report.indices)} samples, "
        f"{html.escape(report.file_name)})</h3>{_frame(table, '.4g')}{tests}"
    )


def _reference_records(r: RunResults) -> str:
    if not r.references:
        return ""
    table = pd.DataFrame(
        [
            {
                "reference": c.kind,
                "epoch": c.epoch,
                f"reference margin {NETWORK_MARGIN}": c.reference_margin,
                f"network margin {NETWORK_MARGIN}": c.network_margin,
                "ratio": c.ratio,
                "how the reference is normalized": c.note,
            }
            for c in r.references
        ]
    )
    return f"<h3>Reference max-margin solutions</h3>{_frame(table, '.6g')}"


def _records_section(runs: Mapping[str, RunResults]) -> str:
    parts = []
    for name, r in runs.items():
        body = _kkt_records(r) + "".join(map(_robustness_records, r.robustness))
        body += _reference_records(r)
        if body:
            title = name if r.label == name else f"{r.label}: {name}"
            parts.append(f"<section><h2>Results of {html.escape(title)}</h2>{body}</section>")
    return "".join(parts)


def _img(fig: Figure, what: str) -> str:
    """Figure ``what`` as an ``<img>`` holding a base64 PNG.

    The display width follows the figure's size in inches, so text has the same size in
    figures of two and of three panels; the PNG has more pixels than that for sharpness.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=REPORT_DPI)
    return image_tag(buffer.getvalue(), fig.get_figwidth(), f"{what} figure")


def image_tag(png: bytes, width_inches: float, alt: str) -> str:
    """An ``<img>`` holding ``png`` as base64, displayed at the figure's size in inches."""
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    width = round(width_inches * DISPLAY_PX_PER_INCH)
    return f'<img src="{source}" width="{width}" alt="{html.escape(alt)}">'


def html_page(title: str, body: str) -> str:
    """A complete HTML document with the report style and no external references."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _figure_section(runs: Mapping[str, RunResults]) -> str:
    parts = ["<h2>Figures</h2>"]
    for what in REPORT_FIGURES:
        try:
            image = _img(draw_figure(runs, what), what)
        except FigureUnavailable as reason:
            parts.append(f'<p class="note">{html.escape(what)}: {html.escape(str(reason))}</p>')
            continue
        parts.append(
            f'<figure id="figure-{what}">{image}'
            f"<figcaption>{html.escape(what)}: {html.escape(FIGURES[what].description)}."
            "</figcaption></figure>"
        )
    return "".join(parts)


def write_report(
    run_dirs: Iterable[str | os.PathLike | Run], out: str | os.PathLike | None = None
) -> Path:
    """Write one self-contained HTML report of one or several runs (overlaid in figures).

    The report shows each run's setup and summary, every result record it has (the KKT
    table and its trend, the robustness tables with the paired sign tests, the reference
    comparisons) and every figure.

    Parameters
    ----------
    run_dirs : iterable of paths or Run
        Run directories; several are compared in one table and overlaid in each figure. A
        sweep directory stands for the runs in it.
    out : path, optional
        The HTML file; defaults to ``report.html`` in the first directory given.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> from marginlab.experiments.presets import preset
    >>> config = preset("digits-mlp")
    >>> config["train"]["max_epochs"] = 2
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> write_report([path]).name
    'report.html'
    """
    run_dirs = list(run_dirs)
    runs = collect_runs(run_dirs)
    if not runs:
        raise ValueError("report: give at least one run directory")
    first = run_dirs[0]
    home = first.path if isinstance(first, Run) else Path(first)
    path = Path(out) if out else home / "report.html"
    names = ", ".join(runs) if len(runs) <= 4 else f"{len(runs)} runs"
    title = f"marginlab report: {names}"
    generated = (
        f"generated {time.strftime('%Y-%m-%d %H:%M:%S %z')} by marginlab {marginlab.__version__}"
    )
    body = "".join(
        [
            f'<h1>{html.escape(title)}</h1><p class="note">{html.escape(generated)}</p>',
            _key_section(runs),
            _setup_section(runs),
            _summary_section(runs),
            _records_section(runs),
            _figure_section(runs),
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    no_link(path).write_text(html_page(title, body), encoding="utf-8")
    return path


def figure(run_dirs: Iterable[str | os.PathLike | Run], what: str) -> Figure:
    """Figure ``what`` (a key of :data:`marginlab.plots.FIGURES`) of run directories.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> from marginlab.experiments.presets import preset
    >>> config = preset("digits-mlp")
    >>> config["train"]["max_epochs"] = 2
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> len(figure([path], "margins").axes)
    2
    """
    return draw_figure(collect_runs(run_dirs), what)


def plot(run_dirs: Iterable[str | os.PathLike | Run], what: str, out: str | os.PathLike) -> Path:
    """Write figure ``what`` of one or several runs (overlaid) to ``out`` (.png/.pdf/.svg).

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> from marginlab.experiments.presets import preset
    >>> config = preset("digits-mlp")
    >>> config["train"]["max_epochs"] = 2
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> plot([path], "loss", path / "loss.pdf").name
    'loss.pdf'
    """
    return save(figure(run_dirs, what), out)


def plot_training(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the loss and margin curves of a run as a PNG (``RUN_DIR/training.png``)."""
    return plot([run_dir], "training", out or Path(run_dir) / "training.png")


def robustness_figure(run: Run, report: RobustnessReport, out: str | os.PathLike) -> Path:
    """Write the robust-accuracy figure of one report of ``run`` (``marginlab attack``)."""
    results = collect(run)
    results.robustness = [report]
    return save(draw_figure([results], "robustness"), out)
