"""Time per step of the engine against the hand-written loop each reproduction used to run.

For every former hand loop (``hand_loops.py``), the reproduction's own training call, which
now goes through :func:`marginlab.fit`, and the old loop train the same problem; both are
timed in this process, interleaved over ``--rounds`` rounds so that load from other
processes hits both alike, with one thread, in CPU time (``time.process_time``, so that
waiting for a core on a loaded machine is not counted). The time per step is the slope
between a run of ``--iters`` steps and one of a tenth of that, so set-up (run directory,
first evaluation) is left out. The table gives the medians and their ratio, engine over
loop (the target is at most 1.25).

- ``chizat-bach``: both layers of a width-1000 two-layer ReLU net on the clusters data
  (``n = 256``, ``d = 15``), the reference step, one replica, float32 and float64; and the
  size of the ci scale (``m = 16``, ``n = 64``, ``d = 3``, 3 replicas, float32), where the
  reproduction trains each replica with its own ``fit`` and the old loop batched them.
- ``vardi``: the two-phase gradient descent of Vardi et al. (plain steps, then normalized
  ones) on construction V4's network from 64 random initializations at once (the
  reproduction runs 256 at ci), and from one.

- ``cai``: the two-layer leaky-softplus network of Cai et al. (``m = 8``) on the ci XOR data
  (``n = 40``, ``d = 2``), constant-step GD in float64 at the best monotone step
  (``eta C = 72``), every step recorded: one run (``two_layer_gd``, one ``fit``), and the
  ``k = 16`` runs that the old loop stacked in one batch (the restarts from checkpoints),
  one ``fit`` each: there the time per step is that of all ``k`` runs.
- ``soudry``: logistic regression (5 inputs, 50 points of the ``gaussians-linear`` data) by
  constant-step gradient descent from 0, whose every step is recorded (``fit(trace=True)``),
  against the reproduction's NumPy loop (:func:`~marginlab.experiments.papers.soudry.logistic_gd`,
  still its training loop: see the ``floor`` column), and ``floor``: the least a torch step
  costs, the same update written as four torch operations with no bookkeeping at all.

Run: ``python benchmarks/bench_engine_vs_loops.py [--iters 300] [--rounds 5]``.

Example
-------
>>> problem = chizat_bach_problem(n=16, d=3)
>>> timers = chizat_bach_timers(problem, torch.float64, width=8)
>>> sorted(timers), timers["engine"](3) > 0
(['engine', 'loop'], True)
>>> cai_timers(runs=2)["engine"](3) > 0
True
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from hand_loops import cai_loop, chizat_bach_loop, vardi_loop

from marginlab.data import load_dataset
from marginlab.experiments.papers import cai
from marginlab.experiments.papers.chizat_bach import train_twonet
from marginlab.experiments.papers.soudry import logistic_gd
from marginlab.experiments.papers.vardi import batched_gd, random_inits
from marginlab.measure.references.vardi import construction
from marginlab.training.fit import fit
from marginlab.training.schedules import Constant

# seconds of a run of the given number of steps
Timer = Callable[[int], float]


def _seconds(work: Callable[[], object]) -> float:
    # CPU time of this process: on a shared machine wall time also counts the waits for a
    # core, which have nothing to do with either side.
    start = time.process_time()
    work()
    return time.process_time() - start


def chizat_bach_problem(
    n: int = 256, d: int = 15, replicas: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clusters data, ``(R, n, d)`` inputs and ``(R, n)`` labels: one draw, repeated
    ``replicas`` times (the cost of a step does not depend on the draw)."""
    data = load_dataset("clusters", n=n, d=d, test_n=0)
    return data.x_train[None].repeat(replicas, 1, 1), data.y_train[None].repeat(replicas, 1)


def chizat_bach_timers(
    problem: tuple[torch.Tensor, torch.Tensor], dtype: torch.dtype, width: int = 1000
) -> dict[str, Timer]:
    """The reproduction's training (engine) and the old loop on ``problem``."""
    x, y = problem
    return {
        "engine": lambda steps: _seconds(
            lambda: train_twonet(x, y, width, niter=steps, dtype=dtype)
        ),
        "loop": lambda steps: _seconds(
            lambda: chizat_bach_loop(x, y, width, niter=steps, dtype=dtype)
        ),
    }


