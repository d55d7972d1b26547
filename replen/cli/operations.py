"""Operations commands: the HTTP service, monitoring, the scheduler and its jobs, the database."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from replen.cli._common import (
    JsonOpt,
    app,
    console,
    emit,
    errors,
    kv_table,
    load_settings,
    out,
    quiet_libraries,
    sub_app,
)

jobs_app = sub_app("jobs", "Scheduled jobs: list, run by hand, history.")
db_app = sub_app("db", "The database schema (Alembic migrations).")


# serve / monitor -----------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes (uvicorn).")] = 1,
    pusher: Annotated[
        bool,
        typer.Option(
            help="Run the velocity pusher here; --no-pusher when `replen push-velocity` "
            "runs as its own service."
        ),
    ] = True,
) -> None:
    """Run the HTTP service: POST /v1/pos/events, POST /v1/inventory, /metrics, /v1/monitor.

    Requests are answered once durable in the lake; one velocity pusher process (whatever
    the number of workers) then pushes the touched store×SKUs' velocity online.
    """
    quiet_libraries()
    import uvicorn

    from replen.api.pusher import VelocityPusher
    from replen.app import create_app

    settings = load_settings()
    if workers == 1:
        uvicorn.run(create_app(settings, pusher=pusher), host=host, port=port, log_level="warning")
        return
    runner = VelocityPusher(settings) if pusher else None
    if runner is not None:
        runner.start()
    try:
        uvicorn.run(
            "replen.app:create_worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
        )
    finally:
        if runner is not None:
            runner.stop()


@app.command()
def monitor(
    record: Annotated[bool, typer.Option(help="Write alert records to the database.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Check POS freshness per store and the reject ratio; raise alerts past thresholds."""
    from jobs.monitor import run_monitor
    from jobs.runtime import Runtime

    with errors():
        report = run_monitor(Runtime(load_settings()), record=record)
    data = report.to_dict()
    if as_json:
        print(json.dumps(data, default=str))
        return
    table = Table(title=f"POS freshness at {report.checked_at}", title_justify="left")
    for col in ("store", "newest event", "lag"):
        table.add_column(col)
    for row in report.stores:
        table.add_row(str(row["store_id"]), str(row["newest"]), f"{row['lag_seconds']:,.0f}s")
    out.print(table)
    out.print(
        f"Rejected {report.rejected:,} of {report.received:,} lines in the last "
        f"{report.window_minutes:g} min ({report.reject_ratio:.3%})"
    )
    for alert in report.alerts:
        out.print(f"[bold red]ALERT[/] {alert}")


# scheduler / jobs ----------------------------------------------------------------------------
@app.command()
def scheduler() -> None:
    """Run the scheduler (APScheduler, persistent job store) until Ctrl-C or SIGTERM.

    Schedules come from REPLEN_SCHEDULES (JSON: job → crontab or 'every <N>s') in
    REPLEN_SCHEDULER_TIMEZONE. Only one scheduler may run per job store (database).
    """
    quiet_libraries()
    import logging

    from jobs.scheduler import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    with errors():
        run_scheduler(
            settings,
            on_start=lambda names: console.print(
                f"scheduler running: {', '.join(names)} (Ctrl-C to stop)"
            ),
        )


@jobs_app.command("list")
def jobs_list(as_json: JsonOpt = False) -> None:
    """Every job, its schedule and its last run."""
    from jobs.catalog import JOBS, describe
    from jobs.ledger import RunLedger

    settings = load_settings()
    ledger = RunLedger(settings.db_url)
    rows = []
    for name in JOBS:
        last = ledger.history(name, limit=1)
        rows.append(
            {
                "job": name,
                "schedule": settings.schedules.get(name, "(not scheduled)"),
                "last_slot": last[0]["slot"] if last else None,
                "last_status": last[0]["status"] if last else None,
                "description": describe(name),
            }
        )
    if as_json:
        print(json.dumps({"jobs": rows}, default=str))
        return
    table = Table(title=f"Jobs ({settings.scheduler_timezone})", title_justify="left")
    for col in ("job", "schedule", "last_slot", "last_status", "description"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            *[
                str(row[c] or "")
                for c in ("job", "schedule", "last_slot", "last_status", "description")
            ]
        )
    out.print(table)


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="refresh, retrain, replenish, monitor or probe.")],
    as_json: JsonOpt = False,
) -> None:
    """Run a job now, by hand; the run is recorded in the ledger."""
    quiet_libraries()
    from jobs.ledger import RunLedger
    from jobs.scheduler import run_job_now

    settings = load_settings()
    with errors():
        slot, status = run_job_now(settings, name)
    record = RunLedger(settings.db_url).history(name, limit=1)[0]
    emit(record, as_json, lambda: out.print(kv_table(f"{name} {slot}", record)))
    if status == "failed":
        raise typer.Exit(1)


@jobs_app.command("history")
def jobshistory_frame(
    name: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent job runs, newest first."""
    from jobs.ledger import RunLedger

    rows = RunLedger(load_settings().db_url).history(name, limit)
    if as_json:
        print(json.dumps({"runs": rows}, default=str))
        return
    table = Table(title="Job runs", title_justify="left")
    for col in ("job", "slot", "status", "attempts", "started_at", "finished_at", "error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            *[
                str(r[c] or "")
                for c in ("job", "slot", "status", "attempts", "started_at", "finished_at", "error")
            ]
        )
    out.print(table)


# db ------------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Migrate the database (REPLEN_DATABASE_URL) to the newest schema; safe to repeat."""
    from replen.db import upgrade

    with errors():
        settings = load_settings()
        settings.ensure_dirs()
        revision = upgrade(settings.db_url)
    emit({"revision": revision}, as_json, lambda: out.print(f"database at revision {revision}"))


@db_app.command("current")
def db_current(as_json: JsonOpt = False) -> None:
    """Show the database's schema revision."""
    from replen.db import current

    revision = current(load_settings().db_url)
    emit({"revision": revision}, as_json, lambda: out.print(f"revision: {revision}"))
