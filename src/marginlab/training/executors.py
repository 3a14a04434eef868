"""How the attempts of a training session are computed: the engine's one seam.

The engine (:mod:`marginlab.training.engine`) decides attempts, records them and ends runs;
what it asks of an executor is only "the next attempt of each run still going", from that
run's accepted weights (after a rejection ``params`` holds them again). An executor is any
object with

- ``__call__(going)`` -> ``{k: Attempt}``, one :class:`~marginlab.training.attempt.Attempt`
  for each index ``k`` in ``going``, with run ``k``'s parameters left at the attempt's
  weights;
- ``close()``, called once when the session ends.

It reads each run's state from the engine's loops (``loop.parts``, ``loop.params``,
``loop.accepted``, ``loop.state``, ``loop.parallel``) and learns whether its last attempt
was accepted from the run's epoch count. Three executors exist:

- :class:`Plain`: each run's attempt in turn, in this process; data-parallel across the ranks
  of a ``torchrun`` launch when the run has a process group;
- :class:`Speculative`: one run's retries computed ahead of time by a second process
  (:mod:`marginlab.training.speculation`);
- :class:`Stacked`: the full-batch attempts of several replicas in one vmapped pass over
  stacked parameters (:mod:`marginlab.training.ensemble` on a GPU).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.func import functional_call, vmap

from marginlab.config import ConfigError
from marginlab.measure.gradient import grouped_log_loss_sums
from marginlab.measure.margins import Evaluation
from marginlab.training.attempt import (
    LOG_LARGEST_STEP,
    Attempt,
    Gradient,
    log_step_factor,
    run_attempt,
)
from marginlab.training.speculation import Speculator

Params = dict[str, torch.Tensor]


class Plain:
    """Every run's attempt in turn, here (the engine's default).

    A full-batch retry starts from the gradient its rejected attempt computed at the same
    weights; the attempt after an accepted one starts from the gradient that came with the
    evaluation, when the attempt computed it (see :class:`~marginlab.training.attempt.Attempt`).
    """

    def __init__(self, loops: Sequence[Any]) -> None:
        self.loops = loops
        # run -> (its epoch count when its last attempt ran, that attempt)
        self._last: dict[int, tuple[int, Attempt]] = {}

    def _start_gradient(self, k: int) -> Gradient | None:
        if k not in self._last:
            return None
        epoch, attempt = self._last[k]
        accepted = self.loops[k].state.epoch > epoch
        return attempt.end_gradient if accepted else attempt.start_gradient

    def __call__(self, going: Sequence[int]) -> dict[int, Attempt]:
        attempts = {}
        for k in going:
            loop = self.loops[k]
            state = loop.state
            attempt = run_attempt(
                loop.parts,
                loop.params,
                state.schedule,
                state.attempts,
                start_gradient=self._start_gradient(k),
                parallel=loop.parallel,
            )
            self._last[k] = (state.epoch, attempt)
            attempts[k] = attempt
        return attempts

    def close(self) -> None:
        """Nothing to release."""


class Speculative:
    """One run's retries run ahead in a worker process (CPU, loss-based schedule)."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.speculator = Speculator(loop.parts)

    def __call__(self, going: Sequence[int]) -> dict[int, Attempt]:
        loop, state = self.loop, self.loop.state
        attempt = self.speculator.attempt(
            loop.params, loop.accepted, state.epoch, state.attempts, state.schedule
        )
        return {k: attempt for k in going}

    def close(self) -> None:
        self.speculator.close()


