"""Run directories that nothing can corrupt: one writer at a time, damage named and
recovered from, a full disk survived, an untrusted directory refused where it points
outside itself; and a command line that never shows a traceback."""

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_cli
import torch
import yaml

from marginlab import load_run, resume, train
from marginlab.cli import main
from marginlab.config import ConfigError
from marginlab.data import Dataset
from marginlab.runs.store import (
    LATEST,
    RunDirectoryError,
    RunLockedError,
    RunStore,
    RunWriteError,
)

# The tiny run of test_cli, trained once per module: the run every case must end equal to.
TINY, strip_time, _assert_same_run = test_cli.TINY, test_cli.strip_time, test_cli._assert_same_run
uninterrupted = test_cli.uninterrupted


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "tiny.yaml"
    # One thread: two processes on a small machine, each waiting for its own threads, would
    # take many times as long.
    spec.write_text(yaml.safe_dump({**TINY, "threads": 1}))
    return spec


def _marginlab(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "marginlab", *map(str, args)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _wait_for(condition, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _error_line(err: str) -> str:
    """The one line a refused command prints (after any progress output)."""
    lines = [line for line in err.strip().splitlines() if line.startswith("marginlab: error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- one writer per run directory -------------------------------------------------------


def test_two_runs_started_together_one_runs_the_other_is_refused_naming_it(tmp_path, uninterrupted):
    spec, out = _spec(tmp_path), tmp_path / "run"
    procs = [_marginlab("run", spec, "--out", out) for _ in range(2)]
    holder = out / "writer.json"
    _wait_for(holder.exists, procs[0] if procs[0].poll() is None else procs[1])
    pid = json.loads(holder.read_text())["pid"]
    winner = next(p for p in procs if p.pid == pid)
    loser = next(p for p in procs if p.pid != pid)
    # Freeze the writer so that the other surely meets it at work.
    winner.send_signal(signal.SIGSTOP)
    _, err = loser.communicate(timeout=120)
    winner.send_signal(signal.SIGCONT)
    winner.communicate(timeout=300)
    assert (winner.returncode, loser.returncode) == (0, 2)
    line = _error_line(err)
    assert f"{out}: another process is writing this run directory" in line
    assert f"pid {pid} on host {socket.gethostname()}, started " in line
    # Nothing of the refused run reached the directory.
    _assert_same_run(load_run(out), uninterrupted)
    assert not holder.exists()


def test_a_killed_writers_lock_is_taken_over_and_the_run_resumes_to_the_same_result(
    tmp_path, uninterrupted, capsys
):
    spec, out = _spec(tmp_path), tmp_path / "run"
    proc = _marginlab("run", spec, "--out", out)
    metrics = out / "metrics.jsonl"
    _wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 8, proc)
    proc.send_signal(signal.SIGSTOP)
    # Readers need no lock: the run reads while its writer holds it.
    reader = load_run(out)
    assert len(reader.metrics) >= 8 and reader.checkpoints[0].reason == "init"
    assert main(["resume", str(out)]) == 2
    assert f"pid {proc.pid} on host" in _error_line(capsys.readouterr().err)
    proc.kill()  # kill -9 of the holder
    proc.communicate()
    # the status still says running; the dead pid makes it read as interrupted
    assert json.loads((out / "status.json").read_text())["state"] == "running"
    status = load_run(out).status
    assert status["state"] == "interrupted"
    assert f"pid {proc.pid}" in status["message"] and "marginlab resume" in status["message"]
    assert main(["resume", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"took over the lock of {out} from pid {proc.pid} on host" in err
    assert "ended without releasing it" in err
    _assert_same_run(load_run(out), uninterrupted)
    assert [c.epoch for c in load_run(out).checkpoints] == [
        c.epoch for c in uninterrupted.checkpoints
    ]


def test_a_second_writer_in_the_same_process_is_refused_and_the_first_goes_on(tmp_path):
    store = RunStore(tmp_path / "run")
    with store.writer():
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()} on host"):
            with store.writer():
                pass
        store.append_metrics({"epoch": 0})
    with store.writer():  # released: the next writer gets it, and no takeover is announced
        pass
    assert store.metrics() == [{"epoch": 0}]


def test_replicas_and_sweep_trials_lock_their_directories(tmp_path, capsys):
    from marginlab.sweep import run_trial

    out = tmp_path / "replicas"
    held = RunStore(out / "seed=2")
    with held.writer():
        argv = ["run", str(_spec(tmp_path)), "--replicas", "2", "--out", str(out)]
        assert main([*argv, "--set", "train.batch_size=null"]) == 2
        assert f"{out / 'seed=2'}: another process is writing" in _error_line(
            capsys.readouterr().err
        )
        assert not (out / "seed=1").exists()  # the other member left nothing behind
        row = run_trial(TINY, str(out / "seed=2"))
    assert row["state"] == "failed" and "another process is writing" in row["reason"]


def test_a_refused_config_leaves_no_directory_behind(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="train.batch_size"):
        train({**TINY, "train": {**TINY["train"], "batch_size": 10**6}}, out, progress=False)
    assert not out.exists()


# --- damage is named, and the run continues from what is intact ---------------------------


@pytest.fixture
def copy_of_run(tmp_path, uninterrupted):
    """A finished run to damage: continuing it from an earlier checkpoint retrains the
    rest, which must come out as the uninterrupted run."""
    out = tmp_path / "run"
    shutil.copytree(uninterrupted.path, out)
    return out


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # inside the tensor data: the file still parses
    path.write_bytes(bytes(data))


def _cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble_line(path: Path, number: int) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = b'{"epoch": 7\x00\xff garbled'
    path.write_bytes(b"\n".join(lines))


def _files(run: Path) -> dict[str, bytes]:
    locks = ("writer.lock", "writer.json")
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name not in locks
    }


def _kept_file(run: Path, number: int) -> Path:
    """The file of the index's line ``number``."""
    entry = json.loads((run / "checkpoints.jsonl").read_text().splitlines()[number - 1])
    return run / "checkpoints" / entry["file"]


def _cut_rows(path: Path) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:10]))


