"""Every claim can fail: each criterion of every paper is fed an input that a false statement
or a broken trainer would produce (it must FAIL) and one that satisfies the claim (PASS).

The inputs live in ``tests/controls_<paper>.py`` as ``CONTROLS = {key: (passing, failing)}``,
each a list of ``(label, measurements)``. A claim without both fails the walk.
"""

from __future__ import annotations

import importlib

import pytest

from marginlab.experiments.claims import FAIL, PASS
from marginlab.experiments.reproduce import PAPERS, claim_specs

SPECS = claim_specs("all")


def _controls(paper: str) -> dict:
    return importlib.import_module(f"controls_{PAPERS[paper][1]}").CONTROLS


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.paper}/{s.key}" for s in SPECS])
def test_every_claim_passes_its_satisfying_input_and_fails_its_falsifying_ones(spec):
    controls = _controls(spec.paper)
    assert spec.key in controls, f"{spec.paper}/{spec.key} has no negative control"
    passing, failing = controls[spec.key]
    assert passing and failing, f"{spec.paper}/{spec.key} needs both a passing and a failing input"
    for label, measured in passing:
        claim = spec.judge(**measured)
        assert claim.verdict == PASS, f"{label}: {claim.ours}"
    for label, measured in failing:
        claim = spec.judge(**measured)
        assert claim.verdict == FAIL, f"{label} should fail: {claim.ours}"


@pytest.mark.parametrize("paper", list(PAPERS))
def test_every_control_belongs_to_a_declared_claim(paper):
    declared = {s.key for s in SPECS if s.paper == paper}
    assert set(_controls(paper)) <= declared


def test_claims_are_unique_and_say_where_they_come_from():
    keys = [(s.paper, s.key) for s in SPECS]
    assert len(keys) == len(set(keys))
    for spec in SPECS:
        assert spec.source.split(" (")[0] in ("paper", "paper, submission", "ours"), spec.key
        assert spec.tolerance and spec.statement, spec.key
