"""The run directory: configuration, metrics, checkpoints and status, written atomically.

Layout::

    RUN_DIR/
      config.yaml          the resolved configuration
      environment.json     versions, device, threads, data directory
      metrics.jsonl        one JSON object per logged epoch
      checkpoints.jsonl    one line per kept checkpoint (epoch, loss level, file, sha256)
      checkpoints/         safetensors files: latest.safetensors and epoch-NNNNNNN.safetensors
      status.json          running | finished | stopped | interrupted | failed, and why
      writer.lock          locked by the one process writing the run (an flock)
      writer.json          who that is: pid, host, start time (only while it writes)

Every file is replaced atomically (a fresh temporary file, then ``os.replace``) or appended
with a whole line, and a line that cannot be written whole is taken back, so killing the
process or filling the disk at any moment leaves every earlier line and checkpoint intact.
Each checkpoint carries the SHA-256 of its tensors and state in its own metadata, and the
index repeats it for kept checkpoints; both are checked on load. A run directory is data:
nothing is pickled, YAML is read with the safe loader, and a file name in the index that
leads outside ``checkpoints/`` (``..``, an absolute path, a symbolic link) is refused.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save as save_safetensors

from marginlab.errors import UserError
from marginlab.runs.checkpoint_spec import (
    CheckpointSpec,
    select_checkpoint,
)

# libyaml's safe loader and dumper where PyYAML was built with it: twenty times faster than
# the pure-Python ones, which cost 20 ms a config (replicas open hundreds of runs).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

CHECKPOINT_FORMAT = "marginlab-checkpoint-1"
LATEST = "latest.safetensors"
WRITER_LOCK = "writer.lock"
WRITER = "writer.json"
# Words of the problems a reader forgives while a writer is at work.
CUT, MISSING = "is cut short", "is missing"


class RunDirectoryError(UserError):
    """A run directory is missing, damaged, unsafe to open, or cannot be written."""


class RunLockedError(RunDirectoryError):
    """Another process is writing the run directory."""


class RunWriteError(RunDirectoryError):
    """A file of the run directory could not be written (disk full, quota, permissions)."""


@dataclass(frozen=True)
class Checkpoint:
    """A kept checkpoint: its epoch, its training loss (log10, mean) and its file.

    ``reason`` is ``init``, ``loss<1e-K`` or ``last`` (the latest state); ``sha256`` is the
    checksum the index records for it (None for ``last``, whose file carries its own).
    """

    epoch: int
    log10_loss_mean: float | None
    path: Path
    reason: str
    sha256: str | None = None


@dataclass(frozen=True)
class Survey:
    """What :meth:`RunStore.survey` found: the checkpoints a run can continue from (intact,
    and consistent with intact metrics and index), by epoch, and every problem, named."""

    intact: list[Checkpoint]
    problems: list[str]


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _clean(value: Any) -> Any:
    """Map non-finite floats to None: JSON has no nan or inf."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _line(row: dict) -> bytes:
    return (json.dumps(_clean(row), default=_json_default) + "\n").encode("utf-8")


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn an operating-system error while writing ``path`` into a :class:`RunWriteError`."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.ELOOP:
            reason = "it is a symbolic link, which a run directory never writes through"
        raise RunWriteError(f"could not write {path}: {reason}") from error


def _replace(path: Path, data: bytes, sync: bool = False) -> None:
    """Replace ``path`` by ``data`` atomically: readers see the old file or the new one."""
    with _writing(path):
        # A fresh, exclusively created name: a planted link at a fixed name is never followed.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if sync:  # the file's bytes are on disk before its name is
                    os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise


