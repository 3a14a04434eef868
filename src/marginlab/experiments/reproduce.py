"""``marginlab reproduce``: run a paper's experiments, check its claims, write the verdicts.

For each paper, :data:`PAPERS` names the module whose ``reproduce(study)`` runs the
experiments at the study's scale and records one :class:`~marginlab.experiments.claims.Claim`
per claim. The result is ``OUT/claims.json`` and ``OUT/claims.html`` (one self-contained page:
the claims table, then each paper's figures).
"""

from __future__ import annotations

import html
import os
import platform
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from importlib import import_module
from pathlib import Path
from types import ModuleType

import marginlab
from marginlab.experiments.claims import SCALES, Claim, ClaimSpec, counts, write_claims
from marginlab.experiments.study import FigureFile, Study
from marginlab.progress import Bar, announce_cost, format_duration
from marginlab.report import html_page, image_tag

# key -> (citation, module under marginlab.experiments.papers)
PAPERS: dict[str, tuple[str, str]] = {
    "lyu-li": (
        "Lyu & Li 2020, Gradient descent maximizes the margin of homogeneous neural networks",
        "lyu_li",
    ),
    "chizat-bach": (
        "Chizat & Bach 2020, Implicit bias of gradient descent for wide two-layer neural "
        "networks trained with the logistic loss",
        "chizat_bach",
    ),
    "vardi": (
        "Vardi, Shamir & Srebro 2022, On margin maximization in linear and ReLU networks",
        "vardi",
    ),
    "cai": (
        "Cai, Wu, Mei, Lindsey & Bartlett 2024, Large stepsize gradient descent for "
        "non-homogeneous two-layer networks",
        "cai",
    ),
    "soudry": (
        "Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018, The implicit bias of gradient "
        "descent on separable data",
        "soudry",
    ),
    "wu": (
        "Wu, Bartlett, Telgarsky & Yu 2024, Large stepsize gradient descent for logistic "
        "loss: non-monotonicity of the loss improves optimization efficiency",
        "wu",
    ),
}


def papers_for(paper: str) -> list[str]:
    """The paper keys that ``paper`` (a key or ``all``) stands for.

    Examples
    --------
    >>> papers_for("all")
    ['lyu-li', 'chizat-bach', 'vardi', 'cai', 'soudry', 'wu']
    """
    if paper == "all":
        return list(PAPERS)
    if paper not in PAPERS:
        raise KeyError(f"PAPER: expected one of {', '.join(PAPERS)} or all, got {paper!r}")
    return [paper]


def paper_module(paper: str) -> ModuleType:
    """The module that reproduces ``paper`` (it defines ``CLAIMS`` and ``reproduce``)."""
    return import_module(f"marginlab.experiments.papers.{PAPERS[paper][1]}")


def claim_specs(paper: str = "all") -> list[ClaimSpec]:
    """Every claim declared for ``paper`` (a key or ``all``), in report order.

    Examples
    --------
    >>> specs = claim_specs("soudry")
    >>> {s.paper for s in specs}, len({s.key for s in specs}) == len(specs)
    ({'soudry'}, True)
    """
    return [spec for key in papers_for(paper) for spec in paper_module(key).CLAIMS]


def run_paper(study: Study) -> None:
    """Run one paper's reproduction into ``study``; a crash fails the claims it left
    unmeasured, and the other papers still run."""
    try:
        paper_module(study.paper).reproduce(study)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # one paper's failure must not lose the others' verdicts
        study.log(traceback.format_exc())
        study.finish(crash=f"{type(error).__name__}: {error}")
    else:
        study.finish()


# Seconds each paper took on 2 CPU cores (the README's timings; `full` is the papers' own
# scale, days on a CPU): the estimate printed before a reproduction starts, and the weights
# of its progress bar.
TYPICAL_SECONDS: dict[str, dict[str, float]] = {
    "ci": {"lyu-li": 245, "chizat-bach": 89, "vardi": 43, "cai": 19, "soudry": 10, "wu": 24},
    "cpu": {"lyu-li": 3600, "chizat-bach": 4800, "vardi": 240, "cai": 420, "soudry": 60, "wu": 240},
}


