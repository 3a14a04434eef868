"""The training loop: step in log space, evaluate, accept or roll back, observe, checkpoint.

One epoch is one pass of minibatch SGD (reshuffled, ``N // batch_size`` steps) or one
full-batch gradient step. After every attempt the full training loss decides, through the
schedule, whether the epoch is accepted; only accepted epochs count. Every step is

    theta -= exp(log(eta) + log L_B) * grad(log L_B)

so nothing underflows however small the loss gets.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from marginlab.config import ConfigError, ObserverConfig, RunConfig, apply_overrides, validate
from marginlab.measure.margins import Evaluation, margin_metrics, trainable_parameters
from marginlab.measure.observers import run_observer
from marginlab.models.declare import summary
from marginlab.numerics import LN10, format_log10, logaddexp
from marginlab.runs.checkpoint_spec import parse_checkpoint
from marginlab.runs.environment import environment
from marginlab.runs.store import (
    LATEST,
    ReadOnlyStore,
    RunDirectoryError,
    RunStore,
    RunWriteError,
    load_weights,
)
from marginlab.runs.tensorboard import TensorBoardWriter
from marginlab.training.assembly import Assembly, assemble, session_threads
from marginlab.training.attempt import Attempt, evaluate_split
from marginlab.training.distributed import DataParallel, check_data_parallel
from marginlab.training.estimate import epoch_cost
from marginlab.training.executors import Plain, Speculative, Stacked
from marginlab.training.progress import Progress
from marginlab.training.schedules import Schedule, ScheduleState, TrainingStopped
from marginlab.training.stall import StallWatch
from marginlab.training.trace import Trace


class Executor(Protocol):
    """How attempts are computed (see :mod:`marginlab.training.executors`)."""

    def __call__(self, going: list[int]) -> dict[int, Attempt]: ...

    def close(self) -> None: ...


# Keys of a resumed run that may be changed with --set: how long and how it is observed,
# never what is trained.
RESUMABLE_KEYS = ("train.max_epochs", "train.target_log10_loss", "log.")


@dataclass
class TrainState:
    """Everything besides the weights that a resumed run needs to continue identically."""

    schedule: ScheduleState
    epoch: int = 0
    step: int = 0
    attempts: int = 0
    log_accumulated_lr: float = -math.inf
    log_lr: float | None = None
    wall_time: float = 0.0
    level: int = 0
    logged_decade: int | None = None
    logged_epoch: int = -1

    @classmethod
    def from_dict(cls, raw: dict) -> TrainState:
        try:
            raw = dict(raw)
            raw["schedule"] = ScheduleState(**raw["schedule"])
            if raw.get("log_accumulated_lr") is None:
                raw["log_accumulated_lr"] = -math.inf
            return cls(**raw)
        except (KeyError, TypeError) as error:
            raise RunDirectoryError(
                f"the checkpoint's training state cannot be continued by this version of "
                f"marginlab ({type(error).__name__}: {error})"
            ) from None


@dataclass
class _Loop:
    """The mutable objects of one training session."""

    parts: Assembly
    store: RunStore
    state: TrainState
    progress: Progress
    params: list[torch.Tensor] = field(default_factory=list)
    accepted: list[torch.Tensor] = field(default_factory=list)
    tensorboard: TensorBoardWriter | None = None
    parallel: DataParallel | None = None
    # A stop signal that arrived during the bookkeeping of an epoch, raised at its end.
    in_bookkeeping: bool = False
    stop_pending: bool = False
    # time.perf_counter() at the run's (virtual) start: wall_time is measured from it.
    clock: float = 0.0
    # Ended (finished or stopped) and recorded as such.
    done: bool = False
    # Sees each logged metrics row; a true return value ends the run after that epoch.
    callback: Callable[[dict], object] | None = None
    stop_requested: bool = False
    # Stops a schedule that rolls back once it no longer gets anywhere (see stall.py).
    stall: StallWatch | None = None
    # fit(trace=...): every accepted epoch's row, in memory.
    trace: Trace | None = None

    def record_trace(self, evaluation: Evaluation, norm: float | None = None) -> None:
        if self.trace is not None:
            self.trace.record(self.state.epoch, evaluation, self.params, self.parts.model, norm)

    def observe(self, observer: ObserverConfig, row: dict) -> dict:
        """Run a configured observer on the current weights and the training set."""
        data = self.parts.data
        return run_observer(
            observer.name,
            self.parts.model,
            data.x_train,
            data.y_train,
            self.parts.loss,
            row,
            **observer.options,
        )


def _metrics_row(loop: _Loop, evaluation: Evaluation) -> dict:
    parts, state = loop.parts, loop.state
    row = {
        "epoch": state.epoch,
        "step": state.step,
        "attempts": state.attempts,
        "log10_loss_sum": evaluation.log_loss_sum / LN10,
        "log10_loss_mean": evaluation.log_loss_mean / LN10,
        "train_acc": evaluation.accuracy,
    }
    if parts.data.x_test is not None:
        test = evaluate_split(parts, parts.data.x_test, parts.data.y_test, loop.parallel)
        row["test_acc"] = test.accuracy
        row["log10_test_loss_mean"] = test.log_loss_mean / LN10
    row.update(margin_metrics(evaluation, parts.model, parts.loss))
    row.update(
        {
            "alpha": state.schedule.alpha,
            "log10_lr": None if state.log_lr is None else state.log_lr / LN10,
            "log10_accumulated_lr": state.log_accumulated_lr / LN10,
            "rollbacks": state.schedule.rollbacks,
            "wall_time": state.wall_time,
        }
    )
    return row


def _save(loop: _Loop, file_name: str, log10_loss: float, reason: str | None) -> None:
    state = loop.state
    meta = asdict(state)
    digest = loop.store.save_checkpoint(file_name, loop.parts.model.state_dict(), meta)
    if reason is not None:
        loop.store.record_checkpoint(
            {
                "epoch": state.epoch,
                "log10_loss_mean": log10_loss,
                "file": file_name,
                "reason": reason,
                "sha256": digest,
            }
        )


def _observe(loop: _Loop, evaluation: Evaluation, final: bool = False) -> None:
    """Log metrics and write checkpoints for the epoch that was just accepted."""
    state, log_cfg = loop.state, loop.parts.config.log
    log10_loss = evaluation.log_loss_mean / LN10
    # the loss level in units of row_decades (state.logged_decade keeps the last one logged)
    decade = 0 if log_cfg.row_decades is None else math.floor(log10_loss / log_cfg.row_decades)
    new_decade = state.logged_decade is None or decade < state.logged_decade
    due = final or new_decade or state.epoch % log_cfg.every == 0
    if due and state.logged_epoch != state.epoch:
        state.logged_epoch = state.epoch
        state.logged_decade = decade if new_decade else state.logged_decade
        row = _metrics_row(loop, evaluation)
        for observer in log_cfg.observers:
            if final or state.epoch % observer.every == 0:
                row.update(loop.observe(observer, row))
        loop.store.append_metrics(row)
        if loop.tensorboard is not None:
            loop.tensorboard.write(row)
        loop.progress.update(row)
        if loop.callback is not None and loop.callback(dict(row)):
            loop.stop_requested = True
    if state.epoch == 0:
        _save(loop, f"epoch-{0:07d}.safetensors", log10_loss, "init")
    level = state.level
    # The deepest level k with log10_loss < -k * decades, computed in one step: a loss-based
    # run can cross billions of decades in one epoch.
    if log_cfg.checkpoint_decades is not None and math.isfinite(log10_loss):
        crossed = math.ceil(-log10_loss / log_cfg.checkpoint_decades) - 1
        state.level = max(state.level, crossed)
    if state.level > level:
        bound = f"{state.level * log_cfg.checkpoint_decades:g}"
        _save(loop, f"epoch-{state.epoch:07d}.safetensors", log10_loss, f"loss<1e-{bound}")
    every = log_cfg.checkpoint_every or log_cfg.every
    if final or state.epoch % every == 0:
        _save(loop, LATEST, log10_loss, None)


def _finished_reason(config: RunConfig, state: TrainState, log10_loss: float) -> str | None:
    target = config.train.target_log10_loss
    if target is not None and log10_loss < target:
        return f"training loss {log10_loss:.1f} (log10, mean) is below the target {target:g}"
    if state.epoch >= config.train.max_epochs:
        reason = f"reached train.max_epochs={config.train.max_epochs}"
        if target is not None:
            reason = (
                f"short of the target: {reason} with the mean training loss at "
                f"{format_log10(log10_loss)}, above the target 1e{target:g} (train."
                "target_log10_loss); to go on, resume with a larger train.max_epochs"
            )
        return reason
    return None


def _conclude(
    loops: list[_Loop],
    going: list[int],
    attempts: dict[int, Attempt],
    evaluations: list[Evaluation],
) -> dict[int, Evaluation | TrainingStopped]:
    """Decide one round's attempts and record them.

    Returns, for each run in ``going``, the evaluation of its accepted attempt, or the
    :class:`TrainingStopped` that ended it (with the samples no step moves at the weights
    it keeps, see :func:`_with_stuck_samples`; ``evaluations`` holds each run's last
    accepted evaluation); a rejected attempt's run is left out. The
    accepted runs keep their new weights and the rejected ones get their accepted weights
    back, all in one call at the end (replicas: one call, not one per run).
    """
    # From here to the end of the round's records the state changes as a whole: a stop
    # signal waits for it (see _session), so a resumed run repeats the next attempt exactly.
    for k in going:
        loops[k].in_bookkeeping = True
    outcomes: dict[int, Evaluation | TrainingStopped] = {}
    targets: list[torch.Tensor] = []
    sources: list[torch.Tensor] = []
    try:
        for k in going:
            loop = loops[k]
            try:
                accepted = _decide_and_record(loop, attempts[k])
            except TrainingStopped as stop:
                outcomes[k] = _with_stuck_samples(stop, evaluations[k])
                continue
            if accepted:
                outcomes[k] = attempts[k].evaluation
                targets += loop.accepted
                sources += loop.params
            else:
                targets += loop.params
                sources += loop.accepted
            if loop.stall is not None:
                try:
                    loop.stall.see(loop.state.epoch, loop.state.schedule.log_frame)
                except TrainingStopped as stop:
                    # after the weights of this round are settled: the attempt's if accepted
                    kept = attempts[k].evaluation if accepted else evaluations[k]
                    outcomes[k] = _with_stuck_samples(stop, kept)
        with torch.no_grad():
            torch._foreach_copy_(targets, sources)
    finally:
        for k in going:
            loops[k].in_bookkeeping = False
    if any(loops[k].stop_pending for k in going):
        raise KeyboardInterrupt
    return outcomes


def _decide_and_record(loop: _Loop, attempt: Attempt) -> bool:
    """Decide one attempt and, when it is accepted, record its epoch; the weights are kept
    or put back by the caller."""
    parts, state = loop.parts, loop.state
    state.attempts += 1
    log_loss, margin = math.nan, None  # an aborted attempt has no evaluation
    if attempt.evaluation is not None:
        log_loss = attempt.evaluation.log_loss_mean
        # Only the margin guard reads it; the norms cost a pass over the weights.
        if parts.config.train.reject_margin_decrease:
            metrics = margin_metrics(attempt.evaluation, parts.model, parts.loss)
            margin = metrics["smoothed_margin"]
    accepted, state.schedule = parts.schedule.end_epoch(
        state.schedule, log_loss, attempt.completed, margin
    )
    if not accepted:
        return False
    state.epoch += 1
    state.step += attempt.steps
    state.log_lr = attempt.log_lr
    state.log_accumulated_lr = logaddexp(state.log_accumulated_lr, attempt.log_lr_sum)
    state.wall_time = time.perf_counter() - loop.clock
    loop.record_trace(attempt.evaluation, attempt.norm)
    _observe(loop, attempt.evaluation)
    return True


def _drive(loops: list[_Loop], evaluations: list[Evaluation], executor: Executor) -> None:
    """Train every run of ``loops`` until its stopping rule holds, and end it.

    Each round, ``executor`` runs one attempt of every run still going (given their
    indices; see :mod:`marginlab.training.executors`); the attempts are then decided in
    order. One run, or an ensemble's replicas.
    """
    for loop in loops:
        loop.clock = time.perf_counter() - loop.state.wall_time
    going = list(range(len(loops)))
    while True:
        for k in list(going):
            loop, evaluation = loops[k], evaluations[k]
            log10_loss = evaluation.log_loss_mean / LN10
            reason = _finished_reason(loop.parts.config, loop.state, log10_loss)
            if reason is None and loop.stop_requested:
                reason = f"the callback asked to stop after epoch {loop.state.epoch}"
            if reason is not None:
                _finish(loop, _wrap_up(loop, evaluation, reason), log10_loss)
                going.remove(k)
        if not going:
            return
        attempts = executor(going)
        for k, outcome in _conclude(loops, going, attempts, evaluations).items():
            if isinstance(outcome, TrainingStopped):
                _stopped(loops[k], outcome)
                going.remove(k)
            else:
                evaluations[k] = outcome


def _wrap_up(loop: _Loop, evaluation: Evaluation, reason: str) -> str:
    """Record the last accepted epoch of a run that ends for ``reason``; return the reason
    with a note when the training set is not fitted."""
    loop.state.wall_time = time.perf_counter() - loop.clock
    _observe(loop, evaluation, final=True)
    if evaluation.log_loss_sum >= loop.parts.loss.log_threshold:
        reason += (
            "; the summed training loss is still above the threshold l(0), so the training "
            "set is not fitted (the data may not be separable by this model) and the "
            "smoothed margin is undefined"
        )
    return reason


def _announce_model(loop: _Loop) -> None:
    model = loop.parts.model
    describe = getattr(model, "describe", None)
    loop.progress.message(describe() if describe else summary(model))
    if getattr(model, "homogeneity_order", None) is None:
        loop.progress.message(
            "note: the model declares no homogeneity order (a bias beyond the first layer, a "
            "non-homogeneous activation, or a plain nn.Module), so normalized_margin and "
            "smoothed_margin are null; normalized_margin_layers is still reported"
        )


def _finish(loop: _Loop, reason: str, log10_loss: float) -> None:
    loop.done = True
    target = loop.parts.config.train.target_log10_loss
    # None: the run has no target (it trains train.max_epochs epochs).
    reached = None if target is None else bool(log10_loss < target)
    loop.store.write_status("finished", reason, epoch=loop.state.epoch, target_reached=reached)
    loop.progress.message(f"finished: {reason}")


def _with_stuck_samples(stop: TrainingStopped, evaluation: Evaluation) -> TrainingStopped:
    """``stop`` with the training samples that no step can move, when there are some.

    A margin of exactly 0 means outputs that are all equal (one output: 0). In a bias-free
    ReLU network that is a sample on which every unit of a layer is inactive: its outputs
    and their gradient are 0 whatever the step, so the mean loss stays above ``l(0) / n``.
    The data may well be separable; the network cannot reach that sample from here.
    """
    stuck = int((evaluation.margins == 0).sum())
    if stuck == 0:
        return stop
    return TrainingStopped(
        f"{stop}. Note: {stuck} training sample(s) have margin exactly 0, their outputs all "
        "equal (one output: 0; in a bias-free ReLU network, every unit of a layer inactive on "
        "them), and no step moves them; another initialization, a wider first layer or a "
        "bias in the first layer (model.bias=first) can give them active units"
    )


def _stopped(loop: _Loop, stop: TrainingStopped) -> None:
    loop.done = True
    _restore_and_save(loop)
    loop.store.write_status("stopped", str(stop), epoch=loop.state.epoch)
    loop.progress.message(f"stopped: {stop}")


def _session(
    loops: list[_Loop],
    evaluations: list[Evaluation],
    make_executor: Callable[[list[_Loop]], Executor],
) -> None:
    """Train ``loops`` (one run, or an ensemble's replicas) with the attempts of the
    executor that ``make_executor`` builds, ending each with :func:`_finish` or
    :func:`_stopped`, with clean handling of every other way a session can end: each
    unfinished run saves its accepted weights and says how it ended in its
    ``status.json``. A write that fails (disk full, quota) stops training and writes
    nothing more, so each run directory keeps its last complete state."""

    def terminate(signum: int, frame: object) -> None:
        # A second signal (e.g. `timeout` forwarding SIGTERM) must not cut the save short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for loop in loops:
            if loop.in_bookkeeping:
                loop.stop_pending = True
                return
        raise KeyboardInterrupt

    previous = {}
    # Handlers can only be installed on the main thread; elsewhere (a notebook's worker, a
    # thread pool) training runs the same, and an interruption is the caller's to handle.
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGTERM, signal.SIGINT)}
        if hasattr(signal, "SIGXFSZ"):
            # Past a file-size limit a write then fails (and is reported) instead of the
            # signal killing the process.
            previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    threads = torch.get_num_threads()
    torch.set_num_threads(session_threads(loops[0].parts))
    executor: Executor | None = None
    try:
        for loop in loops:
            loop.store.write_status("running", pid=os.getpid())
        executor = make_executor(loops)
        _drive(loops, evaluations, executor)
    except KeyboardInterrupt:
        for loop in loops:
            if loop.done:
                continue
            try:
                _restore_and_save(loop)
                epoch = loop.state.epoch
                loop.store.write_status(
                    "interrupted", "interrupted; continue with marginlab resume", epoch=epoch
                )
            except RunWriteError as error:
                _record_failure(loop, str(error))
                loop.progress.message(f"interrupted, and could not save: {error}")
                continue
            loop.progress.message(
                f"interrupted at epoch {epoch}; saved. "
                f"Continue with: marginlab resume {loop.store.path}"
            )
        raise
    except RunWriteError as error:
        unfinished = [loop for loop in loops if not loop.done]
        message = _write_failure(error, unfinished)
        for loop in unfinished:
            _record_failure(loop, message)
        raise RunWriteError(message) from error
    except BaseException as error:
        for loop in loops:
            if not loop.done:
                _record_failure(loop, f"{type(error).__name__}: {error}")
        raise
    finally:
        torch.set_num_threads(threads)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if executor is not None:
            executor.close()
        for loop in loops:
            loop.progress.close()
            if loop.tensorboard is not None:
                loop.tensorboard.close()


def _record_failure(loop: _Loop, message: str) -> None:
    """Say in ``status.json`` that the run failed, if the directory can still be written."""
    with suppress(RunDirectoryError):
        loop.store.write_status("failed", message, epoch=loop.state.epoch)


def _write_failure(error: RunWriteError, loops: list[_Loop]) -> str:
    """The message of a write that stopped training: what failed, what is kept, what next."""
    kept = []
    for loop in loops:
        try:
            state = loop.store.latest_state()
        except RunDirectoryError:
            state = None
        epoch = "its start" if state is None else f"epoch {state['epoch']}"
        kept.append(f"{loop.store.path} keeps its last complete state ({epoch})")
    commands = " and ".join(f"marginlab resume {loop.store.path}" for loop in loops)
    return (
        f"{error}. Training stopped; {'; '.join(kept)}. Once it can be written again (free "
        f"space, quota, permissions), continue with: {commands}"
    )


def _restore_and_save(loop: _Loop) -> None:
    """Put back the last accepted weights (an attempt may be half done) and checkpoint them."""
    with torch.no_grad():
        torch._foreach_copy_(loop.params, loop.accepted)
    _save(loop, LATEST, math.nan, None)


def _open_loop(
    parts: Assembly,
    store: RunStore,
    state: TrainState | None,
    progress: bool,
    parallel: DataParallel | None = None,
    callback: Callable[[dict], object] | None = None,
    trace: Trace | None = None,
) -> tuple[_Loop, Evaluation]:
    """Evaluate the training set and set up one run's loop; a fresh run (``state`` None)
    records its epoch 0."""
    fresh = state is None
    display = Progress(
        store.path.name,
        enabled=progress,
        # a resumed run's summary counts the rows logged before it too
        history=() if fresh else store.metrics(),
        max_epochs=parts.config.train.max_epochs,
        target_log10_loss=parts.config.train.target_log10_loss,
    )
    # what the run will cost, said before any work (timed on a slice of the data)
    display.announce_cost(lambda: epoch_cost(parts), 0 if fresh else state.epoch)
    evaluation = evaluate_split(parts, parts.data.x_train, parts.data.y_train, parallel)
    if fresh:
        state = TrainState(schedule=parts.schedule.init(evaluation.log_loss_mean))
    params = trainable_parameters(parts.model)
    loop = _Loop(
        parts,
        store,
        state,
        display,
        params,
        [p.detach().clone() for p in params],
        parallel=parallel,
        callback=callback,
        trace=trace,
    )
    if parts.config.log.tensorboard:
        loop.tensorboard = TensorBoardWriter(store.path)
    if getattr(parts.schedule, "rolls_back", False):
        log_n = evaluation.log_loss_sum - evaluation.log_loss_mean
        loop.stall = StallWatch(log_fitted=parts.loss.log_threshold - log_n)
    _announce_model(loop)
    if fresh:
        loop.record_trace(evaluation)
        _observe(loop, evaluation)
    return loop, evaluation


def _start(
    parts: Assembly,
    store: RunStore,
    state: TrainState | None,
    progress: bool,
    parallel: DataParallel | None,
    callback: Callable[[dict], object] | None = None,
    trace: Trace | None = None,
) -> None:
    loop, evaluation = _open_loop(parts, store, state, progress, parallel, callback, trace)
    speculate = parts.config.train.speculate
    if speculate and parts.device.type != "cpu":
        speculate = False
        loop.progress.message(
            f"note: train.speculate uses a second CPU process; ignored on {parts.device}"
        )
    _session([loop], [evaluation], lambda loops: Speculative(loop) if speculate else Plain(loops))


def _distribute(parts: Assembly) -> DataParallel | None:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1): join the group and keep only this rank's
    shard of the data in ``parts``."""
    parallel = DataParallel.from_environment(parts.device)
    if parallel is None:
        return None
    check_data_parallel(parts.config)
    if parallel.device != parts.device:  # one GPU per rank: cuda:LOCAL_RANK
        parts.model.to(parallel.device)
        parts.data = parts.data.to(device=parallel.device)
        parts.device = parallel.device
    parts.data = parallel.shard_dataset(parts.data)
    return parallel


def _store(path: Path, durable: bool = True) -> RunStore:
    """Rank 0 (or the only process) writes the run directory; the other ranks of a
    ``torchrun`` launch only read it."""
    if os.environ.get("RANK", "0") == "0":
        return RunStore(path, durable)
    return ReadOnlyStore(path)


@contextmanager
def _new_run(store: RunStore) -> Iterator[None]:
    """Hold the writer lock of a new run directory; one that ends before its config is
    written (a refused config, a missing data set) leaves no trace."""
    created = not store.path.exists()
    locked = False  # a writer refused here leaves the directory to the one that holds it
    try:
        with store.writer():
            locked = True
            if store.writable:
                _refuse_existing_run(store.path)  # written by another process meanwhile
            yield
    except BaseException:
        if locked and created and store.writable and not (store.path / "config.yaml").exists():
            store.discard()
        raise


def _refuse_existing_run(path: Path) -> None:
    if (path / "config.yaml").exists():
        raise RunDirectoryError(
            f"{path} already holds a run; continue it with `marginlab resume {path}` "
            "or choose another --out"
        )


def default_run_dir(config: RunConfig) -> Path:
    """``runs/<name>-<timestamp>`` under the working directory."""
    return Path("runs") / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: RunConfig | dict,
    out: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Train a model as the configuration says and return its run directory.

    Parameters
    ----------
    config : RunConfig or dict
        A configuration (validated here if a mapping).
    out : path, optional
        Run directory to create; defaults to ``runs/<name>-<timestamp>``. It must not hold
        a run already (use :func:`resume` for that).
    data_dir : path, optional
        Where real data sets live; defaults to ``$MARGINLAB_DATA``.
    progress : bool
        Show the live progress line and the final summary.

    Returns
    -------
    pathlib.Path
        The run directory; open it with :func:`marginlab.load_run`.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab.experiments.presets import preset
    >>> config = preset("digits-mlp")
    >>> config["train"]["max_epochs"] = 2
    >>> path = train(config, tempfile.mkdtemp() + "/run", progress=False)
    >>> (path / "metrics.jsonl").exists()
    True
    """
    config = config if isinstance(config, RunConfig) else validate(config)
    path = Path(out or default_run_dir(config))
    return start_run(path, lambda: assemble(config, data_dir), data_dir=data_dir, progress=progress)


def start_run(
    path: Path,
    build: Callable[[], Assembly],
    *,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    callback: Callable[[dict], object] | None = None,
    files: Mapping[str, Callable[[], bytes]] | None = None,
    trace: Trace | None = None,
    durable: bool = True,
) -> Path:
    """Train a new run into ``path``: the one way every run starts (:func:`train` from a
    config, :func:`marginlab.fit` from a module and tensors).

    ``build`` makes the run's pieces once the directory is locked (every check happens
    before anything is written); ``files`` are written into the directory first (the
    tensors of a run of your own data); ``callback`` sees each logged metrics row;
    ``trace`` records every accepted epoch (:class:`~marginlab.training.trace.Trace`);
    ``durable=False`` (a temporary directory) skips flushing checkpoints to disk.
    """
    _refuse_existing_run(path)
    store = _store(path, durable)
    # The lock comes first, so that a second writer is refused before any work.
    with _new_run(store):
        parts = build()
        parallel = _distribute(parts)
        for name, content in (files or {}).items():
            store.write_bytes(name, content())
        store.write_config(parts.config.to_dict())
        described = environment(parts.device, data_dir)
        if parallel is not None:
            described["data_parallel"] = parallel.describe(parts.data)
        store.write_json("environment.json", described)
        _start(parts, store, None, progress and store.writable, parallel, callback, trace)
    return store.path


def start_runs(
    paths: Sequence[Path],
    builds: Sequence[Callable[[], Assembly]],
    *,
    data_dir: str | os.PathLike | None = None,
    files: Sequence[Mapping[str, Callable[[], bytes]]] | None = None,
    traces: Sequence[Trace | None] | None = None,
    batched: bool = False,
    durable: bool = True,
) -> list[Path]:
    """Train several new runs together (full batch), each into its own directory: the way
    replicas start (:func:`marginlab.fit` with a list of models, ensembles of configs).

    Every directory is locked and every ``build`` made before anything is written. Each run
    is an ordinary run (its metrics, checkpoints and ``status.json``); only the attempts are
    computed together: in one vmapped pass over the stacked parameters when ``batched``
    (:class:`~marginlab.training.executors.Stacked`), else in turn. ``files`` and ``traces``
    are per run, and ``durable`` as for :func:`start_run`.
    """
    paths = [Path(path) for path in paths]
    for path in paths:
        _refuse_existing_run(path)
    stores = [RunStore(path, durable) for path in paths]
    with ExitStack() as held:
        for store in stores:  # one writer per run directory, as for a single run
            held.enter_context(_new_run(store))
        parts = [build() for build in builds]  # every check before anything is written
        loops, evaluations = [], []
        for k, (part, store) in enumerate(zip(parts, stores, strict=True)):
            for name, content in (files[k] if files else {}).items():
                store.write_bytes(name, content())
            store.write_config(part.config.to_dict())
            store.write_json("environment.json", environment(part.device, data_dir))
            trace = traces[k] if traces else None
            loop, evaluation = _open_loop(part, store, None, progress=False, trace=trace)
            loops.append(loop)
            evaluations.append(evaluation)
        _session(loops, evaluations, Stacked if batched else Plain)
    return paths


def resume(
    run_dir: str | os.PathLike,
    overrides: list[str] | None = None,
    *,
    from_checkpoint: str | int | float | None = None,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    model: torch.nn.Module | None = None,
    schedule: Schedule | None = None,
) -> Path:
    """Continue a run from its latest checkpoint; with a fixed seed the result equals the
    uninterrupted run.

    Every file the continued run depends on is checked first (metrics, checkpoint index,
    checksums of the checkpoints); damage is named, with the latest intact checkpoint to
    continue from instead.

    Parameters
    ----------
    run_dir : path
        A run directory written by :func:`train`.
    overrides : list of str, optional
        ``key=value`` changes limited to ``train.max_epochs``, ``train.target_log10_loss``
        and ``log.*`` (to train longer or observe differently).
    from_checkpoint : str or int, optional
        Continue from this intact checkpoint instead (``last``, an epoch, or a loss level
        such as ``1e-20``); the metrics and the checkpoint index are cut back to its epoch.
    data_dir : path, optional
        Where real data sets live; defaults to the one the run used, then ``$MARGINLAB_DATA``.
    progress : bool
        Show the progress line.
    model, schedule : optional
        For a run of :func:`marginlab.fit` whose module or schedule object the run directory
        cannot rebuild: a module of the same shape (it receives the weights) and the schedule.
    """
    store = _store(Path(run_dir))
    raw = store.read_config()
    overrides = list(overrides or [])
    for text in overrides:
        if not text.split("=", 1)[0].strip().startswith(RESUMABLE_KEYS):
            raise ConfigError(
                f"--set {text}: a resumed run may only change {', '.join(RESUMABLE_KEYS)}*; "
                "to change what is trained, start a new run with `marginlab run`"
            )
    config = validate(apply_overrides(raw, overrides))
    which = None if from_checkpoint is None else parse_checkpoint(from_checkpoint)
    with store.writer():
        parts = assemble(
            config, data_dir or store.data_dir(), base=store.path, model=model, schedule=schedule
        )
        parallel = _distribute(parts)
        tensors, saved = store.rewind(which)
        # At epoch 0 the run starts over (from the same initial weights), as a fresh run.
        state = TrainState.from_dict(saved) if saved["epoch"] > 0 else None
        load_weights(parts.model, tensors, store.path / "checkpoints" / LATEST)
        if which is not None and store.writable:
            print(
                f"marginlab: continuing {store.path} from epoch {saved['epoch']}; its metrics "
                "and checkpoint index are cut back to that epoch",
                file=sys.stderr,
                flush=True,
            )
        store.write_config(config.to_dict())
        _start(parts, store, state, progress and store.writable, parallel)
    return store.path
