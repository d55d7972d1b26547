"""The real scheduler process: killed with SIGKILL during jobs, a standby taking over under CPU
load, its lease stolen mid-job, stopped by SIGTERM. Every wait is for an event in the ledger."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from support import cpu_hog, replen_exe, wait_for

from jobs.ledger import RunLedger
from jobs.lock import LockRow
from replen.db import connect

pytestmark = pytest.mark.slow

PERIOD = timedelta(seconds=2)


def _env(settings, ttl: float = 5, probe: float = 1.2) -> dict[str, str]:
    return {
        **os.environ,
        "REPLEN_DATA_DIR": str(settings.data_dir),
        "REPLEN_SCHEDULES": json.dumps({"probe": "every 2s"}),
        "REPLEN_PROBE_SECONDS": str(probe),
        "REPLEN_CATCH_UP_MAX": "1000",
        "REPLEN_SCHEDULER_LOCK_TTL_SECONDS": str(ttl),
    }


def _runs(settings) -> list[dict]:
    return RunLedger(connect(settings.db_url)).history("probe", limit=10_000)


def _owned_by(runs: list[dict], proc, status: str | None = None) -> list[dict]:
    return [
        r
        for r in runs
        if f":{proc.pid}:" in (r["owner"] or "") and (status is None or r["status"] == status)
    ]


def _succeeded(settings) -> int:
    return sum(r["status"] == "succeeded" for r in _runs(settings))


def _assert_every_slot_completed_once(runs: list[dict]) -> None:
    assert [r for r in runs if r["status"] != "succeeded"] == []
    slots = sorted(datetime.fromisoformat(r["slot"]) for r in runs)
    assert len(set(slots)) == len(slots), "a slot ran twice"
    gaps = {b - a for a, b in itertools.pairwise(slots)}
    assert gaps == {PERIOD}, f"a slot was missed: gaps {gaps}"


def _assert_no_two_owners_overlap(runs: list[dict]) -> None:
    spans = [(r["started_at"], r["finished_at"], r["owner"]) for r in runs]
    for (s1, e1, o1), (s2, e2, o2) in itertools.combinations(spans, 2):
        assert o1 == o2 or e1 <= s2 or e2 <= s1, f"{o1} ran {s1}–{e1}, {o2} ran {s2}–{e2}"


def test_every_slot_completes_exactly_once_across_kill_9(settings, procs) -> None:
    env = _env(settings)
    rng = random.Random(7)
    for round_ in range(4):
        proc = procs.start([replen_exe(), "scheduler"], env=env)
        if round_ % 2 == 0:  # kill in the middle of a job …
            wait_for(
                lambda p=proc: _owned_by(_runs(settings), p, "running"),
                what="a probe run to start",
                while_alive=proc,
            )
        else:  # … or between jobs, after one or two completed ones
            target = _succeeded(settings) + rng.randint(1, 2)
            wait_for(
                lambda t=target: _succeeded(settings) >= t,
                what="probe runs to complete",
                while_alive=proc,
            )
        procs.signal(proc, signal.SIGKILL)
        proc.wait()
    final = procs.start([replen_exe(), "scheduler"], env=env)
    target = _succeeded(settings) + 3
    wait_for(lambda: _succeeded(settings) >= target, what="runs after restart", while_alive=final)
    assert procs.stop(final) == 0

    runs = _runs(settings)
    assert len(runs) >= 6
    _assert_every_slot_completed_once(runs)
    assert any(r["attempts"] > 1 for r in runs), "no run was interrupted: the test proved little"


def test_a_second_scheduler_refuses_to_start(settings, procs) -> None:
    env = _env(settings)
    first = procs.start([replen_exe(), "scheduler"], env=env)
    wait_for(lambda: _runs(settings), what="the first scheduler's first run", while_alive=first)
    second = procs.start([replen_exe(), "scheduler"], env=env)
    second.wait(300)
    _, err = procs.output(second)
    assert second.returncode == 4, err  # Conflict: the job store is held
    assert "another scheduler" in err and str(first.pid) in err
    assert "Traceback" not in err
    assert procs.stop(first) == 0


def test_a_standby_under_cpu_load_never_overlaps_and_takes_over_a_killed_holder(
    settings, procs
) -> None:
    ttl = 3.0
    env = _env(settings, ttl=ttl)
    holder = procs.start([replen_exe(), "scheduler"], env=env)
    wait_for(lambda: _succeeded(settings) >= 1, what="the holder's first run", while_alive=holder)
    standby = procs.start([replen_exe(), "scheduler", "--standby"], env=env)
    wait_for(
        lambda: "standby:" in procs.output(standby)[1],
        what="the second scheduler to wait in standby",
        while_alive=standby,
    )
    with cpu_hog():
        # Several TTLs under load: the holder keeps renewing, the standby runs nothing.
        target = _succeeded(settings) + int(4 * ttl / PERIOD.total_seconds())
        wait_for(lambda: _succeeded(settings) >= target, what="runs under load", while_alive=holder)
        assert _owned_by(_runs(settings), standby) == []
        wait_for(
            lambda: _owned_by(_runs(settings), holder, "running"),
            what="a run in progress",
            while_alive=holder,
        )
        procs.signal(holder, signal.SIGKILL)
        holder.wait()
        killed_at = datetime.now(UTC).replace(tzinfo=None)  # the ledger keeps naive UTC
        target = len(_owned_by(_runs(settings), standby, "succeeded")) + 3
        wait_for(
            lambda: len(_owned_by(_runs(settings), standby, "succeeded")) >= target,
            what="the standby to take over and run",
            while_alive=standby,
        )
    assert procs.stop(standby) == 0
    _, err = procs.output(standby)
    assert "Traceback" not in err

    runs = _runs(settings)
    _assert_every_slot_completed_once(runs)
    _assert_no_two_owners_overlap(runs)
    assert all(r["started_at"] >= killed_at for r in _owned_by(runs, standby))
    rerun = [r for r in _owned_by(runs, standby) if r["attempts"] > 1]
    assert rerun, "the standby did not finish the slot the holder was killed in"
    with connect(settings.db_url).connect() as conn:
        assert conn.execute(select(LockRow)).all() == [], "the stopped holder left its lock"


def test_a_holder_whose_lease_is_taken_stops_its_running_job_at_once(settings, procs) -> None:
    env = _env(settings, ttl=4, probe=600)  # the job would run for ten minutes
    proc = procs.start([replen_exe(), "scheduler"], env=env)
    wait_for(
        lambda: _owned_by(_runs(settings), proc, "running"),
        what="the long job to start",
        while_alive=proc,
    )
    with connect(settings.db_url).begin() as conn:  # another scheduler took the lease over
        conn.execute(update(LockRow).values(token="another-scheduler", pid=1))
    proc.wait(120)  # well before the job would have ended
    _, err = procs.output(proc)
    assert proc.returncode == 4, err
    assert "lost the scheduler lease" in err
    (run,) = _runs(settings)
    assert run["status"] == "running" and run["finished_at"] is None  # runs again later
    with connect(settings.db_url).connect() as conn:
        (row,) = conn.execute(select(LockRow.token)).all()
    assert row.token == "another-scheduler", "the stopped scheduler deleted a lock it lost"


def test_sigterm_lets_the_running_job_finish_then_releases_the_lock(settings, procs) -> None:
    env = _env(settings, probe=3)
    proc = procs.start([replen_exe(), "scheduler"], env=env)
    running = wait_for(
        lambda: _owned_by(_runs(settings), proc, "running"),
        what="a job to start",
        while_alive=proc,
    )
    procs.signal(proc, signal.SIGTERM)
    assert proc.wait(300) == 0
    finished = {r["slot"]: r for r in _runs(settings)}[running[0]["slot"]]
    assert finished["status"] == "succeeded"
    with connect(settings.db_url).connect() as conn:
        assert conn.execute(select(LockRow)).all() == []