def _per_replica(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a ``(K,)`` vector to broadcast against a stacked ``(K, ...)`` tensor."""
    return vector.view(-1, *([1] * (like.dim() - 1)))


def _stack_norms(stacks: Params) -> torch.Tensor:
    """Each replica's norm over stacked ``(K, ...)`` tensors, float64 ``(K,)``: each tensor's
    norm in its dtype, as :func:`~marginlab.training.attempt.parameter_norm` takes them."""
    with torch.no_grad():
        squares = sum(
            torch.linalg.vector_norm(stack.flatten(1), dim=1).double().square()
            for stack in stacks.values()
        )
    return squares.sqrt()


class Stacked:
    """Every replica's full-batch attempt in one vmapped pass over stacked parameters.

    The replicas' models hold views of the stack, so the engine's per-run code (rollbacks,
    metrics, checkpoints) reads and writes each replica's weights in place.
    """

    def __init__(self, loops: Sequence[Any]) -> None:
        models = [loop.parts.model for loop in loops]
        self.loops = loops
        self.loss = loops[0].parts.loss
        named = [dict(model.named_parameters()) for model in models]
        self.names = [n for n, p in named[0].items() if p.requires_grad]
        self.params = {n: torch.stack([own[n].detach() for own in named]) for n in self.names}
        for k, own in enumerate(named):
            for n in self.names:
                own[n].data = self.params[n][k]
        frozen = [
            {
                **{n: p.detach() for n, p in own.items() if not p.requires_grad},
                **dict(model.named_buffers()),
            }
            for own, model in zip(named, models, strict=True)
        ]
        self.frozen = {n: torch.stack([f[n] for f in frozen]) for n in frozen[0]}
        self.x = torch.stack([loop.parts.data.x_train for loop in loops])
        self.y = torch.stack([loop.parts.data.y_train for loop in loops])
        self._template = copy.deepcopy(models[0]).to("meta")
        self._forward = vmap(self._outputs)
        try:
            self.grads, self.log_loss, _ = self.evaluate()
        except RuntimeError as error:
            if "vmap" not in str(error):
                raise
            raise ConfigError(
                "batched: the model cannot run under torch.func.vmap, which trains the "
                f"replicas together ({str(error).splitlines()[0]}); train them in turn with "
                "batched=False"
            ) from error
        self._pending: tuple[Params, list[float]] | None = None
        self._epochs = [loop.state.epoch for loop in loops]

    def _outputs(self, params: Params, frozen: Params, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self._template, {**params, **frozen}, (x,))

    def evaluate(self) -> tuple[Params, list[float], list[Evaluation]]:
        """``grad log L`` (stacked), ``log L`` and the evaluation of every replica.

        The replicas' outputs come from one vmapped forward pass; the per-sample losses and
        ``d log L_k / d outputs`` are formed on all of them at once, in closed form
        (:func:`~marginlab.measure.gradient.grouped_log_loss_sums`), and one backward pass
        of the outputs gives every replica its own ``grad log L_k``, since no replica's loss
        depends on another's weights.
        """
        params = {n: p.detach().requires_grad_() for n, p in self.params.items()}
        with torch.enable_grad():
            outputs = self._forward(params, self.frozen, self.x)
        log_losses, margins, log_sums, grad_outputs = grouped_log_loss_sums(
            outputs, self.y, self.loss
        )
        grads = torch.autograd.grad(outputs, list(params.values()), grad_outputs)
        rows, sample_margins = log_losses.unbind(), margins.unbind()  # one view per replica
        log_n = math.log(outputs.shape[1])
        sums = log_sums.tolist()
        # the losses are summed above already: no second logsumexp per replica
        evaluations = [
            Evaluation.with_log_loss_sum(rows[k], sample_margins[k], sums[k])
            for k in range(len(sums))
        ]
        return dict(zip(params, grads, strict=True)), [v - log_n for v in sums], evaluations

    def __call__(self, going: Sequence[int]) -> dict[int, Attempt]:
        """One attempt of every replica in ``going``, from its accepted weights."""
        self._adopt_accepted()
        scale = [0.0] * len(self.loops)
        norms = self._norms()
        attempts = {}
        for k in going:
            loop = self.loops[k]
            log_factor = log_step_factor(
                loop.parts.schedule,
                loop.state.schedule,
                self.log_loss[k],
                loop.params,
                [],
                norms=None if norms is None else norms[k],
            )
            if log_factor is None or log_factor > LOG_LARGEST_STEP:
                attempts[k] = Attempt(False, -math.inf, None, 0, None)
                continue
            scale[k] = math.exp(log_factor)
            log_lr = log_factor - self.log_loss[k]
            attempts[k] = Attempt(True, log_lr, log_lr, 1, None)
        scale = torch.tensor(scale, dtype=torch.float64, device=self.x.device)
        moving = scale > 0
        with torch.no_grad():
            for n in self.names:
                p, g = self.params[n], self.grads[n]
                step = _per_replica(scale.to(p.dtype), p) * g
                p.sub_(torch.where(_per_replica(moving, p), step, torch.zeros_like(step)))
        grads, log_loss, evaluations = self.evaluate()
        self._pending = (grads, log_loss)
        traced = self._traced_norms()
        for k, attempt in attempts.items():
            if attempt.completed:
                attempt.evaluation = evaluations[k]
                attempt.norm = None if traced is None else traced[k]
        return attempts

    def _traced_norms(self) -> list[float] | None:
        """Every replica's ``||theta||`` in one pass when a trace records it (None when no
        replica has a trace)."""
        if all(loop.trace is None for loop in self.loops):
            return None
        return _stack_norms(self.params).tolist()

    def _norms(self) -> list[tuple[float, float]] | None:
        """Every replica's ``(||theta||, ||grad log L||)`` in one pass, for schedules that
        read them (None when none does)."""
        schedules = [loop.parts.schedule for loop in self.loops]
        if not any(
            getattr(s, "uses_norm", False) or getattr(s, "uses_gradient_norm", False)
            for s in schedules
        ):
            return None
        pairs = torch.stack([_stack_norms(self.params), _stack_norms(self.grads)], dim=1)
        return [tuple(pair) for pair in pairs.tolist()]

    def _adopt_accepted(self) -> None:
        """The replicas whose last attempt was accepted start from its gradient."""
        if self._pending is None:
            return
        grads, log_loss = self._pending
        accepted = [k for k, loop in enumerate(self.loops) if loop.state.epoch > self._epochs[k]]
        index = torch.tensor(accepted, dtype=torch.long, device=self.x.device)
        for n in self.names:
            self.grads[n][index] = grads[n][index]
        for k in accepted:
            self.log_loss[k] = log_loss[k]
            self._epochs[k] = self.loops[k].state.epoch
        self._pending = None

    def close(self) -> None:
        """Nothing to release."""
