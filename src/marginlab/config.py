"""Run configuration: one nested mapping, validated once, with errors that name the field.

A configuration is a plain ``dict`` (from YAML, a preset or Python). :func:`validate` turns
it into a frozen :class:`RunConfig` or raises :class:`ConfigError` naming the bad field,
what it got and what is allowed. ``model`` stays a mapping, checked by
:func:`marginlab.models.build_model`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from marginlab.errors import UserError


class ConfigError(UserError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or impossible."""


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"
    classes: list[int] | None = None
    n_train: int | None = None
    n_test: int | None = None
    subset: str = "first"
    path: str | None = None
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    schedule: str = "loss_based"
    lr: float = 0.01
    alpha: float = 0.1
    alpha_up: float = 2.0**0.2
    alpha_down: float = 2.0**0.1
    min_alpha: float = 1e-50
    loss_ub: float = 600.0
    batch_size: int | None = None
    max_epochs: int = 10000
    target_log10_loss: float | None = -300.0
    chunk_size: int = 4096
    reject_margin_decrease: bool = False
    speculate: bool = False


@dataclass(frozen=True)
class ObserverConfig:
    """A costly measurement (see :mod:`marginlab.measure.observers`) and its period."""

    name: str = ""
    every: int = 100
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LogConfig:
    every: int = 10
    checkpoint_every: int | None = None
    checkpoint_decades: float | None = 5.0
    row_decades: float | None = 1.0
    tensorboard: bool = False
    observers: list[ObserverConfig] = field(default_factory=list)


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    seed: int = 0
    device: str = "auto"
    dtype: str = "float64"
    threads: int | None = None
    loss: str = "cross_entropy"
    data: DataConfig = field(default_factory=DataConfig)
    model: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict:
        """Return the configuration as plain data (what ``config.yaml`` holds)."""
        return dataclasses.asdict(self)


# What each key means, for `marginlab config --list` (a test keeps it complete). The
# ``model`` mapping is the model kind's (see marginlab.models.build.MODEL_KINDS).
KEY_HELP = {
    "name": "the run's name; the default run directory is runs/<name>-<time>",
    "seed": "seed of the initial weights, the data subset and the minibatch order",
    "device": "where tensors live (auto: cuda when available)",
    "dtype": "dtype of weights and steps (margins and losses are always float64)",
    "threads": "CPU threads for torch (null: one thread for small steps, all for large)",
    "loss": "per-sample loss, evaluated in log space",
    "model": "the network: kind plus that kind's keys (listed below)",
    "data.name": "the data set (digits built in; mnist, fashion-mnist, cifar10 from "
    "--data-dir or $MARGINLAB_DATA; synthetic gaussians, xor, clusters; file: your own)",
    "data.classes": "keep these classes and relabel them 0, 1, ... (e.g. [0, 1])",
    "data.n_train": "keep this many training samples (null: all)",
    "data.n_test": "keep this many test samples (null: all)",
    "data.subset": "which samples n_train/n_test keep: the first, or a seeded random draw",
    "data.path": "the file of data.name=file (.npz, .safetensors, .pt or .csv)",
    "data.params": "a synthetic set's parameters, e.g. {n: 200, d: 5, margin: 0.1}",
    "train.schedule": "step-size rule: constant (reads lr), loss_based (alpha / mean loss, "
    "rollback; reads alpha, alpha_up, alpha_down, min_alpha, loss_ub), normalized (alpha / "
    "batch loss), inverse_sqrt (lr / sqrt(t + 2))",
    "train.lr": "learning rate of the constant and inverse_sqrt schedules",
    "train.alpha": "initial step multiplier of loss_based, the step of normalized",
    "train.alpha_up": "loss_based: alpha is multiplied by this after an accepted epoch",
    "train.alpha_down": "loss_based: alpha is divided by this after a rolled-back epoch",
    "train.min_alpha": "loss_based: stop when alpha falls below this",
    "train.loss_ub": "loss_based: abort an attempt whose batch loss exceeds this many times "
    "the last accepted mean loss",
    "train.batch_size": "minibatch size (null: full-batch gradient descent)",
    "train.max_epochs": "stop after this many accepted epochs",
    "train.target_log10_loss": "stop once log10 of the mean training loss is below this "
    "(null: run max_epochs)",
    "train.chunk_size": "samples per forward pass when evaluating the full training set",
    "train.reject_margin_decrease": "loss_based: also roll back an epoch that lowered the "
    "smoothed margin",
    "train.speculate": "loss_based with minibatches on a CPU: run retries ahead in a second "
    "process (same trajectory, two cores)",
    "log.every": "log a metrics row every this many epochs (and at new loss levels: row_decades)",
    "log.checkpoint_every": "save the latest weights every this many epochs (null: log.every)",
    "log.checkpoint_decades": "keep the first checkpoint below 1e-k, 1e-2k, ... for k this "
    "(null: none)",
    "log.row_decades": "also log a row at the first epoch below 1e-k, 1e-2k, ... for k this "
    "(null: only every log.every epochs)",
    "log.tensorboard": "also write the metrics as TensorBoard scalars",
    "log.observers": "costly measurements and their period, e.g. [{name: alignment, every: 100}]",
    "log.observers.name": "the observer (see marginlab.measure.observers.OBSERVERS)",
    "log.observers.every": "run it every this many epochs",
    "log.observers.options": "keyword arguments of the observer",
}