def _append(path: Path, data: bytes) -> None:
    """Append ``data`` whole or not at all (a short write on a full disk is taken back)."""
    with _writing(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        try:
            end = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except BaseException:
                os.ftruncate(fd, end)
                raise
        finally:
            os.close(fd)


def _scan_jsonl(path: Path, check: Callable[[Any], str | None]) -> tuple[list[dict], str | None]:
    """The rows of a JSON-lines file up to its first damaged line, and what is wrong there
    (None when the whole file is intact). ``check`` names what is wrong with a parsed row."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    rows: list[dict] = []
    for number, raw in enumerate(lines, start=1):
        if number == len(lines):  # after the last newline: empty, or a line cut short
            if raw:
                return rows, f"line {number} {CUT} (no end of line): {_excerpt(raw)}"
            break
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return rows, f"line {number} is not valid JSON (corrupted): {_excerpt(raw)}"
        problem = check(row)
        if problem is not None:
            return rows, f"line {number} {problem}"
        rows.append(row)
    return rows, None


def _excerpt(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_metrics_row(row: Any) -> str | None:
    if not isinstance(row, dict) or not _is_int(row.get("epoch")):
        return "is not a metrics row (a JSON object with a non-negative integer epoch)"
    return None


def _check_index_entry(row: Any) -> str | None:
    if not isinstance(row, dict) or not _is_int(row.get("epoch")):
        return "is not a checkpoint entry (a JSON object with a non-negative integer epoch)"
    if not isinstance(row.get("file"), str) or not isinstance(row.get("reason"), str):
        return "is not a checkpoint entry (it needs a file and a reason)"
    loss = row.get("log10_loss_mean")
    if loss is not None and (isinstance(loss, bool) or not isinstance(loss, (int, float))):
        return f"has log10_loss_mean {loss!r}, not a number"
    digest = row.get("sha256")
    if digest is not None and not (
        isinstance(digest, str) and len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    ):
        return f"has sha256 {digest!r}, not a SHA-256 hex digest"
    return None


def checkpoint_digest(tensors: dict[str, torch.Tensor], state_text: str) -> str:
    """SHA-256 of a checkpoint's tensors (names, dtypes, shapes, bytes) and its state.

    Examples
    --------
    >>> a = checkpoint_digest({"w": torch.zeros(2)}, "{}")
    >>> a == checkpoint_digest({"w": torch.zeros(2)}, "{}") != checkpoint_digest(
    ...     {"w": torch.ones(2)}, "{}")
    True
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # read in place, no copy
    digest.update(state_text.encode("utf-8"))
    return digest.hexdigest()


def no_link(path: str | os.PathLike) -> Path:
    """``path``, with a symbolic link there removed: a file written into a run directory
    replaces what is there, and never writes through a link to a file elsewhere.

    Examples
    --------
    >>> import tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> (home / "report.html").symlink_to(home / "elsewhere.html")
    >>> no_link(home / "report.html").exists(), (home / "report.html").is_symlink()
    (False, False)
    """
    path = Path(path)
    if path.is_symlink():
        path.unlink()
    return path


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Load a checkpoint's tensors into ``model``, or say that they do not fit it.

    Examples
    --------
    >>> load_weights(torch.nn.Linear(2, 1), {"weight": torch.zeros(3, 2)}, Path("c.safetensors"))
    Traceback (most recent call last):
    ...
    marginlab.runs.store.RunDirectoryError: c.safetensors: does not fit the model of ...
    """
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise RunDirectoryError(
            f"{path}: does not fit the model of the run's config.yaml ({first})"
        ) from None


def _describe_holder(holder: dict) -> str:
    try:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["started"])))
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        when = "at an unknown time"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}"


def _process_gone(status: dict) -> bool:
    """Whether the process named by a status's ``pid`` (on this host) no longer exists; a
    process of another host, or one this user may not signal, counts as alive.

    Examples
    --------
    >>> _process_gone({"pid": os.getpid(), "host": socket.gethostname()})
    False
    """
    pid, host = status.get("pid"), status.get("host", socket.gethostname())
    if not isinstance(pid, int) or pid <= 0 or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def _print_note(text: str) -> None:
    print(f"marginlab: {text}", file=sys.stderr, flush=True)


class RunStore:
    """Read and write one run directory.

    Opening a store writes nothing; a process that writes the run holds :meth:`writer`.

    Examples
    --------
    >>> import tempfile
    >>> store = RunStore(tempfile.mkdtemp())
    >>> with store.writer():
    ...     store.append_metrics({"epoch": 0, "log10_loss_mean": -1.5})
    >>> store.metrics()[0]["log10_loss_mean"]
    -1.5
    """

    writable = True

    def __init__(self, path: str | os.PathLike, durable: bool = True) -> None:
        self.path = Path(path)
        # False for a directory that lives only as long as its process (fit's in-memory
        # runs): its checkpoints skip the flush to disk that makes them survive a crash.
        self.durable = durable

    # the writer's lock ---------------------------------------------------------------------
    @contextmanager
    def writer(self, notify: Callable[[str], None] = _print_note) -> Iterator[None]:
        """Hold the run directory's writer lock (creating the directory) while writing it.

        A second writer is refused at once with :class:`RunLockedError` naming the holder.
        A lock left by a process that died is taken over, and ``notify`` says so.
        """
        with _writing(self.path):
            self.path.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.path / WRITER_LOCK), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise RunLockedError(
                f"{self.path}: another process is writing this run directory "
                f"({self._holder_text()}); wait for it to end or stop it, then try again"
            ) from None
        try:
            previous = self.holder()
            if previous is not None:
                notify(
                    f"took over the lock of {self.path} from {_describe_holder(previous)}, "
                    "which ended without releasing it (killed or crashed)"
                )
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.time(),
                "command": " ".join(sys.argv),
            }
            _replace(self.path / WRITER, json.dumps(holder).encode("utf-8"))
            yield
        finally:
            with suppress(OSError):
                (self.path / WRITER).unlink()
            lock.release()

    def discard(self) -> None:
        """Remove a new run directory that received nothing but its lock."""
        with suppress(OSError):
            (self.path / WRITER_LOCK).unlink()
        with suppress(OSError):
            self.path.rmdir()  # only if empty: never anything the user put there

    def holder(self) -> dict | None:
        """Who writes the run now (or last, if it died): pid, host, start time; None if
        no process holds it."""
        try:
            holder = json.loads((self.path / WRITER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else {}

    def _holder_text(self) -> str:
        # The holder writes its name right after locking: give it a moment.
        for _ in range(20):
            holder = self.holder()
            if holder is not None:
                return f"held by {_describe_holder(holder)}"
            time.sleep(0.05)
        return "its holder has not written its name yet"

    # configuration and status -------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        text = yaml.dump(config, Dumper=_YAML_DUMPER, sort_keys=False)
        _replace(self.path / "config.yaml", text.encode("utf-8"))

    def read_config(self) -> dict:
        path = self.path / "config.yaml"
        if not path.is_file():
            raise RunDirectoryError(f"{self.path}: not a marginlab run directory (no config.yaml)")
        try:
            config = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        except (UnicodeDecodeError, yaml.YAMLError) as error:
            raise RunDirectoryError(f"{path}: damaged, not readable YAML ({error})") from None
        if not isinstance(config, dict):
            raise RunDirectoryError(f"{path}: damaged, not a configuration mapping")
        return config

    def write_status(self, state: str, message: str = "", **extra: Any) -> None:
        payload = {"state": state, "message": message, **extra}
        if "pid" in extra:  # a pid means something only on its own host
            payload.setdefault("host", socket.gethostname())
        self.write_json("status.json", payload)

    def read_status(self) -> dict:
        """``status.json``, where a ``running`` run whose process is gone (killed, crashed:
        its pid no longer exists on this host) reads as ``interrupted``."""
        status = self.read_json("status.json")
        if status.get("state") == "running" and _process_gone(status):
            status = {
                **status,
                "state": "interrupted",
                "message": f"the process that trained it (pid {status['pid']}) ended without "
                f"saying so (killed or crashed); continue with marginlab resume {self.path}",
            }
        return status

    def read_json(self, name: str) -> dict:
        """Read a JSON file of the run (``{}`` when it does not exist yet)."""
        path = self.path / name
        if not path.exists():
            return {}
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RunDirectoryError(f"{path}: damaged, not valid JSON ({error})") from None
        if not isinstance(payload, dict):
            raise RunDirectoryError(f"{path}: damaged, not a JSON object")
        return payload

    def data_dir(self) -> str | None:
        """The data directory the run was trained with (``environment.json``), if any."""
        found = self.read_json("environment.json").get("data_dir")
        if found is not None and not isinstance(found, str):
            raise RunDirectoryError(
                f"{self.path / 'environment.json'}: damaged, data_dir is {found!r}, not a path"
            )
        return found

    def write_json(self, name: str, payload: Any) -> Path:
        """Write an auxiliary result (e.g. a diagnostic table) next to the run."""
        path = self.path / name
        text = json.dumps(_clean(payload), indent=1, default=_json_default)
        _replace(path, text.encode("utf-8"))
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write a file of the run (e.g. the tensors it trains on), atomically and synced."""
        path = self.path / name
        _replace(path, data, sync=self.durable)
        return path

    # metrics -----------------------------------------------------------------------------
    def append_metrics(self, row: dict) -> None:
        self._append_line("metrics.jsonl", row)

    def metrics(self) -> list[dict]:
        """The metrics rows; a damaged ``metrics.jsonl`` raises :class:`RunDirectoryError`."""
        rows, problem = self._metrics_scan()
        if problem is not None:
            raise self._damage(self.path / "metrics.jsonl", problem)
        return rows

    def _metrics_scan(self, tolerant: bool = True) -> tuple[list[dict], str | None]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            listed = (self.path / "checkpoints.jsonl").exists()
            scanned = [], MISSING + ", though checkpoints were kept" if listed else None
        else:
            scanned = _scan_jsonl(path, _check_metrics_row)
        return self._tolerate_writing(scanned) if tolerant else scanned

    def _tolerate_writing(
        self, scanned: tuple[list[dict], str | None]
    ) -> tuple[list[dict], str | None]:
        """For a reader: while a writer is at work, a line without its end is being
        written and a file not there yet is about to be, neither is damage."""
        rows, problem = scanned
        if problem is not None and (CUT in problem or MISSING in problem) and self.holder():
            return rows, None
        return rows, problem

    def _damage(self, path: Path, problem: str) -> RunDirectoryError:
        return RunDirectoryError(
            f"{path}: {problem}; the lines before it are intact, and `marginlab resume "
            f"{self.path}` says how to continue from the latest intact checkpoint"
        )

    def _append_line(self, name: str, row: dict) -> None:
        _append(self.path / name, _line(row))

    # checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self, file_name: str, tensors: dict[str, torch.Tensor], state: dict) -> str:
        """Write a checkpoint atomically; return its SHA-256 (also in its own metadata)."""
        payload = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        state_text = json.dumps(_clean(state))
        digest = checkpoint_digest(payload, state_text)
        metadata = {"format": CHECKPOINT_FORMAT, "state": state_text, "sha256": digest}
        with _writing(self.path / "checkpoints"):
            (self.path / "checkpoints").mkdir(exist_ok=True)
        content = save_safetensors(payload, metadata)
        _replace(self._checkpoint_path(file_name), content, sync=self.durable)
        return digest

    def record_checkpoint(self, entry: dict) -> None:
        """Add a kept checkpoint to ``checkpoints.jsonl`` (after its file is in place)."""
        self._append_line("checkpoints.jsonl", entry)

    def checkpoint_index(self) -> list[dict]:
        """The entries of ``checkpoints.jsonl``, checked: a damaged line raises
        :class:`RunDirectoryError`, and so does a file that leads outside the directory."""
        entries, problem = self._index_scan()
        if problem is not None:
            raise self._damage(self.path / "checkpoints.jsonl", problem)
        return entries

    def _index_scan(self, tolerant: bool = True) -> tuple[list[dict], str | None]:
        path = self.path / "checkpoints.jsonl"
        if not path.exists():
            logged = (self.path / "metrics.jsonl").exists()
            scanned = [], MISSING + ", though metrics were logged" if logged else None
        else:
            scanned = _scan_jsonl(path, _check_index_entry)
        entries, problem = self._tolerate_writing(scanned) if tolerant else scanned
        for number, entry in enumerate(entries, start=1):
            self._checkpoint_path(entry["file"], f"{path}: line {number}: ")
        return entries, problem

    def _checkpoint_path(self, name: str, where: str = "") -> Path:
        """``checkpoints/<name>``, refused unless it is a file name that stays inside."""
        folder = self.path / "checkpoints"
        if (
            not name
            or name in (".", "..")
            or Path(name).name != name
            or "\\" in name
            or "\0" in name
        ):
            raise RunDirectoryError(
                f"{where}checkpoint file {name!r} is not a file name inside {folder}; refused "
                "(a run directory only refers to files in its own checkpoints folder)"
            )
        path = folder / name
        real, home = path.resolve(), self.path.resolve()
        if real.parent != folder.resolve() or home not in real.parents:
            raise RunDirectoryError(
                f"{where}{path} leads outside the run directory (to {real}); refused"
            )
        return path

    def latest_state(self) -> dict | None:
        """The training state of ``latest.safetensors`` from its header (no weights read);
        None when there is none yet."""
        path = self._checkpoint_path(LATEST)
        if not path.exists():
            return None
        return self._read_header(path)[1]

    def _read_header(self, path: Path) -> tuple[dict, dict]:
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
        except Exception as error:  # safetensors has its own error types for a garbled file
            raise RunDirectoryError(
                f"{path}: damaged, not a readable checkpoint ({error})"
            ) from None
        return metadata, self._state(path, metadata)

    def _state(self, path: Path, metadata: dict) -> dict:
        if metadata.get("format") != CHECKPOINT_FORMAT:
            raise RunDirectoryError(f"{path}: not a marginlab checkpoint (no format mark)")
        try:
            state = json.loads(metadata["state"])
        except (KeyError, json.JSONDecodeError):
            state = None
        if not isinstance(state, dict) or not _is_int(state.get("epoch")):
            raise RunDirectoryError(f"{path}: damaged, its training state is unreadable")
        return state

    def load_checkpoint(
        self, file_name: str, sha256: str | None = None
    ) -> tuple[dict[str, torch.Tensor], dict]:
        """Read and verify a checkpoint: its own checksum and, if given, the index's."""
        path = self._checkpoint_path(file_name)
        if not path.is_file():
            raise RunDirectoryError(f"{path}: missing; the checkpoint file is not there")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        except Exception as error:  # safetensors has its own error types for a garbled file
            raise RunDirectoryError(f"{path}: damaged, cut short or corrupted ({error})") from None
        state = self._state(path, metadata)
        recorded = metadata.get("sha256")
        if recorded is not None or sha256 is not None:
            actual = checkpoint_digest(tensors, metadata["state"])
            if actual != recorded:
                raise RunDirectoryError(
                    f"{path}: damaged, its contents do not match the checksum it was saved with"
                )
            if sha256 is not None and actual != sha256:
                raise RunDirectoryError(
                    f"{path}: not the checkpoint the index lists (checksum differs from "
                    f"{self.path / 'checkpoints.jsonl'})"
                )
        return tensors, state

    def kept_checkpoints(self, with_latest: bool = True) -> list[Checkpoint]:
        """Kept checkpoints by epoch, ending with ``last`` (the latest state), read from the
        index and the latest file's header, not from the weights. ``with_latest`` False:
        leave out a latest checkpoint whose header is damaged instead of raising."""
        kept = [self._kept(entry) for entry in self.checkpoint_index()]
        try:
            state = self.latest_state()
        except RunDirectoryError:
            if with_latest:
                raise
            state = None
        if state is not None:
            rows, _ = self._metrics_scan()
            kept.append(self._latest(state["epoch"], rows))
        return kept

    def _kept(self, entry: dict) -> Checkpoint:
        """The checkpoint of an index entry."""
        return Checkpoint(
            entry["epoch"],
            entry.get("log10_loss_mean"),
            self.path / "checkpoints" / entry["file"],
            entry["reason"],
            entry.get("sha256"),
        )

    def _latest(self, epoch: int, rows: list[dict]) -> Checkpoint:
        losses = [r.get("log10_loss_mean") for r in rows if r["epoch"] == epoch]
        return Checkpoint(
            epoch, losses[-1] if losses else None, self.path / "checkpoints" / LATEST, "last"
        )

    # continuing a run --------------------------------------------------------------------
    def survey(self) -> Survey:
        """Check every file a continued run depends on: the metrics, the index, every kept
        checkpoint and the latest one (weights and checksums read)."""
        problems = []
        limit = math.inf  # the last epoch up to which metrics and index are intact
        rows, metrics_problem = self._metrics_scan(tolerant=False)
        if metrics_problem is not None:
            problems.append(f"{self.path / 'metrics.jsonl'}: {metrics_problem}")
            limit = rows[-1]["epoch"] if rows else 0  # from epoch 0 a run starts over
        entries, index_problem = self._index_scan(tolerant=False)
        if index_problem is not None:
            problems.append(f"{self.path / 'checkpoints.jsonl'}: {index_problem}")
            limit = min(limit, entries[-1]["epoch"] if entries else -1)
        candidates = []
        for entry in entries:
            try:
                self.load_checkpoint(entry["file"], entry.get("sha256"))
            except RunDirectoryError as error:
                problems.append(str(error))
                limit = min(limit, entry["epoch"] - 1)  # continue from before it: it is redone
                continue
            candidates.append(self._kept(entry))
        try:
            _, state = self.load_checkpoint(LATEST)
        except RunDirectoryError as error:
            problems.append(str(error))
        else:
            candidates.append(self._latest(state["epoch"], rows))
            last_row = rows[-1]["epoch"] if rows else -1
            if state.get("logged_epoch", -1) > last_row and metrics_problem is None:
                problems.append(
                    f"{self.path / 'metrics.jsonl'}: ends at epoch {last_row} but the latest "
                    f"checkpoint had logged epoch {state['logged_epoch']} (rows are missing)"
                )
                limit = min(limit, last_row)
        intact = sorted(
            (c for c in candidates if c.epoch <= limit), key=lambda c: (c.epoch, c.reason == "last")
        )
        return Survey(intact, problems)

    def rewind(
        self, which: str | int | CheckpointSpec | None = None
    ) -> tuple[dict[str, torch.Tensor], dict]:
        """Make the run continue from a checkpoint; return its weights and training state.

        ``which`` None: the latest state, provided nothing is damaged; otherwise the error
        names the damage and the latest intact checkpoint to continue from. With ``which``
        (``last``, an epoch or a loss level, among the intact checkpoints), that checkpoint
        becomes the latest, and the metrics and the index are cut back to its epoch (to
        nothing for epoch 0, from which the run starts over).
        """
        survey = self.survey()
        if which is None:
            if survey.problems:
                raise RunDirectoryError(self._offer(survey))
            chosen = survey.intact[-1]
        else:
            chosen = select_checkpoint(survey.intact, which, self.path)
        tensors, state = self.load_checkpoint(chosen.path.name, chosen.sha256)
        # From epoch 0 the run starts over and records epoch 0 again.
        keep = chosen.epoch if chosen.epoch > 0 else -1
        # Latest first: a crash after it leaves a state that a plain resume completes.
        if chosen.reason != "last":
            self._make_latest(chosen.path)
        entries, _ = self._index_scan(tolerant=False)
        metrics, _ = self._metrics_scan(tolerant=False)
        self._rewrite("checkpoints.jsonl", [e for e in entries if e["epoch"] <= keep])
        self._rewrite("metrics.jsonl", [r for r in metrics if r["epoch"] <= keep])
        return tensors, state

    def _offer(self, survey: Survey) -> str:
        found = "; ".join(survey.problems)
        if not survey.intact:
            return (
                f"{self.path} cannot be continued: {found}; no intact checkpoint is left to "
                "continue from, so train it again into a new directory (`marginlab run SPEC "
                "--out NEW_DIR`)"
            )
        best = survey.intact[-1]
        loss = "" if best.log10_loss_mean is None else f", log10 loss {best.log10_loss_mean:.2f}"
        spec = "last" if best.reason == "last" else best.epoch
        return (
            f"{self.path} cannot be continued as it is: {found}. The latest intact checkpoint "
            f"is epoch {best.epoch}{loss}; continue from it (cutting the metrics and the "
            f"checkpoint index back to epoch {best.epoch}) with: "
            f"marginlab resume {self.path} --from-checkpoint {spec}"
        )

    def _rewrite(self, name: str, rows: list[dict]) -> None:
        _replace(self.path / name, b"".join(_line(r) for r in rows))

    def _make_latest(self, path: Path) -> None:
        _replace(self.path / "checkpoints" / LATEST, path.read_bytes(), sync=self.durable)


class ReadOnlyStore(RunStore):
    """A run directory that this process reads but never writes.

    A data-parallel worker other than rank 0 computes exactly what rank 0 writes, so it
    keeps the same code path and drops its writes.
    """

    writable = False

    @contextmanager
    def writer(self, notify: Callable[[str], None] = _print_note) -> Iterator[None]:
        yield

    def write_config(self, config: dict) -> None:
        pass

    def write_json(self, name: str, payload: Any) -> Path:
        return self.path / name

    def write_bytes(self, name: str, data: bytes) -> Path:
        return self.path / name

    def _append_line(self, name: str, row: dict) -> None:
        pass

    def _rewrite(self, name: str, rows: list[dict]) -> None:
        pass

    def _make_latest(self, path: Path) -> None:
        pass

    def save_checkpoint(self, file_name: str, tensors: dict[str, torch.Tensor], state: dict) -> str:
        return ""
