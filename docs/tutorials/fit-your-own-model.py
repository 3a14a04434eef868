# %% [markdown]
# # Train your own model
#
# `marginlab.fit` trains any `torch.nn.Module` on any tensors with marginlab's engine: every
# loss is carried as its logarithm, so training goes on far below float64's smallest number
# (about `4.9e-324`), and the margins the theory talks about are logged along the way.
#
# This tutorial trains a plain `nn.Sequential` on two Gaussian blobs made here, to a mean
# training loss below `1e-400`, then looks at its margin curve, certifies how close it is to
# a KKT point of the max-margin problem, and compares its margin with the best margin a
# network of its kind can have.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

import marginlab

# %% [markdown]
# ## Data and model
#
# Two blobs in the plane, labelled 1 and 0. The network is a two-layer ReLU MLP without
# biases, so it is 2-homogeneous in its parameters: scaling both weight matrices by `c`
# scales its output by `c**2`. That is what makes the *normalized* margin
# `q_min / ||theta||**2` the quantity gradient descent maximizes (Lyu & Li, 2020).
# marginlab measures the order on a few samples, so nothing needs declaring.
#
# The model trains in its own dtype and on its own device: float64 on the CPU here.

# %%
generator = torch.Generator().manual_seed(0)
n = 50
x = torch.cat(
    [torch.randn(n, 2, generator=generator) + 2, torch.randn(n, 2, generator=generator) - 2]
).double()
y = torch.cat([torch.ones(n), torch.zeros(n)]).long()

torch.manual_seed(0)
model = nn.Sequential(
    nn.Linear(2, 32, bias=False), nn.ReLU(), nn.Linear(32, 1, bias=False)
).double()

# %% [markdown]
# ## Train far below float64
#
# `LossBased()` is the loss-based schedule of Lyu & Li: the learning rate is `alpha / L`,
# growing as the loss falls, with a rollback whenever an epoch raises the loss. A target
# below float64 is written as text: the float `1e-400` is `0.0`.
#
# Without `out=` the run lives in a temporary directory that goes away with the returned
# object; `out="runs/mine"` writes a run directory that every `marginlab` command opens.

# %%
run = marginlab.fit(
    model,
    x,
    y,
    loss="logistic",
    schedule=marginlab.LossBased(),
    target_loss="1e-400",
    progress=False,
)
run.status

# %% [markdown]
# `run.metrics` is a pandas DataFrame with one row per logged epoch (the same columns as
# the run directory's `metrics.jsonl`). The loss is logged as `log10_loss_mean`, since the
# loss itself is not a float64 number any more.

# %%
metrics = run.metrics
columns = ["epoch", "log10_loss_mean", "train_acc", "q_min", "normalized_margin", "smoothed_margin"]
metrics[columns].tail()

# %%
assert metrics["log10_loss_mean"].iloc[-1] < -400
assert run.model is model  # the module itself was trained, in place

# %% [markdown]
# ## The margin curve
#
# Lyu & Li prove that once the loss is small enough the *smoothed* margin never decreases
# (for gradient flow, and for gradient descent with small enough steps), and that both
# margins converge to the same limit. The loss-based schedule takes large steps, so the
# curve may dip here and there while it rises. Plotted against the loss in decades:

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
decades = -metrics["log10_loss_mean"]
ax.plot(decades, metrics["normalized_margin"], label="normalized margin")
ax.plot(decades, metrics["smoothed_margin"], label="smoothed margin")
ax.set_xscale("log")
ax.set_xlabel("-log10 (mean training loss), log scale")
ax.set_ylabel("margin / ||theta||^2")
ax.legend()
fig.tight_layout()

# %% [markdown]
# The run also kept checkpoints at every few loss decades; `run.load_model` gives the
# network as it was there (a loss level reads as "the first checkpoint below it").

# %%
early = run.load_model("1e-20")
[(c.epoch, round(c.log10_loss_mean, 1)) for c in run.checkpoints][:5]

# %% [markdown]
# ## How close to a KKT point?
#
# Gradient descent on a homogeneous network converges in direction to a KKT point of the
# max-margin problem `min ||theta||^2 / 2 s.t. y_n f(x_n) >= 1`. `kkt_along_training`
# certifies each chosen checkpoint as an `(eps, delta)`-KKT point of it: `eps_rel` is the
# stationarity residual relative to `||theta||`, `delta` the complementary slackness, and
# `n_active` the constraints that carry multipliers. Two certificates are computed: with the
# multipliers the loss itself assigns (`loss weights`), and the best multipliers over the
# constraints within `tau` of the smallest margin. Lyu & Li show that `eps` and `delta` can
# be taken to zero as the loss goes to zero; at a finite loss they measure how far the
# direction still is from a KKT point.

# %%
from marginlab.results.kkt import kkt_along_training

table = kkt_along_training(run, ["1e-10", "1e-100", "last"], taus=[0.1])
table.long_table()

# %% [markdown]
# ## Against the reference max margin
#
# For a two-layer ReLU network whose layers both train, the limit direction is the max
# margin in the variation norm of Chizat & Bach (2020), the *F1* max margin, which marginlab
# solves as a convex problem with a certified gap. `compare_reference` puts it beside the
# network's margin, in the same normalization; the ratio is at most 1 and approaches it as
# training goes on (a network of finite width can fall short of it). On the margin curve:

# %%
from marginlab.results.reference import compare_reference

comparison = compare_reference(run, "f1")
comparison.network_margin, comparison.reference_margin, comparison.ratio

# %%
assert 0 < comparison.ratio <= 1 + 1e-6

ax.axhline(comparison.reference_margin, color="gray", linestyle="--", label="F1 max margin")
ax.legend()
fig

# %% [markdown]
# ## Several runs at once: replicas
#
# A list of models trains them as *replicas*: independent runs, each with its own run and
# stopping rule, trained together. Give one value for all (the data here) or a list with one
# per model (here a step size each). With `batched=True` every replica's step comes from one
# vmapped pass over their stacked weights, which pays for many small models; each run is the
# same as the model trained alone, to rounding. Three constant step sizes on the same start:

# %%
starts = [nn.Linear(2, 1, bias=False).double() for _ in range(3)]
for start in starts:
    nn.init.constant_(start.weight, 0.1)
runs = marginlab.fit(
    starts,
    x,
    y,
    loss="logistic",
    schedule=[marginlab.Constant(lr) for lr in (0.5, 2.0, 8.0)],
    max_epochs=200,
    trace=True,  # every epoch's loss, smallest margin and norm, in memory
    progress=False,
    batched=True,
)
fig, ax = plt.subplots(figsize=(6, 3.5))
for lr, replica in zip((0.5, 2.0, 8.0), runs, strict=True):
    trace = replica.trace
    ax.plot(trace["epoch"] + 1, trace["log_loss_mean"] / 2.302585, label=f"lr {lr}")
ax.set_xscale("log")
ax.set_xlabel("epoch + 1")
ax.set_ylabel("log10 (mean training loss)")
ax.legend()
fig.tight_layout()

# %%
assert runs[2].trace["log_loss_mean"].iloc[-1] < runs[0].trace["log_loss_mean"].iloc[-1]

# %% [markdown]
# ## Next
#
# - Write the run to disk with `out="runs/mine"`; then `marginlab kkt runs/mine`,
#   `marginlab reference runs/mine --kind f1`, `marginlab attack runs/mine` and
#   `marginlab report runs/mine` work on it like on any other run.
# - [Write a schedule](../write-a-schedule/) of your own.
