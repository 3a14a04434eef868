import pytest
import torch

from marginlab import load_run, train
from marginlab.results.kkt import kkt_along_training
from marginlab.results.robustness import attack_along_training

# The suite's models are tiny: one thread is faster and immune to a busy machine.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def recorded_runs(tmp_path_factory):
    """A digits MLP run with KKT and robustness results beside it, and a 2-d XOR run."""
    root = tmp_path_factory.mktemp("report")
    digits = train(
        {
            "name": "digits",
            "loss": "logistic",
            "data": {"name": "digits", "classes": [3, 8], "n_train": 200},
            "model": {"kind": "mlp", "hidden": [16]},
            "train": {"schedule": "loss_based", "max_epochs": 150, "target_log10_loss": None},
            "log": {"every": 5, "checkpoint_decades": 1},
        },
        root / "digits",
        progress=False,
    )
    run = load_run(digits)
    kkt_along_training(run, taus=[0.1]).save(run)
    levels = [str(c.epoch) for c in run.checkpoints[1:]]
    report = attack_along_training(run, levels, n=30, attack="deepfool", progress=False)
    report.save(run)
    xor = train(
        {
            "name": "xor",
            "loss": "logistic",
            "data": {"name": "xor", "params": {"n": 40, "noise": 0.2}},
            "model": {"kind": "two_layer", "width": 20},
            "train": {"schedule": "loss_based", "max_epochs": 60, "target_log10_loss": None},
            "log": {"every": 10},
        },
        root / "xor",
        progress=False,
    )
    return digits, xor