LATEST_FILE = f"checkpoints/{LATEST}"
# How each file is damaged, and what the error must say.
DAMAGE = {
    "latest cut in half": (
        lambda r: _cut_in_half(r / LATEST_FILE),
        "latest.safetensors: damaged, cut short",
    ),
    "latest corrupted": (
        lambda r: _flip_last_byte(r / LATEST_FILE),
        "latest.safetensors: damaged, its contents do not match",
    ),
    "latest missing": (
        lambda r: (r / LATEST_FILE).unlink(),
        "latest.safetensors: missing",
    ),
    "kept checkpoint corrupted": (
        lambda r: _flip_last_byte(_kept_file(r, 5)),
        "epoch-0000067.safetensors: damaged, its contents do not match",
    ),
    "kept checkpoint swapped": (
        lambda r: shutil.copy(_kept_file(r, 4), _kept_file(r, 5)),
        "epoch-0000067.safetensors: not the checkpoint the index lists",
    ),
    "index line garbled": (
        lambda r: _garble_line(r / "checkpoints.jsonl", 4),
        "checkpoints.jsonl: line 4 is not valid JSON",
    ),
    "metrics cut in half": (
        lambda r: _cut_in_half(r / "metrics.jsonl"),
        "is cut short (no end of line)",
    ),
    "metrics line garbled": (
        lambda r: _garble_line(r / "metrics.jsonl", 12),
        "metrics.jsonl: line 12 is not valid JSON",
    ),
    "metrics rows cut off": (
        lambda r: _cut_rows(r / "metrics.jsonl"),
        "metrics.jsonl: ends at epoch 40 but the latest checkpoint had logged epoch 150",
    ),
    "metrics missing": (
        lambda r: (r / "metrics.jsonl").unlink(),
        "metrics.jsonl: is missing",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_named_and_resume_continues_from_the_latest_intact_checkpoint(
    copy_of_run, uninterrupted, damage, capsys
):
    make, named = DAMAGE[damage]
    make(copy_of_run)
    before = _files(copy_of_run)
    with pytest.raises(RunDirectoryError, match=re.escape(named)) as refused:
        resume(copy_of_run, progress=False)
    assert _files(copy_of_run) == before  # a refused resume changes nothing
    offered = re.search(r"--from-checkpoint (\S+)$", str(refused.value)).group(1)
    assert main(["resume", str(copy_of_run)]) == 2
    assert named in _error_line(capsys.readouterr().err)

    resumed = load_run(resume(copy_of_run, from_checkpoint=offered, progress=False))
    assert resumed.status["state"] == "finished"
    _assert_same_run(resumed, uninterrupted)
    assert [(c.epoch, c.reason) for c in resumed.checkpoints] == [
        (c.epoch, c.reason) for c in uninterrupted.checkpoints
    ]


def test_with_nothing_intact_resume_says_to_train_again(copy_of_run, capsys):
    _garble_line(copy_of_run / "checkpoints.jsonl", 1)
    _cut_in_half(copy_of_run / "checkpoints" / LATEST)
    assert main(["resume", str(copy_of_run)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "checkpoints.jsonl: line 1 is not valid JSON" in line
    assert "latest.safetensors: damaged" in line
    assert "no intact checkpoint is left to continue from" in line


@pytest.mark.parametrize("damage", ["metrics line garbled", "index line garbled"])
def test_readers_name_a_damaged_file_instead_of_failing_later(copy_of_run, damage, capsys):
    make, named = DAMAGE[damage]
    make(copy_of_run)
    with pytest.raises(RunDirectoryError, match=re.escape(named)):
        load_run(copy_of_run).metrics  # noqa: B018
    assert main(["report", str(copy_of_run)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert named in line and f"marginlab resume {copy_of_run}" in line


def test_a_damaged_latest_checkpoint_stands_in_the_way_of_last_only(copy_of_run, capsys):
    _cut_in_half(copy_of_run / "checkpoints" / LATEST)
    run = load_run(copy_of_run)
    assert run.checkpoint(139).epoch == 139
    assert main(["kkt", str(copy_of_run)]) == 2
    assert "latest.safetensors: damaged" in _error_line(capsys.readouterr().err)


def test_resume_can_go_back_to_an_earlier_checkpoint_by_epoch_or_loss_level(
    copy_of_run, uninterrupted, capsys
):
    assert main(["resume", str(copy_of_run), "--from-checkpoint", "1e-4"]) == 0
    assert "from epoch 67; its metrics and checkpoint index are cut back" in capsys.readouterr().err
    _assert_same_run(load_run(copy_of_run), uninterrupted)
    assert main(["resume", str(copy_of_run), "--from-checkpoint", "68"]) == 2
    assert "no checkpoint at epoch 68; kept epochs: [0, 5," in capsys.readouterr().err


def test_the_checkpoint_list_reads_the_index_not_the_weights(copy_of_run, uninterrupted):
    for path in (copy_of_run / "checkpoints").iterdir():
        _flip_last_byte(path)  # every weight damaged, every header intact
    run = load_run(copy_of_run)
    assert [(c.epoch, c.reason) for c in run.checkpoints] == [
        (c.epoch, c.reason) for c in uninterrupted.checkpoints
    ]
    with pytest.raises(RunDirectoryError, match="do not match the checksum"):
        run.load_model(39)


# --- a full disk loses nothing ------------------------------------------------------------


def test_a_full_disk_stops_training_cleanly_and_resume_finishes_the_same_run(
    tmp_path, uninterrupted
):
    """A file-size limit (RLIMIT_FSIZE) between a checkpoint's size and the metrics' final
    size: checkpoints fit, and the metrics file fills up in the middle of the run."""
    checkpoint = (uninterrupted.path / "checkpoints" / LATEST).stat().st_size
    metrics = (uninterrupted.path / "metrics.jsonl").stat().st_size
    limit = (checkpoint + metrics) // 2
    assert checkpoint + 1000 < limit < metrics - 1000

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    spec, out = _spec(tmp_path), tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "marginlab", "run", str(spec), "--out", str(out)],
        preexec_fn=limit_file_size,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    line = _error_line(proc.stderr)
    assert f"could not write {out / 'metrics.jsonl'}: File too large" in line
    assert line.endswith(f"continue with: marginlab resume {out}")
    # Nothing half-written: every line whole, and the same rows as the uninterrupted run.
    text = (out / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    rows = [json.loads(row) for row in text.splitlines()]
    expected = strip_time(uninterrupted.store.metrics())
    assert 5 < len(rows) < len(expected)
    assert strip_time(rows) == expected[: len(rows)]
    assert load_run(out).status["state"] == "failed"

    resumed = load_run(resume(out, progress=False))  # the space is back
    _assert_same_run(resumed, uninterrupted)


@pytest.fixture
def small_disk(tmp_path):
    """A 128 KiB tmpfs (where this process may mount one), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the RLIMIT_FSIZE test covers the same path")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_filesystem_stops_training_cleanly_and_resume_finishes_the_same_run(
    small_disk, uninterrupted
):
    out = small_disk / "run"
    with pytest.raises(RunWriteError, match="No space left on device") as stopped:
        train(TINY, out, progress=False)
    assert f"continue with: marginlab resume {out}" in str(stopped.value)
    text = (out / "metrics.jsonl").read_text()
    rows = [json.loads(row) for row in text.splitlines()]
    assert text.endswith("\n") and 5 < len(rows) < len(uninterrupted.store.metrics())
    assert strip_time(rows) == strip_time(uninterrupted.store.metrics())[: len(rows)]
    assert not [p for p in out.rglob("*.tmp")]  # no temporary file left taking space
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    _assert_same_run(load_run(resume(out, progress=False)), uninterrupted)


# --- untrusted run directories ------------------------------------------------------------


def _point_index_outside(run: Path, how: str, outside: Path) -> None:
    shutil.copy(run / "checkpoints" / LATEST, outside)  # a real checkpoint, but elsewhere
    index = run / "checkpoints.jsonl"
    entries = [json.loads(line) for line in index.read_text().splitlines()]
    name = {
        "parent": os.path.relpath(outside, run / "checkpoints"),
        "absolute": str(outside),
        "symlink": "link.safetensors",
    }[how]
    if how == "symlink":
        (run / "checkpoints" / name).symlink_to(outside)
    entries[2]["file"] = name
    index.write_text("".join(json.dumps(e) + "\n" for e in entries))


@pytest.mark.parametrize("how", ["parent", "absolute", "symlink"])
def test_an_index_that_points_outside_is_refused_by_every_reader(copy_of_run, how, capsys):
    outside = copy_of_run.parent / "outside.safetensors"
    _point_index_outside(copy_of_run, how, outside)
    content = outside.read_bytes()
    with pytest.raises(RunDirectoryError, match="refused"):
        load_run(copy_of_run)
    commands = [
        ["resume", str(copy_of_run)],
        ["kkt", str(copy_of_run)],
        ["report", str(copy_of_run)],
        ["attack", str(copy_of_run), "--checkpoints", "last", "--n", "2"],
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        line = _error_line(capsys.readouterr().err)
        assert "checkpoints.jsonl: line 3: " in line and "refused" in line, line
    assert outside.read_bytes() == content
    assert sorted(p.name for p in copy_of_run.parent.iterdir()) == ["outside.safetensors", "run"]


def test_a_latest_checkpoint_linked_outside_is_refused(copy_of_run, capsys):
    outside = copy_of_run.parent / "outside.safetensors"
    latest = copy_of_run / "checkpoints" / LATEST
    shutil.move(latest, outside)
    latest.symlink_to(outside)
    assert main(["kkt", str(copy_of_run)]) == 2
    assert "leads outside the run directory" in _error_line(capsys.readouterr().err)


def test_files_linked_outside_are_replaced_never_written_through(
    copy_of_run, uninterrupted, capsys
):
    outside = {}
    for name in ("metrics.jsonl", "training.png", "report.html", "status.json"):
        target = copy_of_run.parent / f"outside-{name}"
        own = copy_of_run / name
        if own.exists():
            shutil.move(own, target)
        else:
            target.write_text("someone else's file")
        own.symlink_to(target)
        outside[target] = target.read_bytes()
    assert main(["resume", str(copy_of_run), "--from-checkpoint", "139"]) == 0
    assert main(["report", str(copy_of_run)]) == 0
    capsys.readouterr()
    for target, content in outside.items():
        assert target.read_bytes() == content
    assert not any(p.is_symlink() for p in copy_of_run.iterdir())
    _assert_same_run(load_run(copy_of_run), uninterrupted)


def test_a_config_with_python_tags_is_refused_unexecuted(copy_of_run, capsys):
    marker = copy_of_run.parent / "executed"
    (copy_of_run / "config.yaml").write_text(
        f"!!python/object/apply:os.system ['touch {marker}']\n"
    )
    assert main(["report", str(copy_of_run)]) == 2
    assert "config.yaml: damaged, not readable YAML" in _error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_a_config_name_cannot_lead_the_default_run_directory_elsewhere(
    tmp_path, monkeypatch, capsys
):
    spec = tmp_path / "escape.yaml"
    spec.write_text(yaml.safe_dump({**TINY, "name": "../../escaped"}))
    monkeypatch.chdir(tmp_path / "..")
    before = sorted(Path(".").iterdir())
    assert main(["run", str(spec)]) == 2
    assert "name: '../../escaped' must be a plain name" in _error_line(capsys.readouterr().err)
    assert sorted(Path(".").iterdir()) == before


# --- the command line never shows a traceback ---------------------------------------------


def test_resume_refuses_a_change_of_what_is_trained_in_one_line(copy_of_run, capsys):
    assert main(["resume", str(copy_of_run), "--set", "train.lr=0.5"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "--set train.lr=0.5: a resumed run may only change" in line


def test_an_internal_error_is_one_line_with_a_log_of_its_traceback(monkeypatch, capsys):
    from marginlab.commands import train as commands

    def broken(args):
        raise RuntimeError("something marginlab did wrong")

    monkeypatch.setattr(commands, "_presets", broken)
    assert main(["presets"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "internal error (RuntimeError: something marginlab did wrong)" in err
    log = Path(err.rsplit("the traceback is in ", 1)[1])
    assert "Traceback" in log.read_text() and "def broken" not in err
    log.unlink()


def test_bad_arguments_are_one_line_naming_the_argument(capsys):
    assert main(["run", "digits-mlp", "--seed", "x"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "argument --seed: invalid int value: 'x'" in line


# --- data that training cannot use is refused before training ------------------------------


def _toy(**changes):
    parts = {
        "x_train": torch.zeros(4, 2, dtype=torch.float64),
        "y_train": torch.tensor([0, 1, 0, 1]),
        "x_test": torch.zeros(2, 2, dtype=torch.float64),
        "y_test": torch.tensor([0, 1]),
    }
    parts.update(changes)
    return Dataset(
        "toy", parts["x_train"], parts["y_train"], parts["x_test"], parts["y_test"], 2,
        ("-1", "+1"), {},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"x_train": torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [0, 0], [1, 1]])},
         "x_train: 1 sample(s) hold NaN or infinite values (the first is sample 1)"),
        ({"x_test": torch.tensor([[0.0, float("inf")], [0, 0]], dtype=torch.float64)},
         "x_test: 1 sample(s) hold NaN or infinite values"),
        ({"y_train": torch.tensor([0, 1, 2, 1])}, "y_train: label 2 is outside 0..1"),
        ({"y_test": torch.tensor([-1, 1])}, "y_test: label -1 is outside 0..1"),
        ({"x_test": torch.zeros(2, 3, dtype=torch.float64)},
         "x_test: samples of shape (3,) but x_train has (2,)"),
        ({"x_train": torch.zeros(0, 2), "y_train": torch.zeros(0, dtype=torch.int64)},
         "x_train: the train set is empty"),
    ],
)  # fmt: skip
def test_unusable_data_is_refused_naming_the_split(changes, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        _toy(**changes)


def test_unusable_data_is_refused_before_a_run_directory_exists(tmp_path, monkeypatch):
    from marginlab import build

    def nan_data(*args, **kwargs):
        x = torch.ones(4, 2, dtype=torch.float64)
        x[2, 0] = float("nan")
        return Dataset("toy", x, torch.tensor([0, 1, 0, 1]), None, None, 2, ("a", "b"), {})

    monkeypatch.setattr(build, "load_dataset", nan_data)
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"data: x_train: 1 sample\(s\) hold NaN"):
        train(TINY, out, progress=False)
    assert not out.exists()
