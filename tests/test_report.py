"""The HTML report: self-contained, every figure embedded, and it renders in Chromium."""

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from marginlab import load_run
from marginlab.cli import main
from marginlab.numerics import format_log10
from marginlab.report import REPORT_FIGURES, write_report
from marginlab.results.kkt import KKTTable
from marginlab.results.robustness import RobustnessReport

CHROMIUM = Path("/usr/bin/chromium")
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def runs(recorded_runs):
    """A digits MLP run with KKT and robustness results beside it, and a 2-d XOR run."""
    return recorded_runs


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    return write_report(runs, tmp_path_factory.mktemp("out") / "report.html")


def test_report_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"https?:", text, flags=re.IGNORECASE)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_embeds_every_figure_as_a_valid_png(report):
    text = report.read_text(encoding="utf-8")
    for what in REPORT_FIGURES:
        assert f'id="figure-{what}"' in text, what
    images = IMG.findall(text)
    assert len(images) == len(REPORT_FIGURES)
    for data in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG")


def test_report_shows_setup_and_summary_of_every_run(runs, report):
    text = report.read_text(encoding="utf-8")
    for path in runs:
        run = load_run(path)
        last = run.store.metrics()[-1]
        assert str(path) in text
        assert format_log10(last["log10_loss_mean"], 3) in text
        assert f"{last['normalized_margin']:.4g}" in text
        assert run.environment["torch"] in text and run.environment["started"] in text
    assert "config.yaml of digits" in text and "config.yaml of xor" in text


def test_report_notes_missing_results_and_defaults_to_the_run_directory(runs):
    path = write_report(runs[1:])
    assert path == runs[1] / "report.html"
    text = path.read_text(encoding="utf-8")
    assert "kkt: no KKT results" in text and "robustness: no robustness results" in text
    assert len(IMG.findall(text)) == len(REPORT_FIGURES) - 2


def test_report_shows_every_record_of_a_run(runs, report):
    text = report.read_text(encoding="utf-8")
    run = load_run(runs[0])
    assert "Results of digits" in text and "KKT certificates (kkt.json)" in text
    for row in KKTTable.load(runs[0] / "kkt.json").rows:
        if row.result is not None:
            assert f"{row.result.certificates[0].eps_rel:.3g}" in text
    assert "first -&gt; last over" in text  # the trend, once there are three checkpoints
    robustness = RobustnessReport.find(run)[0]
    assert f"Robustness, {robustness.setting}" in text
    assert "exact sign test" in text or "No sample changed" in text
    for median in robustness.table()["median_distance"]:
        assert f"{median:.4g}" in text


def test_report_command(runs, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", str(runs[0]), "--out", str(out)]) == 0
    assert len(IMG.findall(out.read_text(encoding="utf-8"))) == len(REPORT_FIGURES) - 1


# Writes each image's loaded size into the DOM once the page has loaded; --dump-dom prints it.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  for (const img of images) {
    const box = img.getBoundingClientRect();
    img.setAttribute("data-probe", [img.complete, img.naturalWidth, img.naturalHeight,
                                     Math.round(box.width), Math.round(box.height)].join(" "));
  }
  document.body.setAttribute("data-probed", String(images.length));
});
</script>"""
PROBED = re.compile(r'data-probe="(true|false) (\d+) (\d+) (\d+) (\d+)"')


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    shutil.rmtree(profile, ignore_errors=True)
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1200,3000",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium not installed (/usr/bin/chromium, Debian package `chromium`)",
)
def test_report_renders_in_headless_chromium_with_every_figure_loaded(report, tmp_path):
    page = tmp_path / "probed.html"
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    dom = chromium(tmp_path, page, "--virtual-time-budget=10000", "--dump-dom").stdout
    assert f'data-probed="{len(REPORT_FIGURES)}"' in dom
    probes = PROBED.findall(dom)
    assert len(probes) == len(REPORT_FIGURES)
    for complete, *sizes in probes:
        assert complete == "true" and all(int(size) > 0 for size in sizes), probes

    shot = tmp_path / "report.png"
    chromium(tmp_path, report, f"--screenshot={shot}")
    with Image.open(shot) as image:
        grey = image.convert("L")
        assert image.size == (1200, 3000)
        assert grey.getextrema()[0] < 50  # dark text and curves were drawn
