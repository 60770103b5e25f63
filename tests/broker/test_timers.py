"""One deadline structure for every timer: order, cancellation, late never early."""

import time

from appliance.broker.timers import Timers


def test_due_timers_run_in_deadline_order_and_not_before():
    timers = Timers()
    ran = []
    now = time.monotonic()
    timers.call_at(now + 2, ran.append, "b")
    timers.call_at(now + 1, ran.append, "a")
    timers.call_at(now + 1, ran.append, "a2")  # equal deadlines: in the order they were set
    assert timers.sweep(now + 0.5) == 0
    assert timers.sweep(now + 1) == 2
    assert timers.sweep(now + 3) == 1
    assert ran == ["a", "a2", "b"]
    assert len(timers) == 0


def test_a_cancelled_timer_never_runs():
    timers = Timers()
    ran = []
    timer = timers.call_later(1, ran.append, "x")
    timer.cancel()
    assert len(timers) == 0
    assert timers.sweep(time.monotonic() + 2) == 0
    assert ran == []


def test_a_timer_set_by_a_timer_waits_for_the_next_sweep():
    timers = Timers()
    ran = []

    def again():
        ran.append(len(ran))
        timers.call_later(0, again)

    timers.call_later(0, again)
    now = time.monotonic() + 1
    timers.sweep(now)
    timers.sweep(now)
    assert ran == [0, 1]


def test_a_failing_callback_is_logged_and_the_others_run(caplog):
    timers = Timers()
    ran = []
    timers.call_later(0, lambda: 1 / 0)
    timers.call_later(0, ran.append, "after")
    timers.sweep(time.monotonic() + 1)
    assert ran == ["after"]
    assert "ZeroDivisionError" in caplog.text


def test_many_cancelled_timers_do_not_pile_up():
    timers = Timers()
    for _ in range(5000):
        timers.call_later(3600, print).cancel()  # e.g. session expiry cancelled by a reconnect
    timers.sweep()
    assert len(timers._heap) == 0
