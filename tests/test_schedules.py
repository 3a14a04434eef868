"""Schedules against scripted loss sequences (reference semantics of Lyu & Li, App. K.1)."""

import math

import pytest

from marginlab.training.schedules import (
    Constant,
    LossBased,
    Normalized,
    ScheduleState,
    TrainingStopped,
)


def test_loss_based_follows_the_reference_rule_on_a_scripted_sequence():
    schedule = LossBased(alpha=0.1)
    state = schedule.init(log_loss=math.log(2.3))
    # (new mean loss, completed) for each attempt, and what the reference does with it
    script = [
        (math.log(1.0), True, True),  # decrease: accept
        (math.log(1.0), True, True),  # equal: accept (the code accepts on <=)
        (math.log(1.5), True, False),  # increase: reject
        (math.log(0.5), False, False),  # aborted attempt: reject even though lower
        (math.nan, True, False),  # nan: reject
        (math.log(0.2), True, True),
    ]
    alpha, frame, rollbacks = 0.1, math.log(2.3), 0
    for log_loss, completed, expect_accept in script:
        accepted, state = schedule.end_epoch(state, log_loss, completed)
        assert accepted is expect_accept
        if expect_accept:
            alpha, frame = alpha * 2**0.2, log_loss
        else:
            alpha, rollbacks = alpha / 2**0.1, rollbacks + 1
        assert state.alpha == pytest.approx(alpha, rel=1e-15)
        assert state.log_frame == frame
        assert state.rollbacks == rollbacks


def test_loss_based_step_is_alpha_over_frame_in_log_space():
    schedule = LossBased(alpha=0.1)
    state = ScheduleState(alpha=0.25, log_frame=-2000.0)
    # eta = alpha / Lbar, so log(eta * L_B) = log alpha + log L_B - log Lbar
    assert schedule.log_step_factor(state, -2001.0) == pytest.approx(math.log(0.25) - 1.0)


def test_loss_based_aborts_a_batch_600_times_above_the_frame():
    schedule = LossBased(loss_ub=600.0)
    state = ScheduleState(alpha=0.1, log_frame=-100.0)
    assert schedule.log_step_factor(state, -100.0 + math.log(599.0)) is not None
    assert schedule.log_step_factor(state, -100.0 + math.log(601.0)) is None
    assert schedule.log_step_factor(state, math.inf) is None
    assert schedule.log_step_factor(state, math.nan) is None


def test_loss_based_stops_with_a_message_when_alpha_underflows_its_bound():
    schedule = LossBased(alpha=1e-49, min_alpha=1e-50)
    state = schedule.init(0.0)
    rejections = 0
    with pytest.raises(TrainingStopped, match="min_alpha"):
        while True:
            _, state = schedule.end_epoch(state, 1.0, True)
            rejections += 1
    # 1e-49 / 2^(k/10) < 1e-50 first at k = ceil(10 log2 10) = 34
    assert rejections == math.ceil(10 * math.log2(10)) - 1


def test_constant_learning_rate_and_divergence():
    schedule = Constant(lr=0.01)
    state = schedule.init(-5.0)
    assert schedule.log_step_factor(state, -700.0) == pytest.approx(math.log(0.01) - 700.0)
    accepted, state = schedule.end_epoch(state, -6.0, True)
    assert accepted and state.log_frame == -6.0
    with pytest.raises(TrainingStopped, match="diverged"):
        schedule.end_epoch(state, math.nan, True)


def test_normalized_step_factor_is_alpha_whatever_the_loss():
    schedule = Normalized(alpha=0.3)
    state = schedule.init(0.0)
    for log_batch_loss in (0.0, -50.0, -5000.0):
        assert schedule.log_step_factor(state, log_batch_loss) == pytest.approx(math.log(0.3))
    with pytest.raises(TrainingStopped):
        schedule.end_epoch(state, 0.0, completed=False)


def test_margin_guard_rejects_a_lower_smoothed_margin_and_keeps_the_reference_otherwise():
    guarded, reference = LossBased(reject_margin_decrease=True), LossBased()
    state = ScheduleState(alpha=0.1, log_frame=-50.0, smoothed_margin=2.0)
    # the loss fell, the smoothed margin fell: only the guarded schedule rejects
    accepted, retried = guarded.end_epoch(state, -51.0, True, smoothed_margin=1.999)
    assert not accepted and retried == guarded.retry(state)
    assert retried.alpha == pytest.approx(0.1 / 2**0.1) and retried.smoothed_margin == 2.0
    assert reference.end_epoch(state, -51.0, True, smoothed_margin=1.999)[0]
    # an equal or higher margin is accepted and becomes the new reference value
    accepted, state = guarded.end_epoch(state, -51.0, True, smoothed_margin=2.0)
    assert accepted and state.smoothed_margin == 2.0
    # an undefined margin (loss above the threshold) leaves only the loss rule
    assert guarded.end_epoch(ScheduleState(0.1, -0.1), -0.2, True, smoothed_margin=None)[0]
    # a rising loss is rejected whatever the margin does
    assert not guarded.end_epoch(state, -50.0, True, smoothed_margin=3.0)[0]