def _type_text(annotation: Any) -> str:
    """``int | null``, ``list[int] | null``, ``list of mappings``: a type as a user writes it."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_type_text(arg) for arg in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        (inner,) = typing.get_args(annotation)
        return "list of mappings" if dataclasses.is_dataclass(inner) else f"list[{inner.__name__}]"
    return "null" if annotation is type(None) else annotation.__name__


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def describe_keys() -> list[tuple[str, str, str, str]]:
    """Every configuration key as ``(key, type, default, meaning)``, in config order.

    Examples
    --------
    >>> rows = {key: rest for key, *rest in describe_keys()}
    >>> rows["train.batch_size"]
    ['int | null', 'null', 'minibatch size (null: full-batch gradient descent)']
    """
    rows = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            key = f"{prefix}{item.name}"
            annotation = hints[item.name]
            if dataclasses.is_dataclass(annotation):
                walk(annotation, f"{key}.")
                continue
            default = (
                item.default_factory()
                if item.default_factory is not dataclasses.MISSING
                else item.default
            )
            kind = " | ".join(CHOICES[key]) if key in CHOICES else _type_text(annotation)
            rows.append((key, kind, _value_text(default), KEY_HELP[key]))
            if typing.get_origin(annotation) is list:
                (inner,) = typing.get_args(annotation)
                if dataclasses.is_dataclass(inner):
                    walk(inner, f"{key}.")

    walk(RunConfig, "")
    return rows


CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "dtype": ("float64", "float32"),
    "loss": ("exponential", "logistic", "cross_entropy"),
    "data.subset": ("first", "random"),
    "train.schedule": ("constant", "loss_based", "normalized", "inverse_sqrt", "custom"),
}
POSITIVE = {
    "train.lr",
    "train.alpha",
    "train.min_alpha",
    "train.batch_size",
    "log.observers.every",
    "threads",
    "train.chunk_size",
    "data.n_train",
    "data.n_test",
    "log.every",
    "log.checkpoint_every",
    "log.checkpoint_decades",
    "log.row_decades",
}
ABOVE_ONE = {"train.alpha_up", "train.alpha_down", "train.loss_ub"}
NON_NEGATIVE = {"seed", "train.max_epochs"}
# What torch takes: a seed is a 64-bit integer, a thread count a C int (and far fewer
# threads than this already only wait for each other).
AT_MOST = {"seed": 2**63 - 1, "threads": 1024}


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")


_DECIMAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(value: Any, annotation: Any, path: str) -> Any:
    """Check ``value`` against a type annotation; ints, and numbers written like ``1e-3``,
    are accepted where floats are."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(annotation):
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _coerce(value, inner[0], path)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation)
        return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    # PyYAML (YAML 1.1) reads an exponent without a dot, like 1e-3, as a string.
    if annotation is float and isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return float(value)
    if annotation is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, path)
    if not isinstance(value, annotation) or (annotation is not bool and isinstance(value, bool)):
        raise ConfigError(
            f"{path}: expected {_type_name(annotation)}, got {value!r} ({type(value).__name__})"
        )
    return value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"{where}{unknown[0]}: unknown key; allowed keys here: {', '.join(sorted(hints))}"
        )
    values = {}
    for name, annotation in hints.items():
        if name not in raw:
            continue
        path = f"{prefix}.{name}" if prefix else name
        value = _coerce(raw[name], annotation, path)
        _check_value(path, value)
        values[name] = value
    return cls(**values)


