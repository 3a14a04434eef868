"""The README's "your own model" example runs as written and does what it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    section = README.read_text().split("## Your own model and data", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_example_is_at_most_15_lines():
    assert len(_example().strip().splitlines()) <= 15


def test_the_example_goes_below_1e_400_and_prints_its_certificate_and_reference(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-c", _example()], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr  # the progress display writes to stderr
    reached = re.search(r"training loss (-?[\d.]+) \(log10, mean\) is below", said)
    assert reached and float(reached.group(1)) < -400, said
    assert "eps_rel" in done.stdout and "reference margin (f1)" in done.stdout
    ratio = float(re.search(r"ratio ([\d.]+)", done.stdout).group(1))
    assert 0.5 < ratio <= 1 + 1e-6  # the network cannot beat the F1 maximum
    assert (tmp_path / "margins.png").stat().st_size > 10_000
