"""Marks the suite's slow parts for `make test-fast`, in one place.

The files below train end to end, start processes or Ray, or reproduce papers: minutes each
on 2 cores. `pytest -m "not slow"` leaves them out; `make test` runs everything.
"""

import pytest

SLOW_FILES = {
    # tests/
    "test_cli.py",
    "test_digits_cnn.py",
    "test_distributed.py",
    "test_ensemble.py",
    "test_figures.py",
    "test_fit.py",
    "test_fuzz.py",
    "test_readme.py",
    "test_report.py",
    "test_reproduce.py",
    "test_reproduce_cai.py",
    "test_reproduce_chizat_bach.py",
    "test_reproduce_vardi_soudry.py",
    "test_reproduce_wu.py",
    "test_robustness.py",
    "test_run_directory.py",
    "test_speculation.py",
    "test_sweep.py",
    # docstring examples that start Ray or train several runs
    "sweep.py",
}
SLOW_FOLDERS = {"benchmarks", "papers"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in SLOW_FILES or SLOW_FOLDERS & set(item.path.parts):
            item.add_marker(pytest.mark.slow)