def _announce_cost(keys: list[str], scale: str) -> dict[str, float]:
    """Print what the reproduction will cost; return each paper's weight in the bar."""
    typical = TYPICAL_SECONDS.get(scale)
    if typical is None:
        print(
            f"marginlab: warning: --scale {scale} is the papers' own scale: days on a CPU, and "
            "the CIFAR-10 runs want a GPU; --scale cpu takes about an hour",
            file=sys.stderr,
            flush=True,
        )
        return {key: 1.0 for key in keys}
    weights = {key: typical.get(key, 60.0) for key in keys}
    announce_cost(
        "the reproduction",
        sum(weights.values()),
        f"{', '.join(f'{key} {format_duration(s)}' for key, s in weights.items())}, as timed "
        "on 2 idle CPU cores",
        "--scale ci, or one PAPER",
    )
    return weights


def reproduce(
    paper: str,
    scale: str = "ci",
    out: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    verbose: bool = False,
) -> Path:
    """Reproduce one paper (or ``all``) at a scale and write ``claims.json`` and ``claims.html``.

    Parameters
    ----------
    paper : str
        A key of :data:`PAPERS`, or ``all``.
    scale : {"ci", "cpu", "full"}
        ``ci``: minutes on 2 CPU cores; ``cpu``: about an hour; ``full``: the paper's scale.
    out : path, optional
        Output folder (default ``reproduce/<paper>-<scale>``); each paper's runs and figures
        go to ``OUT/<paper>``. Finished runs found there are reused.
    data_dir : path, optional
        Where MNIST / CIFAR-10 live (default ``$MARGINLAB_DATA``).
    verbose : bool
        Print progress and each verdict to stderr.

    Returns
    -------
    pathlib.Path
        The folder holding ``claims.json`` and ``claims.html``.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab.experiments.claims import read_claims
    >>> out = reproduce("soudry", "ci", tempfile.mkdtemp())  # doctest: +SKIP
    >>> {c.verdict for c in read_claims(out / "claims.json")}  # doctest: +SKIP
    {'PASS'}
    """
    keys = papers_for(paper)
    if scale not in SCALES:
        raise ValueError(f"--scale: expected one of {', '.join(SCALES)}, got {scale!r}")
    root = Path(out) if out else Path("reproduce") / f"{paper}-{scale}"
    data_dir = None if data_dir is None else str(data_dir)
    started = time.time()
    claims: list[Claim] = []
    figures: list[FigureFile] = []
    seconds: dict[str, float] = {}
    weights = _announce_cost(keys, scale) if verbose else {key: 1.0 for key in keys}
    with Bar(f"reproduce {paper} --scale {scale}", sum(weights.values()), enabled=verbose) as bar:
        done = 0.0
        for key in keys:
            specs = list(paper_module(key).CLAIMS)
            # the bar moves within a paper as its claims get their rows
            study = Study(
                key, scale, root / key, data_dir, verbose, specs,
                on_progress=lambda part, key=key, done=done: bar.update(
                    done + weights[key] * part, key
                ),
            )  # fmt: skip
            bar.update(done, key)
            run_paper(study)
            done += weights[key]
            bar.update(done, key)
            claims += study.claims
            figures += study.figures
            seconds[key] = round(time.perf_counter() - study.started, 1)
            meta = {
                "papers": keys,
                "scale": scale,
                "seconds": seconds,
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)),
                "marginlab": marginlab.__version__,
                "python": platform.python_version(),
                "data_dir": data_dir or os.environ.get("MARGINLAB_DATA"),
            }
            # written after every paper, so an interruption keeps the verdicts already reached
            write_claims(claims, root / "claims.json", **meta)
            write_claims_html(claims, figures, root / "claims.html", meta)
    return root


