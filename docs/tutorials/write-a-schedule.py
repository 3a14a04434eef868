# %% [markdown]
# # Write a schedule
#
# A schedule decides the step size of every step and whether an epoch is kept. marginlab's
# built-in ones (`Constant`, `LossBased`, `Normalized`, `InverseSqrt`) are small frozen
# dataclasses in `marginlab.training.schedules`; a schedule of your own is another one, with
# the same three methods, and `marginlab.fit` trains with it unchanged.
#
# ## The interface
#
# A step is `theta -= eta * grad(L_B)`, with `L_B` the mean loss of the batch. Since
# `grad(L_B) = L_B * grad(log L_B)` and `grad(log L_B)` is always of order one, the engine
# asks the schedule for **`log(eta * L_B)`**, the logarithm of the factor in front of
# `grad(log L_B)`. `L_B` itself is never formed, which is why training can go on at a loss of
# `1e-400`.
#
# - `init(log_loss)` returns the first state, given the log mean training loss;
# - `log_step_factor(state, log_batch_loss)` returns `log(eta * L_B)` for the next step,
#   or `None` to abort the epoch (a failed attempt);
# - `end_epoch(state, log_loss, completed, smoothed_margin=None)` returns
#   `(accepted, new_state)` once the full training loss after the epoch is known. A rejected
#   epoch is rolled back and tried again from the same weights, with the new state.
#   (`smoothed_margin` is given only under `LossBased(reject_margin_decrease=True)`.)
#
# and a class attribute `rolls_back`: whether the schedule may reject an epoch whose loss is
# finite. One that never does lets full-batch training compute the next epoch's gradient in
# the same pass as the loss. The state is a `ScheduleState`, whose `alpha` and `rollbacks`
# appear in the metrics.

# %%
import math
from dataclasses import dataclass, replace
from typing import ClassVar

import pandas as pd
import torch
from torch import nn

import marginlab
from marginlab.training.schedules import ScheduleState

# %% [markdown]
# ## A backtracking schedule
#
# Normalized gradient descent takes the step `theta -= alpha * grad(log L)`: a constant
# factor `log(eta * L_B) = log(alpha)`. Too large an `alpha` raises the loss. The schedule
# below keeps an epoch only if it did not raise the training loss; otherwise the epoch is
# rolled back and `alpha` is halved. After each kept epoch `alpha` grows a little, so the
# step follows what the problem allows.


# %%
@dataclass(frozen=True)
class Backtracking:
    """Normalized steps ``alpha * grad(log L)``; ``alpha`` shrinks on a rise, grows after a fall."""

    alpha: float = 8.0
    shrink: float = 2.0
    grow: float = 1.1
    rolls_back: ClassVar[bool] = True

    def init(self, log_loss: float) -> ScheduleState:
        return ScheduleState(alpha=self.alpha, log_frame=log_loss)

    def log_step_factor(self, state: ScheduleState, log_batch_loss: float) -> float | None:
        # log(eta * L_B) = log(alpha): eta = alpha / L_B, whatever the loss.
        return math.log(state.alpha) if math.isfinite(log_batch_loss) else None

    def end_epoch(
        self,
        state: ScheduleState,
        log_loss: float,
        completed: bool,
        smoothed_margin: float | None = None,
    ) -> tuple[bool, ScheduleState]:
        if completed and log_loss <= state.log_frame:
            return True, replace(state, alpha=state.alpha * self.grow, log_frame=log_loss)
        return False, replace(state, alpha=state.alpha / self.shrink, rollbacks=state.rollbacks + 1)


# %% [markdown]
# The methods are plain functions of their arguments, so the schedule can be checked on its
# own before it trains anything: a fall in the loss is kept, a rise is rejected and halves
# the step.

# %%
schedule = Backtracking()
state = schedule.init(log_loss=-1000.0)
assert schedule.log_step_factor(state, log_batch_loss=-1000.0) == math.log(8.0)

accepted, after_fall = schedule.end_epoch(state, log_loss=-1010.0, completed=True)
assert accepted and after_fall.log_frame == -1010.0

accepted, after_rise = schedule.end_epoch(after_fall, log_loss=-1005.0, completed=True)
assert not accepted and after_rise.alpha == after_fall.alpha / 2 and after_rise.rollbacks == 1
after_rise

# %% [markdown]
# ## Train with it
#
# Two blobs and a bias-free two-layer ReLU network, as in
# [Train your own model](../fit-your-own-model/). Each schedule trains a fresh copy of the
# same network to a mean training loss of `1e-300`.

# %%
generator = torch.Generator().manual_seed(0)
n = 50
x = torch.cat(
    [torch.randn(n, 2, generator=generator) + 2, torch.randn(n, 2, generator=generator) - 2]
).double()
y = torch.cat([torch.ones(n), torch.zeros(n)]).long()


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(2, 32, bias=False), nn.ReLU(), nn.Linear(32, 1, bias=False)
    ).double()


def train(schedule) -> marginlab.Run:
    return marginlab.fit(
        network(),
        x,
        y,
        loss="logistic",
        schedule=schedule,
        target_loss="1e-300",
        max_epochs=2000,
        progress=False,
    )


run = train(Backtracking())
columns = ["epoch", "attempts", "log10_loss_mean", "alpha", "rollbacks", "normalized_margin"]
run.metrics[columns].tail()

# %%
assert run.metrics["log10_loss_mean"].iloc[-1] < -300
assert run.metrics["rollbacks"].iloc[-1] > 0  # it did back off at least once

# %% [markdown]
# ## Against the loss-based schedule
#
# `LossBased()` (Lyu & Li) is the same idea with gentler factors: its step is
# `alpha * L_B / Lbar` times `grad(log L_B)`, with `Lbar` the loss of the last kept epoch, and
# `alpha` grows by `2**0.2` after a kept epoch and shrinks by `2**0.1` after a rejected one.
# How many epochs (and attempts, counting the rejected ones) each needs to reach `1e-300`, and
# the normalized margin each ends with:

# %%
rows = []
for name, each_run in [("Backtracking()", run), ("LossBased()", train(marginlab.LossBased()))]:
    last = each_run.metrics.iloc[-1]
    rows.append(
        {
            "schedule": name,
            "epochs": int(last["epoch"]),
            "attempts": int(last["attempts"]),
            "log10 loss": round(last["log10_loss_mean"], 1),
            "normalized margin": last["normalized_margin"],
        }
    )
pd.DataFrame(rows)

# %% [markdown]
# ## Saved runs
#
# A run directory records the schedule in its configuration. A built-in schedule is written
# out in full, so `marginlab resume` rebuilds it from the directory alone; a schedule of your
# own is recorded as `custom`, and a run that used one is resumed from Python, given the
# schedule again (its state, `alpha` included, comes from the checkpoint):

# %%
import tempfile
from pathlib import Path

out = Path(tempfile.mkdtemp()) / "backtracking"
marginlab.fit(
    network(),
    x,
    y,
    loss="logistic",
    schedule=Backtracking(),
    target_loss="1e-300",
    out=out,
    progress=False,
)
print(marginlab.load_run(out).config["train"]["schedule"])

marginlab.resume(out, ["train.target_log10_loss=-600"], schedule=Backtracking(), progress=False)
resumed = marginlab.load_run(out).metrics
resumed[["epoch", "log10_loss_mean", "alpha", "rollbacks"]].tail(3)

# %%
assert resumed["log10_loss_mean"].iloc[-1] < -600
