"""Random input at the command line: accepted and valid, or refused in one line (status 2)
that names the field, file or argument; never a traceback.

Everything runs in-process on cheap paths: ``train`` is replaced by a stand-in that builds
the run (data, model, schedule: every check a real run makes before its first step) and
stops there, and the checkpoint specs go to a tiny finished run.
"""

import dataclasses
import os
import re
import resource
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from marginlab.cli import _one_line, main
from marginlab.config import ConfigError, RunConfig, apply_overrides, validate
from marginlab.training import engine
from marginlab.training.assembly import assemble

BASE = {
    "name": "fuzz",
    "seed": 0,
    "loss": "exponential",
    "threads": 1,
    "data": {"name": "xor"},
    "model": {"kind": "two_layer", "width": 8},
    "train": {"max_epochs": 20},
    "log": {"every": 5},
}
# Locally every run draws new inputs; CI draws the same ones each time, so that a merge is
# never refused by an input no one saw before.
EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _config_keys(cls: type = RunConfig, prefix: str = "") -> list[str]:
    keys = []
    for name, annotation in typing.get_type_hints(cls).items():
        keys.append(prefix + name)
        if dataclasses.is_dataclass(annotation):
            keys += _config_keys(annotation, f"{prefix}{name}.")
    return keys


REAL_KEYS = _config_keys() + [
    "model.kind",
    "model.width",
    "model.hidden",
    "model.activation",
    "model.bias",
    "model.train",
    "data.params.n",
    "data.params.noise",
    "log.observers",
]

# Values as a user types them after `=`: numbers of every size and sign, YAML's special
# floats, words, lists, mappings, and text that is not YAML at all.
scalars = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.integers(min_value=-3, max_value=64).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            ".nan",
            ".inf",
            "-.inf",
            "1e999",
            "1e-3",
            "2E2",
            "1e",
            "0x10",
            "true",
            "null",
            "~",
            "",
            "yes",
            "no",
            "2020-01-01",
            "cpu",
            "cuda",
            "float32",
            "loss_based",
            "constant",
            "relu",
            "mlp",
            "two_layer",
            "digits",
            "mnist",
            "xor",
            "first",
            "random",
            "both",
            "output",
            "none",
        ]
    ),
    st.text(max_size=12),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
    st.dictionaries(st.sampled_from(["name", "every", "x", "kind"]), scalars, max_size=2).map(
        lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"
    ),
    st.sampled_from(["[1,", "{a", ": :", "'open", "[[]", "!!python/object:os.system x", "- a"]),
)
keys = st.one_of(
    st.sampled_from(REAL_KEYS),
    st.sampled_from(REAL_KEYS).map(lambda k: k + ".sub"),
    st.text(alphabet="abcdefghij._", min_size=1, max_size=10),
    st.text(max_size=6),
)
# Settings a user changes often, with values that are fine, so that accepted inputs mix
# with refused ones.
sensible = st.sampled_from(
    [
        "seed=3",
        "train.lr=0.5",
        "train.alpha=1e-2",
        "train.max_epochs=3",
        "log.every=2",
        "train.schedule=constant",
        "train.batch_size=2",
        "loss=logistic",
        "dtype=float32",
        "model.width=4",
        "model.activation=relu",
        "data.params.n=8",
        "data.params.noise=0.1",
        "train.target_log10_loss=null",
        "log.checkpoint_decades=2",
        "device=cpu",
        "name=x",
    ]
)
assignments = st.lists(
    st.one_of(sensible, st.tuples(keys, values).map(lambda kv: f"{kv[0]}={kv[1]}")),
    max_size=3,
)


def _prefixes(key: str, shown=str) -> list[str]:
    """The field a message may name for ``key``, and its sections (``shown`` as printed)."""
    parts = key.strip().split(".")
    return [shown(".".join(parts[: i + 1])) for i in range(len(parts)) if parts[i]]


class _Accepted(BaseException):
    """Raised by the stand-in for training once the run is built: the input was valid."""


def _build_only(config, out=None, *, data_dir=None, progress=True):
    assert isinstance(config, RunConfig)
    assemble(config, data_dir)
    raise _Accepted


