"""The Replen scheduler: APScheduler 3 with a persistent job store, one instance per store.

Every run goes through the run ledger, keyed by (job, slot) where the slot is the fire time
APScheduler scheduled: a finished slot never runs twice, and on restart a slot that started
but never finished is run again, as are slots missed while no scheduler was up (at most
``catch_up_max`` per job; older ones are recorded as skipped).

Only the holder of the scheduler lease runs jobs: it renews the lease from its own thread,
checks it before every run, records a result only while the run is still its own, and stops
the moment it can no longer trust the lease (at once, killing the process, if a job is
running then: the slot stays unfinished and the next holder runs it again).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from jobs.catalog import JOBS
from jobs.ledger import AlertStore, RunLedger
from jobs.lock import LeaseKeeper, LeaseLost, SchedulerLock
from jobs.runtime import Runtime, ensure_schema
from kernel.errors import InvalidInput, NotFound, ReplenError
from replen.settings import Settings

__all__ = [
    "Runner",
    "execute",
    "parse_schedule",
    "run_job_now",
    "run_scheduler",
    "scheduled",
]

log = logging.getLogger("replen.scheduler")
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
# Exit status of a scheduler killed because it lost its lease while a job was running.
LOST_EXIT = LeaseLost.exit_code


def parse_schedule(spec: str, timezone: str) -> BaseTrigger:
    """A 5-field crontab (``0 5 * * *``) or ``every <N>s|m|h`` (aligned to a fixed epoch,
    so slots are the same across restarts)."""
    text = spec.strip()
    if text.startswith("every "):
        amount, unit = text[6:-1], text[-1]
        seconds = {"s": 1, "m": 60, "h": 3600}.get(unit)
        if seconds is None or not amount.isdigit() or int(amount) <= 0:
            raise InvalidInput(
                f"schedule {spec!r}: use 'every <N>s', 'every <N>m' or 'every <N>h'",
                field="schedules",
                value=spec,
                rule="schedule.syntax",
            )
        return IntervalTrigger(seconds=int(amount) * seconds, start_date=_EPOCH, timezone=timezone)
    try:
        return CronTrigger.from_crontab(text, timezone=timezone)
    except ValueError as exc:
        raise InvalidInput(
            f"schedule {spec!r} is not a 5-field crontab: {exc}",
            field="schedules",
            value=spec,
            rule="schedule.syntax",
        ) from None


def slot_of(run_time: datetime) -> str:
    return run_time.astimezone(UTC).isoformat(timespec="seconds")


class Runner:
    """Runs jobs through the ledger as one ``owner``; when ``holds`` is given (the lease),
    a run starts only while it is true."""

    def __init__(
        self,
        settings: Settings,
        *,
        owner: str | None = None,
        holds: Callable[[], bool] | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        settings.ensure_dirs()
        self.engine = ensure_schema(settings.db_url)
        self.ledger = RunLedger(self.engine)
        self.alerts = AlertStore(self.engine)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._holds = holds or (lambda: True)
        self.stopping = stopping or threading.Event()  # once set, no further run starts
        self._active = 0
        self._guard = threading.Lock()

    @property
    def active(self) -> int:
        """Jobs running now in this process."""
        with self._guard:
            return self._active

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        with self._guard:
            self._active += 1
        try:
            yield
        finally:
            with self._guard:
                self._active -= 1

    def execute(self, name: str, slot: str) -> str:
        """Run job ``name`` for ``slot``; returns the final status."""
        from replen.metrics import ALERTS, JOB_FAILURES, JOB_RUNS

        with self._running():  # counted first, so a lost lease sees this run (see lease_lost)
            if self.stopping.is_set():
                return "stopped"
            if not self._holds():
                log.error("job %s slot %s not run: the scheduler lease is lost", name, slot)
                return "lease-lost"
            if not self.ledger.begin(name, slot, self.owner):
                log.info("job %s slot %s already finished; not running it again", name, slot)
                return "already-finished"
            try:
                summary = JOBS[name](Runtime(self.settings))
            except Exception as exc:
                if isinstance(exc, ReplenError):  # expected: its message says what to do
                    error = str(exc)
                else:  # a bug: its type, and its traceback in the log
                    log.exception("job %s slot %s failed", name, slot)
                    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                if not self.ledger.finish(name, slot, "failed", error=error, owner=self.owner):
                    return self._taken_over(name, slot)
                self.alerts.raise_alert("job", name, f"job {name} ({slot}) failed: {error}")
                JOB_RUNS.labels(name, "failed").inc()
                JOB_FAILURES.labels(name).inc()
                ALERTS.labels("job").inc()
                log.error("job %s slot %s failed: %s", name, slot, error)
                return "failed"
            if not self.ledger.finish(
                name, slot, "succeeded", summary=_jsonable(summary), owner=self.owner
            ):
                return self._taken_over(name, slot)
            JOB_RUNS.labels(name, "succeeded").inc()
            return "succeeded"

    @staticmethod
    def _taken_over(name: str, slot: str) -> str:
        log.error("job %s slot %s was taken over by another scheduler; result dropped", name, slot)
        return "taken-over"

    def scheduled(self, name: str, when: datetime) -> str:
        """A scheduled fire: first any earlier slot with no record (it fell due while no
        scheduler ran), so the ledger has no gaps, then the slot itself."""
        trigger = parse_schedule(self.settings.schedules[name], self.settings.scheduler_timezone)
        self.catch_up(name, trigger, until=when - timedelta(microseconds=1))
        return self.execute(name, slot_of(when))

    def catch_up(
        self, name: str, trigger: BaseTrigger, until: datetime
    ) -> list[tuple[str, str, str]]:
        """Run the slots of ``name`` after its last recorded one and up to ``until``."""
        last = self.ledger.last_slot(name)
        if last is None:
            return []
        missed = _missed_slots(trigger, datetime.fromisoformat(last), until)
        limit = self.settings.catch_up_max
        done = []
        for i, when in enumerate(missed):
            slot = slot_of(when)
            if i < len(missed) - limit:
                reason = f"missed while no scheduler ran; beyond catch_up_max={limit}"
                self.ledger.record_skipped(name, slot, reason, self.owner)
                done.append((name, slot, "skipped"))
            else:
                done.append((name, slot, self.execute(name, slot)))
        return done

    def recover(
        self, triggers: dict[str, BaseTrigger], now: datetime | None = None
    ) -> list[tuple[str, str, str]]:
        """Before scheduling: re-run unfinished slots, then catch up missed ones."""
        now = now or datetime.now(UTC)
        done: list[tuple[str, str, str]] = []
        for name, slot in self.ledger.unfinished():
            if name in JOBS:
                done.append((name, slot, self.execute(name, slot)))
        for name, trigger in triggers.items():
            done += self.catch_up(name, trigger, now)
        return done


def execute(settings: Settings, name: str, slot: str) -> str:
    """Run job ``name`` for ``slot`` through the ledger (no lease); returns the final status."""
    return Runner(settings).execute(name, slot)


def run_job_now(settings: Settings, name: str) -> tuple[str, str]:
    """Run a job by hand (recorded in the ledger under a ``manual:`` slot)."""
    if name not in JOBS:
        raise NotFound(f"unknown job {name!r}", hint=f"choose one of {', '.join(sorted(JOBS))}")
    slot = f"manual:{datetime.now(UTC).isoformat()}"
    return slot, execute(settings, name, slot)


def scheduled(
    name: str, *, runner: Runner | None = None, scheduled_at: datetime | None = None
) -> str:
    """The APScheduler job function (module level, so the persistent store can refer to it).

    The store keeps only the job name; :class:`SlotExecutor` passes the running scheduler's
    ``runner`` (built from its settings) and the fire time.
    """
    if runner is None:
        raise RuntimeError("scheduled() runs under run_scheduler, which passes its runner")
    return runner.scheduled(name, scheduled_at or datetime.now(UTC))


class SlotExecutor(ThreadPoolExecutor):
    """Passes the runner and each scheduled fire time to the job, so the ledger keys runs by
    slot and every run uses the scheduler's own settings and lease."""

    def __init__(self, runner: Runner, max_workers: int = 2) -> None:
        super().__init__(max_workers=max_workers)
        self.runner = runner

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def run() -> list[JobExecutionEvent]:
            events = []
            for run_time in run_times:
                try:
                    job.func(*job.args, runner=self.runner, scheduled_at=run_time, **job.kwargs)
                    events.append(
                        JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time)
                    )
                except Exception as exc:
                    log.exception("job %s at %s raised", job.id, run_time)
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
    settings: Settings, triggers: dict[str, BaseTrigger], runner: Runner
) -> BackgroundScheduler:
    sched = BackgroundScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(engine=runner.engine, tablename="apscheduler_jobs")
        },
        executors={"default": SlotExecutor(runner, max_workers=2)},
        job_defaults={"coalesce": False, "max_instances": 1, "misfire_grace_time": None},
        timezone=settings.scheduler_timezone,
    )
    for name, trigger in triggers.items():
        sched.add_job(scheduled, trigger, args=[name], id=name, name=name, replace_existing=True)
    return sched