def cai_timers(runs: int = 1, eta_c: float = 72.0) -> dict[str, Timer]:
    """Cai et al.'s ci XOR problem: ``runs`` runs through ``fit`` against the old loop's one
    batch of them."""
    setup = cai.SETUPS["xor"]["ci"]
    x, y = cai.xor_data(setup.params, seed=setup.seed)
    eta = eta_c / cai.curvature_constant(setup.width, float(x.norm(dim=1).max()))
    start = cai.initial_weights(setup.width, x.shape[1], runs, setup.init_scale, setup.seed)
    return {
        "engine": lambda steps: _seconds(
            lambda: cai.two_layer_gd(x, y, start, [eta] * runs, steps)
        ),
        "loop": lambda steps: _seconds(lambda: cai_loop(x, y, start, [eta] * runs, steps)),
    }


def soudry_timers(n: int = 50, lr: float = 1.0) -> dict[str, Timer]:
    """Soudry et al.'s problem: the engine, the reproduction's NumPy loop, the torch floor."""
    data = load_dataset("gaussians", n=n, d=5, margin=0.1)
    x, y = data.x_train, data.y_train
    signed = (2.0 * y.double() - 1.0)[:, None] * x  # rows y_i x_i
    w_star = torch.ones(x.shape[1], dtype=torch.float64).numpy()  # only the error uses it

    def engine(steps: int) -> object:
        net = torch.nn.Linear(x.shape[1], 1, bias=False).double()
        torch.nn.init.zeros_(net.weight)
        return fit(
            net, x, y, loss="logistic", schedule=Constant(lr), max_epochs=steps,
            log_every=steps, threads=1, progress=False, trace=True,
        )  # fmt: skip

    def floor(steps: int) -> None:
        w = torch.zeros(x.shape[1], dtype=torch.float64)
        for _ in range(steps):
            w += signed.T @ torch.sigmoid(-(signed @ w)) * (lr / len(signed))

    return {
        "engine": lambda steps: _seconds(lambda: engine(steps)),
        "loop": lambda steps: _seconds(
            lambda: logistic_gd(x.numpy(), 2.0 * y.numpy() - 1.0, w_star, steps, lr)
        ),
        "floor": lambda steps: _seconds(lambda: floor(steps)),
    }


def vardi_timers(name: str = "V4", seeds: int = 64) -> dict[str, Timer]:
    """Vardi et al.'s gradient descent from ``seeds`` random initializations of a
    construction's network, all seeds together: the engine's replicas against the old loop.
    The time per step is per step of all seeds."""
    item = construction(name)
    theta0 = random_inits(name, seeds, seed=0)

    def schedule(steps: int) -> dict[str, int]:
        return {"plain_steps": steps // 2, "log_steps": steps - steps // 2}

    return {
        "engine": lambda steps: _seconds(lambda: batched_gd(item, theta0, **schedule(steps))),
        "loop": lambda steps: _seconds(lambda: vardi_loop(item, theta0, **schedule(steps))),
    }


def per_step_ms(timer: Timer, iters: int) -> float:
    """Milliseconds per step: the slope between ``iters`` steps and a tenth of them."""
    short = max(iters // 10, 1)
    return (timer(iters) - timer(short)) / (iters - short) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem = chizat_bach_problem()
    cases = {
        f"chizat-bach m=1000 {name}": chizat_bach_timers(problem, dtype)
        for name, dtype in (("float32", torch.float32), ("float64", torch.float64))
    }
    cases["chizat-bach m=16 3 replicas (ci)"] = chizat_bach_timers(
        chizat_bach_problem(64, 3, replicas=3), torch.float32, width=16
    )
    cases["cai m=8 n=40 one run"] = cai_timers()
    cases["cai m=8 n=40 16 runs"] = cai_timers(runs=16)
    cases["soudry n=50 d=5"] = soudry_timers()
    cases["vardi V4, 64 seeds"] = vardi_timers("V4", 64)
    cases["vardi V4, 1 seed"] = vardi_timers("V4", 1)
    samples = {case: {side: [] for side in timers} for case, timers in cases.items()}
    for _ in range(args.rounds):
        for case, timers in cases.items():
            for side, timer in timers.items():
                samples[case][side].append(per_step_ms(timer, args.iters))
    print(f"iters={args.iters} rounds={args.rounds} threads=1 (medians, ms per step)")
    print(f"{'problem':32s} {'engine':>8s} {'loop':>8s} {'ratio':>6s} {'floor':>8s}")
    for case, sides in samples.items():
        engine, loop = (statistics.median(sides[s]) for s in ("engine", "loop"))
        floor = f"{statistics.median(sides['floor']):8.4f}" if "floor" in sides else ""
        print(f"{case:32s} {engine:8.3f} {loop:8.3f} {engine / loop:6.2f} {floor}")


if __name__ == "__main__":
    main()