def claims_table(claims: Sequence[Claim]) -> str:
    """The claims as a plain-text table (one line per claim) for the terminal.

    Examples
    --------
    >>> spec = claim_specs("cai")[0]
    >>> print(claims_table([spec.not_run("ci scale")]).splitlines()[0])
    paper  claim            source  paper says                                ours  verdict
    """
    rows = [("paper", "claim", "source", "paper says", "ours", "verdict")]
    rows += [
        (c.paper, c.key, c.source.split(" (")[0], c.paper_value or "-", c.ours or "-", c.verdict)
        for c in claims
    ]
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(len(rows[0]))]

    def line(row: Iterable[str]) -> str:
        cells = [
            cell if len(cell) <= w else cell[: w - 1] + "~"
            for cell, w in zip(row, widths, strict=True)
        ]
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    tally = ", ".join(f"{n} {verdict}" for verdict, n in counts(claims).items())
    return "\n".join([line(rows[0]), *(line(r) for r in rows[1:]), tally])


def specs_list(specs: Sequence[ClaimSpec]) -> str:
    """Every declared claim, one paragraph each (``marginlab reproduce --list``).

    Examples
    --------
    >>> print(specs_list(claim_specs("soudry")[:1]).splitlines()[0])
    soudry/direction-rate  [ci, cpu, full]
    """
    blocks = []
    for spec in specs:
        blocks.append(
            "\n".join(
                [
                    f"{spec.paper}/{spec.key}  [{', '.join(spec.scales)}]",
                    f"  statement:  {spec.statement}",
                    f"  source:     {spec.source}",
                    f"  paper says: {spec.paper_value or '-'}",
                    f"  criterion:  {spec.criterion_name}",
                    f"  tolerance:  {spec.tolerance}",
                ]
            )
        )
    return "\n\n".join(blocks)


VERDICT_STYLE = {
    "PASS": "color:#064",
    "FAIL": "color:#a00;font-weight:bold",
    "NOT RUN": "color:#555",
}


def write_claims_html(
    claims: Sequence[Claim], figures: Sequence[FigureFile], path: Path, meta: dict
) -> Path:
    """One self-contained page: the claims, then each paper's figures (base64 PNG)."""
    escape = html.escape
    head = (
        "paper",
        "claim",
        "statement",
        "source",
        "paper says",
        "ours",
        "criterion and tolerance",
        "verdict",
        "note",
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(cell or '-')}</td>"
            for cell in (
                c.paper,
                c.key,
                c.statement,
                c.source,
                c.paper_value,
                c.ours,
                f"{c.criterion}: {c.tolerance}" if c.criterion else c.tolerance,
            )
        )
        + f'<td style="{VERDICT_STYLE[c.verdict]}">{escape(c.verdict)}</td>'
        + f"<td>{escape(c.note)}</td></tr>"
        for c in claims
    )
    tally = ", ".join(f"{n} {verdict}" for verdict, n in counts(claims).items())
    parts = [
        f"<h1>marginlab reproduce: {escape(', '.join(meta['papers']))} at scale "
        f"{escape(meta['scale'])}</h1>",
        f'<p class="note">started {escape(meta["started"])}, marginlab {escape(meta["marginlab"])}'
        f"; seconds per paper: {escape(str(meta['seconds']))}. {escape(tally)}.</p>",
        "<h2>Claims</h2><table><thead><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + f"</tr></thead><tbody>{rows}</tbody></table>",
    ]
    for key in meta["papers"]:
        chosen = [f for f in figures if f.paper == key]
        if not chosen:
            continue
        parts.append(f"<h2>{escape(PAPERS[key][0])}</h2>")
        for figure in chosen:
            width = _png_width_inches(figure.path)
            parts.append(
                f"<figure>{image_tag(figure.path.read_bytes(), width, figure.caption)}"
                f"<figcaption>{escape(figure.caption)}</figcaption></figure>"
            )
    path.write_text(html_page("marginlab reproduce", "".join(parts)), encoding="utf-8")
    return path


def _png_width_inches(path: Path) -> float:
    """The figure's width in inches, from the resolution its PNG records (figures come
    from several writers and dpi settings)."""
    from PIL import Image

    from marginlab.plots import RASTER_DPI

    with Image.open(path) as image:
        return image.width / image.info.get("dpi", (RASTER_DPI,))[0]
