"""The package's shape: layers only look down, and importing it changes no global state."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is missing: install the test extra (pip install -e '.[test]')")
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


# Imports every public module, runs an attack and its figure, and reports what changed.
PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import matplotlib, torch

    def state():
        return {"backend": matplotlib.get_backend(), "threads": torch.get_num_threads(),
                "rng": torch.get_rng_state().sum().item(),
                "dtype": str(torch.get_default_dtype())}

    before = state()
    import marginlab
    names = [m.name for m in pkgutil.walk_packages(marginlab.__path__, "marginlab.")
             if not any(part.startswith("_") for part in m.name.split("."))]
    for name in names:
        importlib.import_module(name)
    imported = state()
    from marginlab.measure.attacks import run_attack
    from marginlab.plots import plot_boundary
    model = torch.nn.Linear(2, 2, bias=False).double()
    x = torch.rand(6, 2, dtype=torch.float64)
    y = model(x).argmax(1)
    made = state()
    run_attack(model, x, y, attack="deepfool", progress=False)
    from matplotlib.figure import Figure
    plot_boundary(Figure().subplots(), model, x, y, grid=10)
    print(json.dumps({"before": before, "imported": imported, "made": made, "after": state(),
                      "modules": len(names), "pyplot": "matplotlib.pyplot" in sys.modules}))
    """
)


def test_importing_every_public_module_and_attacking_changes_no_global_state():
    """A notebook's inline backend (here the svg backend, which no code of ours picks)
    survives importing everything and running an attack; so do torch's threads and RNG."""
    import json
    import os

    env = {**os.environ, "MPLBACKEND": "svg"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["before"]["backend"] == "svg"
    assert report["imported"] == report["before"]
    assert report["after"] == report["made"]  # the attack and the figure too
    assert report["after"]["backend"] == "svg"
    assert report["modules"] > 60
    assert not report["pyplot"]  # figures are built on Figure, never through pyplot
