"""The worker greenlets that run read bursts: reused while parked, never stalled by one
job that blocks or fails."""

import gevent
from gevent.event import Event
from greenlet import getcurrent

from appliance.listeners.workers import Workers


def run_from_the_hub(workers, function, *args):
    """As io and accept callbacks do."""
    gevent.get_hub().loop.run_callback(workers.run, function, *args)


def test_consecutive_jobs_reuse_one_parked_greenlet():
    workers = Workers()
    ran_in = []
    for n in range(3):
        run_from_the_hub(workers, lambda n=n: ran_in.append((n, getcurrent())))
        gevent.sleep(0)
    assert [n for n, _ in ran_in] == [0, 1, 2]
    assert len({id(g) for _, g in ran_in}) == 1


def test_a_blocked_job_does_not_hold_up_the_next():
    workers = Workers()
    release, done = Event(), []
    run_from_the_hub(workers, lambda: (release.wait(), done.append("slow")))
    run_from_the_hub(workers, lambda: done.append("quick"))
    gevent.sleep(0)
    assert done == ["quick"]
    release.set()
    gevent.sleep(0)
    assert done == ["quick", "slow"]


def test_a_failing_job_is_logged_and_the_worker_goes_on(caplog):
    workers = Workers()
    done = []
    run_from_the_hub(workers, lambda: 1 / 0)
    run_from_the_hub(workers, lambda: done.append("next"))
    gevent.sleep(0)
    assert done == ["next"]
    assert "ZeroDivisionError" in caplog.text


def test_run_from_a_greenlet_returns_to_it():
    workers = Workers()
    done = []
    workers.run(done.append, "job")  # not the hub: the job is scheduled, the caller goes on
    done.append("caller")
    gevent.sleep(0)
    assert done == ["caller", "job"]


def test_no_more_than_keep_workers_stay_parked():
    workers = Workers(keep=2)
    release = Event()
    ran_in = set()
    for _ in range(5):
        run_from_the_hub(workers, lambda: (ran_in.add(getcurrent()), release.wait()))
    gevent.sleep(0)
    release.set()
    gevent.sleep(0)
    assert len(ran_in) == 5
    assert sum(not g.dead for g in ran_in) == 2
