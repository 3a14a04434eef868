"""How far a long job is and what it will cost: one bar for every command and ``fit``.

A :class:`Bar` draws itself where it runs: a rich progress bar in a terminal, tqdm's widget
in a notebook, and a plain line at most every :data:`PLAIN_PERIOD` seconds in a log file or
on CI. Its text names the job and the remaining time. :func:`announce_cost` prints an
estimate before a job starts, as a warning when it exceeds an hour, with the option that
shortens it.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import TextIO

# Without a terminal (CI, a log file) a bar prints a line at most this often, in seconds.
PLAIN_PERIOD = 10.0
# An estimate above this many seconds is a warning.
AN_HOUR = 3600.0


def format_duration(seconds: float | None) -> str:
    """A duration as a person says it.

    Examples
    --------
    >>> [format_duration(s) for s in (4.2, 75, 3 * 3600 + 60, 11 * 86400)]
    ['4 s', '1 min 15 s', '3 h 1 min', '11 days']
    >>> format_duration(None), format_duration(math.inf)
    ('unknown', 'unknown')
    """
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if minutes < 10 and rest else f"{minutes} min"
    if seconds < 2 * 86400:
        hours, rest = divmod(round(seconds / 60), 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{seconds / 86400:.0f} days"


def cost_message(
    what: str, seconds: float, detail: str, shorten: str, upper_bound: bool = False
) -> str:
    """The estimate of a job before it starts; a warning past an hour, with what shortens it.

    Parameters
    ----------
    what : str
        The job, e.g. ``"the attack"``.
    seconds : float
        The estimated cost.
    detail : str
        Where the number comes from, e.g. ``"1.1 s per sample and checkpoint, timed on 4"``.
    shorten : str
        What makes it shorter, e.g. ``"--n 100"``.
    upper_bound : bool
        Whether ``seconds`` is an upper bound (the job may stop early): "at most", not
        "about".

    Examples
    --------
    >>> print(cost_message("the run", 11 * 86400, "94 s per epoch", "--set train.max_epochs=N"))
    marginlab: warning: the run would take about 11 days on this machine (94 s per epoch); ...
    >>> print(cost_message("the attack", 90, "0.3 s per sample", "--n N"))
    marginlab: estimate: the attack would take about 1 min 30 s on this machine (0.3 s ...)
    >>> print(cost_message("the attack", 90, "C&W may stop early", "--n N", upper_bound=True))
    marginlab: estimate: the attack would take at most 1 min 30 s on this machine (C&W may ...)
    """
    bound = "at most" if upper_bound else "about"
    text = f"{what} would take {bound} {format_duration(seconds)} on this machine ({detail})"
    if seconds > AN_HOUR:
        return f"marginlab: warning: {text}; more than an hour: shorten it with {shorten}"
    return f"marginlab: estimate: {text}"


def announce_cost(
    what: str,
    seconds: float,
    detail: str,
    shorten: str,
    stream: TextIO | None = None,
    upper_bound: bool = False,
) -> None:
    """Print :func:`cost_message` (to standard error by default)."""
    message = cost_message(what, seconds, detail, shorten, upper_bound)
    print(message, file=stream or sys.stderr, flush=True)


def _left(seconds: float | None) -> str:
    return "time left unknown" if seconds is None else f"about {format_duration(seconds)} left"


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where tqdm draws a widget)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ipython = shell.get_ipython()
    except AttributeError:
        return False
    return ipython is not None and type(ipython).__name__ == "ZMQInteractiveShell"


# The one rich display of the process: bars that overlap in time (a reproduction and its
# runs) are tasks of it, since rich draws one live display at a time.
_LIVE: dict = {"progress": None, "tasks": 0}


def _shared_live(stream: TextIO):
    if _LIVE["progress"] is None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        _LIVE["progress"] = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[left]}"),
            console=Console(file=stream),
        )
        _LIVE["progress"].start()
    _LIVE["tasks"] += 1
    return _LIVE["progress"]


def _release_live(progress, task) -> None:
    """End a bar: the last one stops the display (which stays on the screen as drawn), the
    others leave it."""
    _LIVE["tasks"] -= 1
    if _LIVE["tasks"] == 0:
        progress.stop()
        _LIVE["progress"] = None
    else:
        progress.remove_task(task)


class Bar:
    """A progress bar from 0 to ``total`` with the remaining time.

    Parameters
    ----------
    what : str
        The job, at the start of the bar.
    total : float
        The amount of work (checkpoints, samples, trials, or 1 for a fraction).
    enabled : bool
        Whether anything is shown.
    stream : file, optional
        Where to draw (standard error by default; standard output keeps the results).

    Examples
    --------
    >>> import io
    >>> stream = io.StringIO()
    >>> with Bar("kkt", total=4, stream=stream) as bar:
    ...     bar.advance(2, "epoch 100")
    >>> stream.getvalue().splitlines()[-1]
    'kkt: 2/4 | epoch 100 | ... elapsed, about ... left'
    """

    def __init__(
        self, what: str, total: float, enabled: bool = True, stream: TextIO | None = None
    ) -> None:
        self.what = what
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.completed = 0.0
        self.text = ""
        self.start = time.perf_counter()
        self._last_print = -math.inf
        self._rich = self._tqdm = self._ticker = None
        if not enabled:
            return
        if in_notebook():
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=total, desc=what, file=self.stream)
        elif self.stream.isatty():
            self._rich = _shared_live(self.stream)
            self._task = self._rich.add_task(what, total=total, left="")
        else:
            # A long step (one checkpoint's certificates) still says every PLAIN_PERIOD
            # seconds that it is alive, with the time so far.
            self._lock = threading.Lock()
            self._stop = threading.Event()
            # the caller's remaining time, and when it was given
            self._remaining_override: tuple[float | None, float] = (None, 0.0)
            self._ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float | None:
        """Seconds left at the pace so far (None before any progress)."""
        if self.completed <= 0:
            return None
        return self.elapsed() * max(self.total - self.completed, 0.0) / self.completed

    def advance(self, amount: float = 1, text: str | None = None) -> None:
        self.update(self.completed + amount, text)

    def update(
        self,
        completed: float,
        text: str | None = None,
        remaining: float | None = None,
        total: float | None = None,
    ) -> None:
        """Set the progress (and its text); ``remaining`` overrides the pace's estimate."""
        self.completed = completed
        self.total = self.total if total is None else total
        self.text = self.text if text is None else text
        if not self.enabled:
            return
        left = self.remaining() if remaining is None else remaining
        if self._tqdm is not None:
            self._tqdm.total = self.total
            self._tqdm.n = completed
            self._tqdm.set_postfix_str(f"{self.text} | {_left(left)}")
        elif self._rich is not None:
            description = f"{self.what} {self.text}".strip()
            self._rich.update(
                self._task,
                completed=completed,
                total=self.total,
                description=description,
                left=_left(left),
            )
        else:
            ticker = self._ticker
            if ticker is not None and not ticker.is_alive() and not self._stop.is_set():
                ticker.start()  # from the first update on: a bar never shown needs none
            with self._lock:
                self._remaining_override = (remaining, time.perf_counter())
                due = time.perf_counter() - self._last_print >= PLAIN_PERIOD
                if due or completed >= self.total:
                    self._print_line(left)

    def _tick(self) -> None:
        while not self._stop.wait(PLAIN_PERIOD / 4):
            with self._lock:
                now = time.perf_counter()
                if now - self._last_print >= PLAIN_PERIOD:
                    given, at = self._remaining_override
                    left = self.remaining() if given is None else max(given - (now - at), 0.0)
                    self._print_line(left)

    def _print_line(self, left: float | None) -> None:
        self._last_print = time.perf_counter()
        if self.total == 1:  # a fraction
            shown = f"{100 * self.completed:.0f}%"
        else:
            shown = f"{self.completed:g}/{self.total:g}"
        tail = f"{format_duration(self.elapsed())} elapsed, {_left(left)}"
        parts = [f"{self.what}: {shown}", self.text, tail]
        print(" | ".join(part for part in parts if part), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """Print a line above the bar."""
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.console.print(text, markup=False, highlight=False)
        elif self._tqdm is not None:
            self._tqdm.write(text, file=self.stream)
        else:
            with self._lock:
                print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            if self._ticker.is_alive():
                self._ticker.join()
            self._ticker = None
        if self._rich is not None:
            _release_live(self._rich, self._task)
            self._rich = None
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