def _check_value(path: str, value: Any) -> None:
    path = re.sub(r"\[\d+\]", "", path)  # list items share their field's rules
    if path in CHOICES and value not in CHOICES[path]:
        raise ConfigError(f"{path}: {value!r} is not allowed; expected one of {CHOICES[path]}")
    # The name makes the default run directory, runs/<name>-<time>: it must stay inside.
    if path == "name" and (value in ("", ".", "..") or any(c in value for c in "/\\\0")):
        raise ConfigError(
            f"name: {value!r} must be a plain name, without path separators; choose where "
            "the run goes with --out"
        )
    if value is None or isinstance(value, (bool, str, list, dict)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: must be finite, got {value!r}")
    if path in POSITIVE and value <= 0:
        raise ConfigError(f"{path}: must be positive, got {value!r}")
    if path in ABOVE_ONE and value <= 1:
        raise ConfigError(f"{path}: must be greater than 1, got {value!r}")
    if path in NON_NEGATIVE and value < 0:
        raise ConfigError(f"{path}: must be non-negative, got {value!r}")
    if path in AT_MOST and value > AT_MOST[path]:
        raise ConfigError(f"{path}: must be at most {AT_MOST[path]}, got {value!r}")


def validate(raw: dict) -> RunConfig:
    """Validate a configuration mapping.

    Parameters
    ----------
    raw : dict
        Nested mapping; missing keys take their defaults.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        Naming the first bad field and what it allows.

    Examples
    --------
    >>> validate({"model": {"kind": "mlp"}, "train": {"batch_size": 100}}).train.batch_size
    100
    >>> validate({"train": {"batch_sise": 100}})
    Traceback (most recent call last):
    ...
    marginlab.config.ConfigError: train.batch_sise: unknown key; allowed keys here: ...
    """
    config = _build(RunConfig, raw, "")
    if not config.model:
        raise ConfigError("model: missing; give at least model.kind (see `marginlab presets`)")
    if (config.data.path is None) == (config.data.name == "file"):
        raise ConfigError(
            "data.path: give it exactly for data.name=file (your own .npz, .safetensors, .pt "
            f"or .csv file); got name={config.data.name!r}, path={config.data.path!r}"
        )
    train = config.train
    if train.reject_margin_decrease and train.schedule != "loss_based":
        raise ConfigError(
            "train.reject_margin_decrease: only the loss_based schedule rolls back; "
            "set train.schedule=loss_based or drop the option"
        )
    if train.speculate and (train.schedule != "loss_based" or train.batch_size is None):
        raise ConfigError(
            "train.speculate: runs retries ahead of time in a second process, which "
            "needs rollbacks and minibatches; set train.schedule=loss_based and "
            "train.batch_size, or drop the option"
        )
    return config


# The step-size keys each schedule reads (train.*); the others change nothing under it.
SCHEDULE_KEYS = {
    "constant": ("lr",),
    "inverse_sqrt": ("lr",),
    "normalized": ("alpha",),
    "loss_based": ("alpha", "alpha_up", "alpha_down", "min_alpha", "loss_ub"),
    "custom": (),
}
_STEP_KEYS = {key for keys in SCHEDULE_KEYS.values() for key in keys}


def ignored_keys(config: RunConfig, keys: list[str]) -> list[str]:
    """Say which of ``keys`` (dotted names, e.g. from ``--set``) the configuration's
    schedule does not read, each with what it would affect.

    Examples
    --------
    >>> config = validate({"model": {"kind": "mlp"}, "train": {"schedule": "loss_based"}})
    >>> ignored_keys(config, ["train.lr", "train.alpha", "seed"])  # doctest: +ELLIPSIS
    ['train.lr: the loss_based schedule does not read it (it reads train.alpha, ...']
    """
    schedule = config.train.schedule
    reads = SCHEDULE_KEYS.get(schedule, ())
    found = []
    for key in keys:
        section, _, name = key.partition(".")
        if section == "train" and name in _STEP_KEYS and name not in reads:
            readers = [s for s, names in SCHEDULE_KEYS.items() if name in names]
            found.append(
                f"{key}: the {schedule} schedule does not read it (it reads "
                f"{', '.join('train.' + k for k in reads) or 'nothing of train.*'}); "
                f"{key} sets the step of train.schedule={' or '.join(readers)}"
            )
    return found


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``key.path=value`` (the value read as YAML, so ``100``, ``null``, ``[0, 1]``).

    Examples
    --------
    >>> parse_assignment("data.classes=[0, 1]")
    ('data.classes', [0, 1])
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or "" in key.split("."):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.batch_size=100")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ConfigError(
            f"--set {text!r}: the value of {key} is not valid YAML: {detail}"
        ) from None


def apply_overrides(raw: dict, assignments: list[str]) -> dict:
    """Return a copy of ``raw`` with ``key.path=value`` assignments applied.

    Examples
    --------
    >>> apply_overrides({"train": {"lr": 0.1}}, ["train.lr=0.5"])["train"]["lr"]
    0.5
    """
    result = copy.deepcopy(raw)
    for text in assignments:
        key, value = parse_assignment(text)
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def load_config_file(path: str | Path) -> dict:
    """Read a YAML configuration file into a mapping (with the safe loader: no tags that
    build Python objects).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> spec = pathlib.Path(tempfile.mkdtemp()) / "bad.yaml"
    >>> _ = spec.write_text("model: [mlp")
    >>> load_config_file(spec)
    Traceback (most recent call last):
    ...
    marginlab.config.ConfigError: .../bad.yaml: not valid YAML: ...line 1, column 12...
    """
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a text file ({error})") from None
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ConfigError(f"{path}: not valid YAML: {detail}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    return raw