@contextmanager
def _memory_cap(extra: int) -> Iterator[None]:
    """Cap this process's address space at ``extra`` bytes above what it uses now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(re.search(r"VmSize:\s+(\d+) kB", Path("/proc/self/status").read_text())[1])
    cap = used * 1024 + extra
    resource.setrlimit(
        resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard)
    )
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture
def no_training(monkeypatch, tmp_path):
    monkeypatch.setattr(engine, "train", _build_only)
    # Real data sets are not found here, so a fuzzed data.name=mnist fails fast.
    monkeypatch.setenv("MARGINLAB_DATA", str(tmp_path / "no-data"))
    # A fuzzed size (model.width=300000000) may ask for more memory than the machine has:
    # under this cap its allocation fails and is refused like any other bad value, instead
    # of the kernel killing the whole test run.
    with _memory_cap(4 * 2**30):
        yield


def _refused_in_one_line(capsys, status: int) -> str:
    """The one error line of a refused input. Notes on keys of the spec that its schedule
    does not read may come before it: they are true of the spec as written."""
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.strip().splitlines() if not line.startswith("marginlab: note: ")]
    assert len(lines) == 1 and lines[0].startswith("marginlab: error: "), err
    return lines[0]


@EXAMPLES
@given(pairs=assignments)
def test_set_pairs_at_the_validator_are_valid_or_name_the_field(pairs):
    try:
        config = validate(apply_overrides(BASE, pairs))
    except ConfigError as error:
        named = [p for text in pairs for p in _prefixes(text.partition("=")[0])]
        assert any(name in str(error) for name in named + ["--set"]), (pairs, str(error))
    else:
        event("accepted")
        assert validate(config.to_dict()) == config  # what is accepted is a whole config


@EXAMPLES
@given(pairs=assignments)
def test_set_pairs_at_the_command_line_build_a_run_or_are_refused(
    pairs, no_training, tmp_path, capsys
):
    spec = tmp_path / "base.yaml"
    spec.write_text(yaml.safe_dump(BASE))
    out = tmp_path / "out"
    argv = ["run", str(spec), "--out", str(out)]
    for text in pairs:
        argv += ["--set", text]
    try:
        status = main(argv)
    except _Accepted:
        event("accepted")
        return
    line = _refused_in_one_line(capsys, status)
    named = [p for text in pairs for p in _prefixes(text.partition("=")[0], _one_line)]
    assert any(name in line for name in named + ["--set", "argument"]), (pairs, line)
    assert not out.exists()  # refused before anything was written


documents = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from([k.split(".")[-1] for k in REAL_KEYS]), st.text(max_size=6)),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


def _with(pairs: list[str]) -> dict | list[str]:
    """The base configuration with ``pairs`` set, as a document; the pairs themselves when
    they do not make one."""
    try:
        return apply_overrides(BASE, pairs)
    except ConfigError:
        return pairs


yaml_texts = st.one_of(
    assignments.map(_with).map(yaml.safe_dump),  # a whole configuration, perhaps damaged
    documents.map(yaml.safe_dump),  # any YAML document
    st.text(max_size=60),  # any text
)


@EXAMPLES
@given(text=yaml_texts)
def test_yaml_documents_build_a_run_or_are_refused(text, no_training, tmp_path, capsys):
    capsys.readouterr()  # an accepted example before this one may have left a note there
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    try:
        status = main(["run", str(spec), "--out", str(tmp_path / "out")])
    except _Accepted:
        event("accepted")
        return
    line = _refused_in_one_line(capsys, status)
    document = yaml.safe_load(text) if status == 2 and "not valid YAML" not in line else None
    fields = _keys_of(document) + [k.split(".")[0] for k in REAL_KEYS]
    assert str(spec) in line or any(f"{name}" in line for name in fields), (text, line)


def _keys_of(document) -> list[str]:
    if isinstance(document, dict):
        return [str(k) for k in document] + [k for v in document.values() for k in _keys_of(v)]
    if isinstance(document, list):
        return [k for v in document for k in _keys_of(v)]
    return []


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return engine.train(BASE, tmp_path_factory.mktemp("fuzz") / "run", progress=False)


checkpoint_specs = st.one_of(
    st.sampled_from(
        [
            "last",
            "all",
            "0",
            "5",
            "20",
            "7",
            "1e-1",
            "1e-5",
            "1e-882",
            "0.5",
            "-1",
            "0",
            "nan",
            "inf",
            "-inf",
            "1e",
            "",
            " ",
            "1e-99999999999",
            "5.0",
        ]
    ),
    st.integers(min_value=-5, max_value=10**12).map(str),
    st.floats().map(repr),
    st.text(max_size=10),
)


@settings(EXAMPLES, max_examples=60)
@given(spec=checkpoint_specs)
def test_checkpoint_specs_of_kkt_select_or_are_refused(tiny_run, spec, capsys):
    status = main(["kkt", str(tiny_run), f"--checkpoint={spec}"])
    if status == 0:
        event("accepted")
        capsys.readouterr()
        return
    line = _refused_in_one_line(capsys, status)
    assert "checkpoint" in line, line


@settings(EXAMPLES, max_examples=40)
@given(spec=checkpoint_specs)
def test_checkpoint_specs_of_resume_continue_or_are_refused(tiny_run, spec, capsys):
    status = main(["resume", str(tiny_run), f"--from-checkpoint={spec}"])
    if status == 0:
        event("accepted")
        capsys.readouterr()
        assert (tiny_run / "status.json").read_text().count("finished") == 1
        return
    line = _refused_in_one_line(capsys, status)
    assert "checkpoint" in line, line


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    """A tiny run on images in [0, 1], which attacks need."""
    config = {
        **BASE,
        "data": {"name": "digits", "classes": [0, 1], "n_train": 20},
        "model": {"kind": "mlp", "hidden": [4]},
    }
    return engine.train(config, tmp_path_factory.mktemp("fuzz") / "images", progress=False)


@settings(EXAMPLES, max_examples=25)
@given(spec=checkpoint_specs)
def test_checkpoint_specs_of_attack_select_or_are_refused(image_run, spec, capsys):
    argv = ["attack", str(image_run), "--checkpoints", spec, "--n", "1", "--attack", "deepfool"]
    status = main(argv)
    if status == 0:
        event("accepted")
        capsys.readouterr()
        return
    line = _refused_in_one_line(capsys, status)
    assert "checkpoint" in line, line
