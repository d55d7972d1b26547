"""The Replen scheduler: APScheduler 3 with a persistent job store, one instance per store.

Every run goes through the run ledger, keyed by (job, slot) where the slot is the fire time
APScheduler scheduled: a finished slot never runs twice, and on restart a slot that started
but never finished is run again, as are slots missed while no scheduler was up (at most
``catch_up_max`` per job; older ones are recorded as skipped).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from jobs.catalog import JOBS
from jobs.ledger import AlertStore, RunLedger
from jobs.lock import SchedulerLock
from jobs.runtime import Runtime, ensure_schema
from replen.settings import Settings

__all__ = ["execute", "parse_schedule", "run_job_now", "run_scheduler", "scheduled"]

log = logging.getLogger("replen.scheduler")
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def parse_schedule(spec: str, timezone: str) -> BaseTrigger:
    """A 5-field crontab (``0 5 * * *``) or ``every <N>s|m|h`` (aligned to a fixed epoch,
    so slots are the same across restarts)."""
    text = spec.strip()
    if text.startswith("every "):
        amount, unit = text[6:-1], text[-1]
        seconds = {"s": 1, "m": 60, "h": 3600}.get(unit)
        if seconds is None or not amount.isdigit() or int(amount) <= 0:
            raise ValueError(f"schedule {spec!r}: use 'every <N>s', 'every <N>m' or 'every <N>h'")
        return IntervalTrigger(seconds=int(amount) * seconds, start_date=_EPOCH, timezone=timezone)
    try:
        return CronTrigger.from_crontab(text, timezone=timezone)
    except ValueError as exc:
        raise ValueError(f"schedule {spec!r} is not a 5-field crontab: {exc}") from None


def slot_of(run_time: datetime) -> str:
    return run_time.astimezone(UTC).isoformat(timespec="seconds")


def execute(settings: Settings, name: str, slot: str) -> str:
    """Run job ``name`` for ``slot`` through the ledger; returns the final status."""
    from replen.metrics import ALERTS, JOB_FAILURES, JOB_RUNS

    settings.ensure_dirs()
    ensure_schema(settings.db_url)
    ledger = RunLedger(settings.db_url)
    if not ledger.begin(name, slot):
        log.info("job %s slot %s already finished; not running it again", name, slot)
        return "already-finished"
    try:
        summary = JOBS[name](Runtime(settings))
    except Exception as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        ledger.finish(name, slot, "failed", error=error)
        AlertStore(settings.db_url).raise_alert("job", name, f"job {name} ({slot}) failed: {error}")
        JOB_RUNS.labels(name, "failed").inc()
        JOB_FAILURES.labels(name).inc()
        ALERTS.labels("job").inc()
        log.error("job %s slot %s failed: %s", name, slot, error)
        return "failed"
    ledger.finish(name, slot, "succeeded", summary=_jsonable(summary))
    JOB_RUNS.labels(name, "succeeded").inc()
    return "succeeded"


def run_job_now(settings: Settings, name: str) -> tuple[str, str]:
    """Run a job by hand (recorded in the ledger under a ``manual:`` slot)."""
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}; jobs: {sorted(JOBS)}")
    slot = f"manual:{datetime.now(UTC).isoformat()}"
    return slot, execute(settings, name, slot)


def scheduled(name: str, scheduled_at: datetime | None = None) -> str:
    """The APScheduler job function (module level, so the persistent store can refer to it).

    First runs any earlier slot of this job that has no record yet (a slot that fell due
    while the scheduler was restarting), so the ledger has no gaps.
    """
    settings = Settings()
    when = scheduled_at or datetime.now(UTC)
    trigger = parse_schedule(settings.schedules[name], settings.scheduler_timezone)
    catch_up(settings, name, trigger, until=when - timedelta(microseconds=1))
    return execute(settings, name, slot_of(when))


def catch_up(
    settings: Settings, name: str, trigger: BaseTrigger, until: datetime
) -> list[tuple[str, str, str]]:
    """Run the slots of ``name`` after its last recorded one and up to ``until``."""
    ledger = RunLedger(settings.db_url)
    last = ledger.last_slot(name)
    if last is None:
        return []
    missed = _missed_slots(trigger, datetime.fromisoformat(last), until)
    done = []
    for i, when in enumerate(missed):
        slot = slot_of(when)
        if i < len(missed) - settings.catch_up_max:
            ledger.record_skipped(
                name,
                slot,
                f"missed while no scheduler ran; beyond catch_up_max={settings.catch_up_max}",
            )
            done.append((name, slot, "skipped"))
        else:
            done.append((name, slot, execute(settings, name, slot)))
    return done


class SlotExecutor(ThreadPoolExecutor):
    """Passes each scheduled fire time to the job, so the ledger keys runs by slot."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def run() -> list[JobExecutionEvent]:
            events = []
            for run_time in run_times:
                try:
                    job.func(*job.args, scheduled_at=run_time, **job.kwargs)
                    events.append(
                        JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time)
                    )
                except Exception as exc:
                    events.append(
                        JobExecutionEvent(
                            EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time, exception=exc
                        )
                    )
            return events

        def done(future: Any) -> None:
            if future.exception():
                self._run_job_error(job.id, future.exception(), None)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(run).add_done_callback(done)


