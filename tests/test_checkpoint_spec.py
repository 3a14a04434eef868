"""Checkpoint specs: one parser, exact for loss levels that float64 cannot hold."""

import math

import pytest

from marginlab.runs.checkpoint_spec import CheckpointSpec, parse_checkpoint


@pytest.mark.parametrize(
    ("spec", "epoch", "log10_level"),
    [
        ("last", None, None),
        ("500", 500, None),
        ("0", 0, None),  # the initialization
        (500, 500, None),
        ("1e-20", None, -20.0),
        (1e-20, None, -20.0),
        ("1e-400", None, -400.0),  # float("1e-400") is 0: a float parser would lose it
        ("1e-882", None, -882.0),
        ("3e-1000", None, math.log10(3) - 1000),
        ("0.5", None, math.log10(0.5)),
        (" 1E-30 ", None, -30.0),
    ],
)
def test_specs_parse_exactly(spec, epoch, log10_level):
    parsed = parse_checkpoint(spec)
    assert parsed.epoch == epoch
    if log10_level is None:
        assert parsed.log10_level is None
    else:
        assert parsed.log10_level == pytest.approx(log10_level, rel=1e-15, abs=1e-12)
    assert parse_checkpoint(parsed) is parsed
    assert isinstance(parsed, CheckpointSpec)


@pytest.mark.parametrize("spec", ["latest", "0.0", "-1e-5", "nan", "inf", "", "1e-400x", -3, True])
def test_bad_specs_are_refused_naming_the_forms(spec):
    with pytest.raises(ValueError, match=r"checkpoint: .*'last', an epoch .* or a loss level"):
        parse_checkpoint(spec)
