"""Seconds per 1000 samples of each attack of :mod:`marginlab.measure.attacks`.

Times every attack (C&W, DeepFool and FMN in L2; PGD and FMN in L-inf, default options
unless ``--option`` says otherwise) on the digits CNN and on Lyu & Li's MNIST CNN, with
random He-normal weights, on the CPU and on CUDA when present. The labels are the model's
own predictions, so every sample is attacked (a random net misclassifies most true labels,
and misclassified samples are skipped). Random nets sit closer to their boundaries than
trained ones, so early-stopping attacks (C&W) run faster here than on a trained checkpoint;
``--run RUN_DIR`` times a trained run's last checkpoint instead.

MNIST is read from ``$MARGINLAB_DATA`` (or ``--data-dir``); without it that model is
skipped with a message.

Usage::

    python benchmarks/bench_attacks.py --n 100
    python benchmarks/bench_attacks.py --n 20 --attacks l2:cw --option cw.steps=1000
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import yaml

from marginlab.data import load_dataset
from marginlab.experiments.presets import preset
from marginlab.measure.attacks import ATTACKS, BEST, NORMS, attacks_of, run_attack
from marginlab.models import CNN, MNIST_CNN_SPEC
from marginlab.runs.run import load_run

DIGITS_CNN_SPEC = preset("digits-cnn")["model"]["spec"]
ALL_ATTACKS = [(norm, attack) for norm in NORMS for attack in (*attacks_of(norm), BEST)]


def random_cnn(spec: str, data: str, n: int, data_dir: str | None, dtype: torch.dtype):
    """A random bias-first CNN on ``n`` inputs of ``data``, labelled by its predictions."""
    dataset = load_dataset(data, data_dir=data_dir, n_train=n)
    model = CNN(spec, tuple(dataset.input_shape), bias="first", seed=0).to(dtype).eval()
    x = dataset.x_train.to(dtype)
    with torch.no_grad():
        return model, x, model(x).argmax(1)


def trained(run_dir: str, n: int):
    run = load_run(run_dir)
    x, y = run.load_data("train")
    return run.load_model("last"), x[:n], y[:n]


def time_attack(model, x, y, norm: str, attack: str, device: str, options: dict) -> float:
    """Seconds per 1000 samples; ``options`` holds every attack's options by name."""
    if attack == BEST:  # the options of the attacks it runs, as attack.option
        names = attacks_of(norm)
        own = {f"{a}.{k}": v for a, opts in options.items() if a in names for k, v in opts.items()}
    else:
        own = options[attack]
    start = time.perf_counter()
    run_attack(model, x, y, norm=norm, attack=attack, options=own, device=device, progress=False)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / len(x) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="samples per measurement")
    parser.add_argument(
        "--attacks",
        default=",".join(f"{norm}:{attack}" for norm, attack in ALL_ATTACKS),
        help="comma-separated norm:attack pairs (default all)",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="ATTACK.KEY=VALUE",
        help="an attack option, e.g. cw.steps=1000 (repeatable; see ATTACKS[name].options)",
    )
    parser.add_argument("--data-dir", default=os.environ.get("MARGINLAB_DATA"))
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--run", help="time this run's last checkpoint instead")
    args = parser.parse_args(argv)

    pairs = [tuple(item.split(":")) for item in args.attacks.split(",")]
    options: dict[str, dict] = {attack: {} for attack in ATTACKS}
    for item in args.option:
        key, _, value = item.partition("=")
        attack, _, name = key.partition(".")
        if attack not in options or not name:
            parser.error(f"--option: expected ATTACK.KEY=VALUE with ATTACK in {list(options)}")
        options[attack][name] = yaml.safe_load(value)
    dtype = getattr(torch, args.dtype)
    models = {}
    if args.run:
        models[args.run] = trained(args.run, args.n)
    else:
        models["digits CNN"] = random_cnn(DIGITS_CNN_SPEC, "digits", args.n, None, dtype)
        try:
            models["MNIST CNN"] = random_cnn(MNIST_CNN_SPEC, "mnist", args.n, args.data_dir, dtype)
        except FileNotFoundError as error:
            print(f"skipping the MNIST CNN: {error}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    changed = {attack: opts for attack, opts in options.items() if opts}
    print(f"threads {torch.get_num_threads()}, n {args.n}, {args.dtype}, options {changed}")
    print(f"{'model':<12} {'device':<6} {'attack':<14} {'s/1000 samples':>15}")
    for name, (model, x, y) in models.items():
        for device in devices:
            for norm, attack in pairs:
                seconds = time_attack(model, x, y, norm, attack, device, options)
                print(f"{name:<12} {device:<6} {attack + ' ' + norm:<14} {seconds:>15.1f}")


if __name__ == "__main__":
    main()
