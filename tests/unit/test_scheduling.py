import os
import subprocess
from datetime import UTC, datetime

import pytest

from jobs.ledger import AlertStore, RunLedger
from jobs.lock import SchedulerBusy, SchedulerLock
from jobs.scheduler import _missed_slots, execute, parse_schedule
from replen.db import connect


def _db(tmp_path):
    return connect(f"sqlite:///{tmp_path / 'db'}")


def test_schedules_parse_crontab_and_intervals() -> None:
    cron = parse_schedule("0 5 * * *", "UTC")
    t = cron.get_next_fire_time(None, datetime(2024, 1, 1, 6, tzinfo=UTC))
    assert t == datetime(2024, 1, 2, 5, tzinfo=UTC)
    every = parse_schedule("every 15m", "UTC")
    t = every.get_next_fire_time(None, datetime(2024, 1, 1, 6, 7, tzinfo=UTC))
    assert t == datetime(2024, 1, 1, 6, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="5-field crontab"):
        parse_schedule("sometimes", "UTC")
    with pytest.raises(ValueError, match="every <N>s"):
        parse_schedule("every 0s", "UTC")


def test_missed_slots_between_last_and_now() -> None:
    every = parse_schedule("every 10s", "UTC")
    last = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    now = datetime(2024, 1, 1, 0, 0, 35, tzinfo=UTC)
    assert [t.second for t in _missed_slots(every, last, now)] == [10, 20, 30]


def test_a_finished_slot_never_runs_twice_and_an_unfinished_one_reruns(tmp_path) -> None:
    ledger = RunLedger(_db(tmp_path))
    assert ledger.begin("refresh", "s1")
    assert ledger.unfinished() == [("refresh", "s1")]
    assert ledger.begin("refresh", "s1")  # crashed run: claimed again
    ledger.finish("refresh", "s1", "succeeded", summary={"rows": 3})
    assert not ledger.begin("refresh", "s1")
    runs = ledger.history("refresh")
    assert len(runs) == 1 and runs[0]["attempts"] == 2 and runs[0]["summary"] == {"rows": 3}


def test_second_scheduler_is_refused_and_a_dead_holder_is_taken_over(tmp_path) -> None:
    url = _db(tmp_path)
    first = SchedulerLock(url)
    first.acquire()
    with pytest.raises(SchedulerBusy, match=f"pid {os.getpid()}"):
        SchedulerLock(url).acquire()
    # A holder whose process is gone on this host is replaced at once.
    dead = subprocess.Popen(["true"])
    dead.wait()
    first.release()
    ghost = SchedulerLock(url)
    ghost.pid = dead.pid
    ghost.acquire()
    heir = SchedulerLock(url)
    heir.acquire()
    assert heir.holder()["pid"] == os.getpid()
    assert not ghost.heartbeat()  # the old holder learns it lost the lease


def test_expired_heartbeat_is_taken_over(tmp_path) -> None:
    url = _db(tmp_path)
    old = SchedulerLock(url, ttl_seconds=0.0)
    old.host = "elsewhere"
    old.acquire()
    new = SchedulerLock(url, ttl_seconds=0.0)
    new.acquire()
    assert new.heartbeat() and not old.heartbeat()


def test_failed_job_is_recorded_and_alerted(settings) -> None:
    # No sales yet: the retrain must fail, be recorded, raise an alert, touch nothing else.
    assert execute(settings, "retrain", "2024-01-01T02:00:00+00:00") == "failed"
    run = RunLedger(connect(settings.db_url)).history("retrain")[0]
    assert run["status"] == "failed" and "no sales yet" in run["error"]
    alerts = AlertStore(connect(settings.db_url)).recent(kind="job")
    assert alerts and alerts[0]["subject"] == "retrain"
    assert execute(settings, "retrain", "2024-01-01T02:00:00+00:00") == "already-finished"


def test_a_holder_that_cannot_renew_distrusts_its_lease_before_a_contender_may_take_it(
    tmp_path,
) -> None:
    import threading
    import time

    from support import wait_for

    from jobs.lock import LeaseKeeper

    url = _db(tmp_path)
    holder = SchedulerLock(url, ttl_seconds=2.0)
    began = time.monotonic()
    holder.acquire()
    lost_at: list[float] = []
    keeper = LeaseKeeper(holder, lambda reason: lost_at.append(time.monotonic()))
    stalled = threading.Event()
    holder.heartbeat = lambda: bool(stalled.wait(60))  # the database hangs for this holder
    keeper.start(began)
    assert keeper.holds()
    contender = SchedulerLock(url, ttl_seconds=2.0)
    contender.pid = 1  # another live process (so only the TTL lets it in)

    def take() -> float | None:
        try:
            contender.acquire()
        except SchedulerBusy:
            return None
        return time.monotonic()

    taken_at = wait_for(take, what="the contender to take the expired lease", timeout=60)
    stalled.set()
    keeper.stop()
    assert lost_at and lost_at[0] < taken_at
    assert not keeper.holds()


def test_a_result_is_recorded_only_by_the_attempt_that_owns_the_slot(tmp_path) -> None:
    ledger = RunLedger(_db(tmp_path))
    assert ledger.begin("probe", "s1", owner="a")
    assert ledger.begin("probe", "s1", owner="b")  # a stalled, b took the slot over
    assert not ledger.finish("probe", "s1", "succeeded", owner="a")
    assert ledger.finish("probe", "s1", "succeeded", owner="b")
    (run,) = ledger.history("probe")
    assert (run["owner"], run["attempts"], run["status"]) == ("b", 2, "succeeded")


def test_a_runner_without_the_lease_starts_nothing(settings) -> None:
    from jobs.scheduler import Runner

    runner = Runner(settings, owner="x", holds=lambda: False)
    assert runner.execute("probe", "2024-01-01T00:00:00+00:00") == "lease-lost"
    assert runner.ledger.history() == []