def run_scheduler(
    settings: Settings,
    on_start: Callable[[list[str]], None] | None = None,
    *,
    standby: bool = False,
    on_wait: Callable[[dict[str, object]], None] | None = None,
) -> None:
    """Take the lease, recover, then run the schedules until SIGINT/SIGTERM.

    ``standby``: if another scheduler holds the job store, wait and take over when it stops
    or dies, instead of failing with :class:`~jobs.lock.SchedulerBusy`. A first signal stops
    scheduling and waits for running jobs; a second exits at once (their slots run again
    on the next start). Raises :class:`~jobs.lock.LeaseLost` if the lease was lost.
    """
    unknown = sorted(set(settings.schedules) - set(JOBS))
    if unknown:
        raise InvalidInput(
            f"schedules name unknown job(s) {unknown}",
            field="schedules",
            value=",".join(unknown),
            rule="schedules.job",
            hint=f"jobs are {', '.join(sorted(JOBS))} (REPLEN_SCHEDULES)",
        )
    triggers = {
        n: parse_schedule(s, settings.scheduler_timezone) for n, s in settings.schedules.items()
    }
    settings.ensure_dirs()
    engine = ensure_schema(settings.db_url)
    lock = SchedulerLock(engine, ttl_seconds=settings.scheduler_lock_ttl_seconds)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        _on_signals(stop)
    acquired_at = _acquire(lock, stop, standby, on_wait)
    if acquired_at is None:  # stopped while waiting
        return
    lost: list[str] = []
    runner: Runner | None = None

    def lease_lost(reason: str) -> None:
        lost.append(reason)
        log.error("lost the scheduler lease: %s; stopping", reason)
        if runner is not None and runner.active:
            # A job is running and may no longer: end it now rather than overlap the new
            # holder. Its slot stays unfinished; the next holder runs it again.
            log.error("%d job(s) running: exiting at once", runner.active)
            logging.shutdown()
            os._exit(LOST_EXIT)
        stop.set()

    keeper = LeaseKeeper(lock, lease_lost)
    runner = Runner(settings, owner=lock.token, holds=keeper.holds, stopping=stop)
    keeper.start(acquired_at)
    sched: BackgroundScheduler | None = None
    try:
        runner.recover(triggers)
        if not stop.is_set():
            sched = build_scheduler(settings, triggers, runner)
            sched.start()
            if on_start is not None:
                on_start(sorted(triggers))
            stop.wait()
    finally:
        stop.set()
        if sched is not None and sched.running:
            sched.shutdown(wait=True)  # running jobs finish (the lease is still renewed)
        keeper.stop()
        lock.release()  # deletes the row only if this scheduler still holds it
    if lost:
        raise LeaseLost(
            f"this scheduler lost its lease ({lost[0]}) and stopped",
            hint="another scheduler runs the jobs now; see `replen jobs history`",
        )


def _acquire(
    lock: SchedulerLock,
    stop: threading.Event,
    standby: bool,
    on_wait: Callable[[dict[str, object]], None] | None,
) -> float | None:
    """Take the lease (waiting in ``standby``); the monotonic time the winning try began."""
    from jobs.lock import SchedulerBusy

    told = False
    while True:
        began = time.monotonic()
        try:
            lock.acquire()
            return began
        except SchedulerBusy:
            if not standby:
                raise
        if not told and on_wait is not None:
            on_wait(lock.holder() or {})
            told = True
        if stop.wait(lock.ttl.total_seconds() / 4):
            return None


def _on_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT: the first asks for a clean stop, a second exits at once."""

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            log.error("second signal: exiting now; unfinished slots run again on restart")
            logging.shutdown()
            os._exit(128 + signum)
        log.info("signal %d: stopping after the running jobs", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _jsonable(summary: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(summary, default=str))
