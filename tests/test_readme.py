"""The README works top to bottom: every command of its shell blocks, run in order as a
user would after `make demo` and `source .venv/bin/activate`, in a fresh folder.

Fast commands run as written; slow ones with a reduced setting (fewer epochs, samples or
replicas), listed below with the reason. A command added to the README must be added here
too, or this test fails: no README line goes unchecked by accident.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the environment's bin: what activation puts on the PATH

# Command as written -> the command run (None: as written), or SKIP and why.
SKIP = object()
MNIST = "needs MNIST in $MARGINLAB_DATA"
COMMANDS: dict[str, str | None | tuple[object, str]] = {
    "make demo": (SKIP, "`marginlab run digits-cnn`, run below to a higher loss level"),
    "make test": (SKIP, "the suite that holds this test"),
    "source .venv/bin/activate": (SKIP, "this test puts the environment's bin on the PATH"),
    "marginlab --version": None,
    "marginlab": None,
    "marginlab presets": None,
    "marginlab config --list": None,
    # to 1e-25 and 1e-30 instead of 1e-50 and 1e-100: still a checkpoint below 1e-20
    "marginlab run digits-cnn --set train.target_log10_loss=-50 --out runs/quick": (
        "marginlab run digits-cnn --set train.target_log10_loss=-25 --out runs/quick"
    ),
    "marginlab resume runs/quick --set train.target_log10_loss=-100": (
        "marginlab resume runs/quick --set train.target_log10_loss=-30"
    ),
    "marginlab plot runs/quick --what margins --out runs/quick/margins.pdf": None,
    "marginlab run digits-cnn --set data.classes=[0,1] --set train.target_log10_loss=-50 "
    "--out runs/binary": (
        "marginlab run digits-cnn --set data.classes=[0,1] --set train.target_log10_loss=-5 "
        "--out runs/binary"
    ),
    "marginlab run mnist-cnn-loss-based --set data.n_train=1000 --set train.max_epochs=30 "
    "--out runs/mnist": (
        "marginlab run mnist-cnn-loss-based --set data.n_train=100 --set data.n_test=100 "
        "--set train.max_epochs=2 --out runs/mnist"
    ),
    "marginlab run mnist-cnn-loss-based": (SKIP, "weeks; its warning: test_progress.py"),
    # every checkpoint of the deep CNN took over 15 minutes on a busy machine: the last one
    "marginlab kkt runs/quick --checkpoint all": "marginlab kkt runs/quick --checkpoint last",
    "marginlab attack runs/quick --checkpoints 1e-10,1e-20,last --n 100 --option steps=1000": (
        "marginlab attack runs/quick --checkpoints 1e-10,1e-20,last --n 6 --option steps=1000"
    ),
    "marginlab attack runs/quick --attack best --n 20 --option cw.steps=200": (
        "marginlab attack runs/quick --attack best --n 3 --option cw.steps=20"
    ),
    "marginlab report runs/quick": None,
    "marginlab plot runs/quick --what kkt --out runs/quick/kkt.pdf": None,
    "marginlab run gaussians-linear --out runs/linear": None,
    "marginlab reference runs/linear --kind svm": None,
    "marginlab sweep digits-mlp --grid seed=0,1 --grid model.hidden=[32],[64] "
    "--set train.max_epochs=50 --out runs/sweep": (
        "marginlab sweep digits-mlp --grid seed=0,1 --grid model.hidden=[32],[64] "
        "--set train.max_epochs=3 --out runs/sweep"
    ),
    "marginlab run digits-mlp --replicas 32": (
        "marginlab run digits-mlp --replicas 2 --set train.max_epochs=3 --out runs/replicas"
    ),
    "marginlab sweep digits-mlp --grid seed=0,1,2,3 --max-parallel 2": (
        "marginlab sweep digits-mlp --grid seed=0,1 --max-parallel 2 --set train.max_epochs=3"
    ),
    "torchrun --nproc-per-node 2 -m marginlab run my-full-batch.yaml": (
        SKIP,
        "a YAML file of the reader's own; data-parallel runs: test_distributed.py",
    ),
    "marginlab reproduce all --scale ci": (SKIP, "6 minutes; test_reproduce*.py run it"),
    "marginlab reproduce lyu-li --scale cpu": (SKIP, "about an hour"),
    "marginlab reproduce chizat-bach --scale full --out repro/cb": (SKIP, "the papers' scale"),
    "marginlab run digits-cnn --set model.spec=conv3x3-8,maxpool,conv3x3-16,maxpool,fc32,fc10 "
    "--set train.batch_size=50 --set train.speculate=false": (
        "marginlab run digits-cnn --set model.spec=conv3x3-8,maxpool,conv3x3-16,maxpool,fc32,"
        "fc10 --set train.batch_size=50 --set train.speculate=false "
        "--set train.target_log10_loss=-3 --out runs/order4"
    ),
}


def readme_commands(text: str) -> list[str]:
    """The commands of the README's ```bash blocks, in order: continuation lines joined,
    comments dropped, spaces normalized.

    Examples
    --------
    >>> readme_commands("x\\n```bash\\nmarginlab run a \\\\\\n  --set b=1   # why\\n```\\n")
    ['marginlab run a --set b=1']
    """
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = " ".join(re.sub(r"\s+#.*$", "", line).split())
            if command:
                commands.append(command)
    return commands


def test_every_readme_command_is_checked_here():
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    unknown = [command for command in commands if command not in COMMANDS]
    assert not unknown, f"README commands this test does not know: {unknown}"
    stale = [command for command in COMMANDS if command not in commands]
    assert not stale, f"commands no longer in the README: {stale}"


@pytest.mark.slow
def test_the_readme_runs_top_to_bottom(tmp_path):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    has_mnist = "MARGINLAB_DATA" in env and (Path(env["MARGINLAB_DATA"]) / "mnist").is_dir()
    for written in readme_commands((ROOT / "README.md").read_text(encoding="utf-8")):
        run = COMMANDS[written]
        if isinstance(run, tuple) or ("mnist" in written and not has_mnist):
            continue
        command = written if run is None else run
        done = subprocess.run(
            shlex.split(command),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    # what the After-training commands promised is there
    quick = tmp_path / "runs" / "quick"
    for name in ("kkt.json", "report.html", "margins.pdf", "kkt.pdf"):
        assert (quick / name).exists(), name
    assert list(quick.glob("robustness-l2-*.json"))
    assert (tmp_path / "runs" / "linear" / "reference-svm.json").exists()
    assert (tmp_path / "runs" / "sweep" / "summary.csv").exists()