def recover(
    settings: Settings, triggers: dict[str, BaseTrigger], now: datetime | None = None
) -> list[tuple[str, str, str]]:
    """Before scheduling: re-run unfinished slots, then catch up missed ones."""
    now = now or datetime.now(UTC)
    ledger = RunLedger(settings.db_url)
    done: list[tuple[str, str, str]] = []
    for name, slot in ledger.unfinished():
        if name in JOBS:
            done.append((name, slot, execute(settings, name, slot)))
    for name, trigger in triggers.items():
        done += catch_up(settings, name, trigger, now)
    return done


def _missed_slots(trigger: BaseTrigger, last: datetime, now: datetime) -> list[datetime]:
    out: list[datetime] = []
    current = last
    while len(out) < 10_000:
        nxt = trigger.get_next_fire_time(current, current + timedelta(microseconds=1))
        if nxt is None or nxt > now:
            break
        out.append(nxt)
        current = nxt
    return out


def build_scheduler(
    settings: Settings, triggers: dict[str, BaseTrigger], lock: SchedulerLock
) -> BlockingScheduler:
    sched = BlockingScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(url=settings.db_url, tablename="apscheduler_jobs"),
            "internal": MemoryJobStore(),
        },
        executors={"default": SlotExecutor(max_workers=2)},
        job_defaults={"coalesce": False, "max_instances": 1, "misfire_grace_time": None},
        timezone=settings.scheduler_timezone,
    )
    for name, trigger in triggers.items():
        sched.add_job(scheduled, trigger, args=[name], id=name, name=name, replace_existing=True)

    def beat() -> None:
        if not lock.heartbeat():
            log.error("lost the scheduler lock to another process; stopping")
            threading.Thread(target=sched.shutdown, kwargs={"wait": False}).start()

    interval = max(1.0, settings.scheduler_lock_ttl_seconds / 3)
    sched.add_job(beat, "interval", seconds=interval, id="_heartbeat", jobstore="internal")
    return sched


def run_scheduler(settings: Settings, on_start: Callable[[list[str]], None] | None = None) -> None:
    """Take the lock, recover, then run the schedules until SIGINT/SIGTERM."""
    unknown = sorted(set(settings.schedules) - set(JOBS))
    if unknown:
        raise ValueError(f"schedules name unknown job(s) {unknown}; jobs: {sorted(JOBS)}")
    triggers = {
        n: parse_schedule(s, settings.scheduler_timezone) for n, s in settings.schedules.items()
    }
    settings.ensure_dirs()
    ensure_schema(settings.db_url)
    lock = SchedulerLock(settings.db_url, ttl_seconds=settings.scheduler_lock_ttl_seconds)
    lock.acquire()
    try:
        recover(settings, triggers)
        sched = build_scheduler(settings, triggers, lock)

        def stop(signum: int, frame: Any) -> None:
            sched.shutdown(wait=True)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if on_start is not None:
            on_start(sorted(triggers))
        sched.start()
    finally:
        lock.release()


def _jsonable(summary: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(summary, default=str))


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    run_scheduler(Settings())
