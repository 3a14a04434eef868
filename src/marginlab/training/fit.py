"""``fit``: train any ``torch.nn.Module`` on any tensors, with marginlab's engine.

The run is an ordinary run directory: the metrics, the checkpoints at loss decades, the
tensors it trained on and a description of the network, so that ``marginlab resume``,
``kkt``, ``reference``, ``attack``, ``report`` and ``plot`` open it like any other. Without
``out`` it lives in a temporary directory that goes away with the returned run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import torch
from torch import nn

from marginlab.build import DTYPES
from marginlab.config import ConfigError, validate
from marginlab.data import Dataset
from marginlab.data.files import file_bytes
from marginlab.losses import get_loss
from marginlab.models.declare import declare_homogeneity, measure_homogeneity
from marginlab.models.describe import describe
from marginlab.runs.run import Run, load_run
from marginlab.training.assembly import Assembly
from marginlab.training.engine import start_run, start_runs
from marginlab.training.schedules import Constant, InverseSqrt, LossBased, Normalized, Schedule
from marginlab.training.trace import Columns, Trace

DATA_FILE = "data.safetensors"
# tensors or arrays, or (replicas) a list with one per model
Tensors = torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]


def fit(
    model: nn.Module | Sequence[nn.Module],
    x: Tensors,
    y: Tensors,
    *,
    loss: str = "cross_entropy",
    schedule: Schedule | Sequence[Schedule] | None = None,
    target_loss: float | str | None = None,
    max_epochs: int = 10_000,
    batch_size: int | None = None,
    x_test: torch.Tensor | np.ndarray | None = None,
    y_test: torch.Tensor | np.ndarray | None = None,
    observers: Sequence[str | dict] = (),
    callback: Callable[[dict], object] | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    log_every: int = 10,
    checkpoint_decades: float | None = 5.0,
    row_decades: float | None = 1.0,
    chunk_size: int = 4096,
    threads: int | None = None,
    progress: bool = True,
    name: str = "fit",
    trace: bool | Columns = False,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    batched: bool | None = None,
) -> Run | list[Run]:
    """Train ``model`` on ``(x, y)`` far past float64's range and measure its margins.

    Parameters
    ----------
    model : nn.Module
        Any network; it is trained in place (its ``requires_grad=False`` parameters stay
        frozen), in its own dtype and on its own device. A zoo model declares its
        homogeneity order; any other module's order and layer degrees are measured on a few
        training samples (:func:`marginlab.models.check_homogeneity`), and a module that is
        not homogeneous trains with the order-dependent quantities null.
        A list of modules trains them as replicas (below).
    x, y : tensor or array
        Inputs ``(N, ...)`` and class indices ``(N,)`` (``0``/``1`` for a one-output model).
        With replicas, one pair for all or a list with one per replica.
    loss : {"cross_entropy", "logistic", "exponential"}
    schedule : schedule, optional
        ``LossBased()`` (default), ``Constant(lr)``, ``Normalized(alpha)``,
        ``InverseSqrt(lr)``, or an object of your own with the same three methods. With
        replicas, one for all or a list with one per replica (e.g. a step size each).
    target_loss : float or str, optional
        Stop once the mean training loss is below it. Levels below float64 are written as
        text: ``"1e-400"`` (the float ``1e-400`` is 0).
    max_epochs : int
        Stop after this many accepted epochs.
    batch_size : int, optional
        Minibatch SGD with this batch; None is full-batch gradient descent.
    x_test, y_test : tensor or array, optional
        A test split; its accuracy and loss are logged.
    observers : sequence
        Costly measurements by name (``"alignment"``, ``"kkt"``, ...) or as
        ``{"name": ..., "every": ..., "options": {...}}``.
    callback : callable, optional
        Called with each logged metrics row; return True to stop after that epoch.
    seed : int
        Seeds the minibatch shuffles.
    out : path, optional
        Run directory to write; default a temporary one removed with the returned run.
    log_every, checkpoint_decades, row_decades, chunk_size, threads
        As ``log.every``, ``log.checkpoint_decades``, ``log.row_decades``,
        ``train.chunk_size`` and ``threads`` of a configuration (``threads`` None: one
        thread for small steps). ``*_decades=None``: no checkpoints, or no extra rows, at
        loss levels (for a run that needs only its end while its loss falls decades an
        epoch).
    progress : bool
        Show the progress line and the final summary.
    name : str
        The run's name.
    device, dtype : optional
        Move the model there first (``"cuda"``, ``"float64"``, ...); by default it trains
        where it is, in its own dtype. The tensors follow the model.
    trace : bool or callable
        Also keep, in memory, every accepted epoch's ``epoch``, ``log_loss_mean`` (natural
        log), ``q_min`` (smallest margin) and ``norm`` (``||theta||``, trainable parameters)
        as ``run.trace``, a DataFrame: the whole trajectory at the cost of one norm per step,
        where the metrics rows come every ``log_every`` epochs. A callable is called with
        the model after every accepted epoch (without gradients) and the mapping it returns
        adds that epoch's columns of your own, e.g. ``lambda net: {"w": net.weight.norm()}``.
    batched : bool, optional
        Replicas only (full batch, one architecture): compute every replica's step in one
        vmapped pass over their stacked parameters (``torch.func``) rather than in turn.
        Default: on a GPU. On a CPU it pays only for tiny problems, from about 4
        replicas: for Cai et al.'s 8-neuron network on 40 points, a replica's step costs
        1.43x its time in turn with 2 replicas, 0.74x with 4, 0.25x with 16 and 0.12x with
        64; for the ``digits-mlp`` preset (64-64 MLP, 1797 samples) 1.8x with 8. Each
        replica's run is the same either way, to rounding. The model must run under
        ``torch.func.vmap``; one that cannot is refused with a ``ConfigError``.

    Returns
    -------
    Run or list of Run
        ``run.metrics`` (a DataFrame, as ``metrics.jsonl``), ``run.model`` (the trained
        module), ``run.load_model(level)`` for a checkpoint, ``run.path``. With replicas,
        one run each, in order; ``out`` then holds them as ``out/<name>-<k>``.

    Replicas are independent runs trained together: each has its own data (or the shared
    data), schedule, stopping rule and run directory, exactly as if trained alone, and
    ends when its own rule says so.

    Examples
    --------
    >>> import torch
    >>> from marginlab import LossBased, fit
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.cat([torch.randn(20, 2, generator=g) + 3, torch.randn(20, 2, generator=g) - 3])
    >>> y = torch.cat([torch.ones(20), torch.zeros(20)]).long()
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8, bias=False), torch.nn.ReLU(),
    ...                           torch.nn.Linear(8, 1, bias=False)).double()
    >>> run = fit(net, x, y, loss="logistic", schedule=LossBased(), target_loss="1e-50",
    ...           progress=False)
    >>> bool(run.metrics["log10_loss_mean"].iloc[-1] < -50), run.model is net
    (True, True)

    Three step sizes at once, as replicas of one linear model:

    >>> nets = [torch.nn.Linear(2, 1, bias=False).double() for _ in range(3)]
    >>> runs = fit(nets, x, y, loss="logistic", schedule=[Constant(e) for e in (1, 2, 4)],
    ...            max_epochs=50, progress=False, batched=True)
    >>> [int(run.metrics["epoch"].iloc[-1]) for run in runs]
    [50, 50, 50]
    """
    if not isinstance(model, nn.Module):
        return _fit_replicas(
            list(model), x, y, loss=loss, schedule=schedule, target_loss=target_loss,
            max_epochs=max_epochs, batch_size=batch_size, x_test=x_test, y_test=y_test,
            observers=observers, callback=callback, seed=seed, out=out, log_every=log_every,
            checkpoint_decades=checkpoint_decades, row_decades=row_decades,
            chunk_size=chunk_size, threads=threads, name=name, trace=trace, device=device,
            dtype=dtype, batched=batched,
        )  # fmt: skip
    parts = _assemble(
        model, x, y, x_test, y_test, loss=loss, schedule=schedule, target_loss=target_loss,
        max_epochs=max_epochs, batch_size=batch_size, observers=observers, seed=seed,
        log_every=log_every, checkpoint_decades=checkpoint_decades, row_decades=row_decades,
        chunk_size=chunk_size, threads=threads, name=name, device=device, dtype=dtype,
    )  # fmt: skip
    path, temporary = _run_dir(out, name)
    rows = _trace(trace)
    try:
        start_run(
            path,
            lambda: parts,
            progress=progress,
            callback=callback,
            files={DATA_FILE: lambda: _data_file(parts)},
            trace=rows,
            durable=not temporary,
        )
    except BaseException:
        if temporary:
            shutil.rmtree(path.parent, ignore_errors=True)
        raise
    run = _finished_run(path, parts, rows)
    if temporary:
        weakref.finalize(run, shutil.rmtree, path.parent, True)
    return run


def _fit_replicas(
    models: list[nn.Module],
    x: Tensors,
    y: Tensors,
    *,
    schedule: Schedule | Sequence[Schedule] | None,
    x_test: Tensors | None,
    y_test: Tensors | None,
    callback: Callable[[dict], object] | None,
    out: str | os.PathLike | None,
    name: str,
    trace: bool | Columns,
    batched: bool | None,
    **settings: object,
) -> list[Run]:
    """:func:`fit` of several models as replicas (see there)."""
    count = len(models)
    if count == 0:
        raise ConfigError("model: an empty list of models; give a module or a list of them")
    if callback is not None:
        raise ConfigError("callback: not available with replicas; fit each model alone")
    per = {
        "x": _per_replica(x, count, "x"),
        "y": _per_replica(y, count, "y"),
        "x_test": _per_replica(x_test, count, "x_test"),
        "y_test": _per_replica(y_test, count, "y_test"),
        "schedule": _per_replica(schedule, count, "schedule"),
    }
    parts = [
        _assemble(
            model,
            per["x"][k],
            per["y"][k],
            per["x_test"][k],
            per["y_test"][k],
            schedule=per["schedule"][k],
            name=f"{name}-{k}",
            **settings,
        )
        for k, model in enumerate(models)
    ]
    if parts[0].config.train.batch_size is not None:
        raise ConfigError("batch_size: replicas train full-batch; leave it None")
    if batched is None:
        batched = parts[0].device.type != "cpu"
    temporary = out is None
    root = Path(tempfile.mkdtemp(prefix="marginlab-") if temporary else out)
    paths = [root / f"{name}-{k}" for k in range(count)]
    rows = [_trace(trace) for _ in range(count)]
    try:
        start_runs(
            paths,
            [lambda part=part: part for part in parts],
            files=[{DATA_FILE: lambda part=part: _data_file(part)} for part in parts],
            traces=rows,
            batched=batched,
            durable=not temporary,
        )
    except BaseException:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
        raise
    runs = [_finished_run(*done) for done in zip(paths, parts, rows, strict=True)]
    if temporary:
        _TemporaryRoot(root, runs)
    return runs


class _TemporaryRoot:
    """The temporary directory of in-memory replicas, removed once none of their runs is
    referenced any more (each run holds this object)."""

    def __init__(self, path: Path, runs: list[Run]) -> None:
        for run in runs:
            run.replicas_directory = self  # type: ignore[attr-defined]
        weakref.finalize(self, shutil.rmtree, path, True)


def _per_replica(value: object, count: int, what: str) -> list:
    """``value`` for each of ``count`` replicas: a list of that length, or one shared value."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ConfigError(
                f"{what}: a list of {len(value)} for {count} models; give one per model, "
                "or a single value that every replica shares"
            )
        return list(value)
    return [value] * count


def _assemble(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    x_test: torch.Tensor | np.ndarray | None,
    y_test: torch.Tensor | np.ndarray | None,
    *,
    loss: str,
    schedule: Schedule | None,
    target_loss: float | str | None,
    max_epochs: int,
    batch_size: int | None,
    observers: Sequence[str | dict],
    seed: int,
    log_every: int,
    checkpoint_decades: float | None,
    row_decades: float | None,
    chunk_size: int,
    threads: int | None,
    name: str,
    device: str | torch.device | None,
    dtype: str | torch.dtype | None,
) -> Assembly:
    """The engine's pieces for one run of ``model`` on the tensors, all validated."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    parameter = next(model.parameters(), None)
    if parameter is None:
        raise ConfigError("model: the module has no parameters to train")
    if device is not None or dtype is not None:
        model.to(device=_device(device), dtype=_torch_dtype(dtype))
        parameter = next(model.parameters())
    dtype = _dtype_name(parameter.dtype)
    device = parameter.device
    data = _dataset(x, y, x_test, y_test, parameter.dtype, device)
    _check_outputs(model, data)
    schedule = LossBased() if schedule is None else schedule
    description = describe(model)
    if description is None:
        description = {
            "kind": "module",
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
        }
    if not hasattr(model, "homogeneity_order"):  # declared by its class or the instance
        found = measure_homogeneity(model, data.x_train[:8])
        declare_homogeneity(model, found.order, found.degrees)
        description.update(order=found.order, degrees=found.degrees)
    config = validate(
        {
            "name": name,
            "seed": seed,
            "device": device.type,
            "dtype": dtype,
            "threads": threads,
            "loss": loss,
            "data": {"name": "file", "path": DATA_FILE},
            "model": description,
            "train": {
                **schedule_config(schedule),
                "batch_size": batch_size,
                "max_epochs": max_epochs,
                "target_log10_loss": _target_log10(target_loss),
                "chunk_size": chunk_size,
            },
            "log": {
                "every": log_every,
                "checkpoint_decades": checkpoint_decades,
                "row_decades": row_decades,
                "observers": [o if isinstance(o, dict) else {"name": o} for o in observers],
            },
        }
    )
    if batch_size is not None and batch_size > data.n_train:
        raise ConfigError(
            f"batch_size: {batch_size} is larger than the training set ({data.n_train} "
            "samples); use at most that, or None for full-batch gradient descent"
        )
    return Assembly(config, device, data, model, get_loss(loss), schedule)


def _check_outputs(model: nn.Module, data: Dataset) -> None:
    """Refuse a network whose outputs cannot score the labels: not ``(N, C)`` logits, or
    fewer classes than the labels name (one output scores two classes)."""
    with torch.no_grad():
        outputs = model(data.x_train[:2])
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 2:
        shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs)
        raise ConfigError(
            f"model: it returns {shape} for 2 samples; it must return (N, C) logits, or "
            "(N, 1) for two classes (e.g. end it with nn.Unflatten(0, (-1, 1)))"
        )
    width, labels = outputs.shape[1], data.n_classes
    if labels > max(width, 2):
        raise ConfigError(
            f"model: it has {width} output(s) but the labels name {labels} classes "
            f"(0..{labels - 1}); make its last layer {labels} wide"
            + (", or label the two classes 0 and 1" if width == 1 else "")
        )


def _data_file(parts: Assembly) -> bytes:
    data = parts.data
    return file_bytes(data.x_train, data.y_train, data.x_test, data.y_test)


def _trace(trace: bool | Columns) -> Trace | None:
    if callable(trace):
        return Trace(trace)
    return Trace() if trace else None


def _finished_run(path: Path, parts: Assembly, rows: Trace | None) -> Run:
    """The run of a finished fit, holding its trained module (and trace)."""
    model = parts.model
    own = parts.config.model["kind"] == "module"  # a module the run directory cannot rebuild
    run = load_run(path, model=model if own else None)
    run.model = model
    if rows is not None:
        run.trace = rows.frame()
    return run


def _device(device: str | torch.device | None) -> torch.device | None:
    if device is None:
        return None
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"device: {device!r} is not a device; use 'cpu' or 'cuda'") from error
    if found.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but no GPU is available; use 'cpu'")
    return found


def _torch_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype not in DTYPES:
        raise ConfigError(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def schedule_config(schedule: Schedule) -> dict:
    """The ``train`` keys that rebuild ``schedule`` (``custom`` for an object of your own).

    Examples
    --------
    >>> schedule_config(Constant(lr=0.5))
    {'schedule': 'constant', 'lr': 0.5}
    """
    if isinstance(schedule, LossBased):
        return {
            "schedule": "loss_based",
            "alpha": schedule.alpha,
            "alpha_up": schedule.up,
            "alpha_down": schedule.down,
            "min_alpha": schedule.min_alpha,
            "loss_ub": schedule.loss_ub,
            "reject_margin_decrease": schedule.reject_margin_decrease,
        }
    if isinstance(schedule, Constant):
        return {"schedule": "constant", "lr": schedule.lr}
    if isinstance(schedule, Normalized):
        return {"schedule": "normalized", "alpha": schedule.alpha}
    if isinstance(schedule, InverseSqrt):
        return {"schedule": "inverse_sqrt", "lr": schedule.lr}
    if isinstance(schedule, str):
        raise ConfigError(
            f"schedule: expected a schedule object, got the name {schedule!r}; pass e.g. "
            "marginlab.LossBased(), marginlab.Constant(lr=0.1) or marginlab.Normalized()"
        )
    for method in ("init", "log_step_factor", "end_epoch"):
        if not callable(getattr(schedule, method, None)):
            raise ConfigError(
                f"schedule: {schedule!r} has no {method}(); a schedule has init, "
                "log_step_factor, end_epoch and rolls_back (see marginlab.training.schedules)"
            )
    return {"schedule": "custom"}


def _target_log10(target: float | str | None) -> float | None:
    """log10 of the target loss, exact for levels below float64 written as text."""
    if target is None:
        return None
    if isinstance(target, (int, float)) and not isinstance(target, bool) and target == 0:
        raise ConfigError(
            "target_loss: 0 is not a loss level; a level below float64 such as 1e-400 "
            "reads as 0 when written as a number: write it as text, target_loss='1e-400'"
        )
    try:
        level = Decimal(str(target))
    except InvalidOperation:
        level = None
    if level is None or not level.is_finite() or level <= 0:
        raise ConfigError(
            f"target_loss: expected a positive level such as '1e-400', got {target!r}"
        )
    return float(level.log10())


def _dtype_name(dtype: torch.dtype) -> str:
    for name, value in DTYPES.items():
        if value == dtype:
            return name
    raise ConfigError(
        f"model: parameters of dtype {dtype}; use float64 or float32 (model.double())"
    )


def _tensor(values: torch.Tensor | np.ndarray | None, what: str) -> torch.Tensor | None:
    if values is None:
        return None
    try:
        return torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ConfigError(f"{what}: cannot read it as a tensor ({error})") from None


def _dataset(x, y, x_test, y_test, dtype: torch.dtype, device: torch.device) -> Dataset:
    """The tensors as a validated data set in the model's dtype, on its device."""
    if (x_test is None) != (y_test is None):
        raise ConfigError("x_test, y_test: give both or neither")
    inputs = {"x": _tensor(x, "x"), "x_test": _tensor(x_test, "x_test")}
    labels = {"y": _tensor(y, "y"), "y_test": _tensor(y_test, "y_test")}
    for key, values in labels.items():
        if values is None:
            continue
        if values.is_floating_point() and not torch.equal(values, values.round()):
            raise ConfigError(f"{key}: labels must be class indices 0, 1, ...; got fractions")
        labels[key] = values.long()
    given = [v for v in labels.values() if v is not None and v.numel()]
    n_classes = max([2] + [int(v.max()) + 1 for v in given])
    try:
        dataset = Dataset(
            "file",
            inputs["x"].to(torch.float64),
            labels["y"],
            None if inputs["x_test"] is None else inputs["x_test"].to(torch.float64),
            labels["y_test"],
            n_classes,
            tuple(str(c) for c in range(n_classes)),
            {"source": "tensors given to marginlab.fit"},
        )
    except ValueError as error:
        raise ConfigError(f"data: {error}") from None
    return dataset.to(device=device, dtype=dtype)


def _run_dir(out: str | os.PathLike | None, name: str) -> tuple[Path, bool]:
    """The run directory, and whether it is a temporary one."""
    if out is not None:
        return Path(out), False
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(tempfile.mkdtemp(prefix="marginlab-")) / f"{name}-{stamp}", True
