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
    """Run the HTTP service: the planner's page and API, POS, stock positions, receipts,
    acknowledgements, item and store names, corrections, monitoring.

    Every route but /healthz, POST /v1/oauth/token and /.well-known/jwks.json needs a bearer
    token; give tills, the ERP and planners identities with `replen clients create` and
    `replen users create`. OpenAPI at /docs.

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

    report = run_monitor(Runtime(load_settings()), record=record)
    data = report.to_dict()
    if as_json:
        print(json.dumps(data, default=str))
        return
    checked = report.checked_at.replace("T", " ")[:19]
    table = Table(title=f"POS freshness at {checked} UTC", title_justify="left")
    for col in ("store", "newest event (UTC)", "lag"):
        table.add_column(col, justify="right" if col == "lag" else "left")
    for row in report.stores:
        newest = str(row["newest"]).replace("T", " ")[:19]
        table.add_row(str(row["store_id"]), newest, _age(row["lag_seconds"]))
    out.print(table)
    out.print(
        f"Rejected {report.rejected:,} of {report.received:,} lines in the last "
        f"{report.window_minutes:g} min ({report.reject_ratio:.3%})"
    )
    for alert in report.alerts:
        out.print(f"[bold red]ALERT[/] {alert}")


# scheduler / jobs ----------------------------------------------------------------------------
@app.command()
def scheduler(
    standby: Annotated[
        bool,
        typer.Option(
            help="If another scheduler holds the job store, wait and take over when it "
            "stops or dies (instead of exiting)."
        ),
    ] = False,
) -> None:
    """Run the scheduler (APScheduler, persistent job store) until Ctrl-C or SIGTERM.

    Schedules come from REPLEN_SCHEDULES (JSON: job → crontab or 'every 30s') in
    REPLEN_SCHEDULER_TIMEZONE. Only one scheduler runs jobs per job store (database): it
    holds a lease renewed every REPLEN_SCHEDULER_LOCK_TTL_SECONDS / 4. The first Ctrl-C or
    SIGTERM waits for running jobs, a second stops at once (their slots run again later).
    """
    quiet_libraries()
    import logging

    from jobs.scheduler import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def waiting(holder: dict[str, object]) -> None:
        console.print(
            f"standby: pid {holder.get('pid', '?')} on {holder.get('host', '?')} holds the "
            "job store; taking over when it stops"
        )

    run_scheduler(
        load_settings(),
        on_start=lambda names: console.print(
            f"scheduler running: {', '.join(names)} (Ctrl-C to stop)"
        ),
        standby=standby,
        on_wait=waiting,
    )


@jobs_app.command("list")
def jobs_list(as_json: JsonOpt = False) -> None:
    """Every job, its schedule and its last run."""
    from jobs.catalog import job_table
    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    rows = job_table(rt)
    if as_json:
        print(json.dumps({"jobs": rows}, default=str))
        return
    table = Table(
        title=f"Jobs (schedules in {rt.settings.scheduler_timezone})", title_justify="left"
    )
    table.add_column("job", min_width=9)
    table.add_column("schedule", min_width=12)
    table.add_column("last run", min_width=16)
    table.add_column("status", min_width=9)
    table.add_column("what it does", ratio=1, overflow="fold")
    for r in rows:
        table.add_row(
            r["job"],
            r["schedule"] or "(by hand)",
            _slot(r["last_slot"])[-19:-3] if r["last_slot"] else "never",
            r["last_status"] or "",
            r["description"],
        )
    out.print(table)


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="refresh, retrain, replenish, monitor or probe.")],
    as_json: JsonOpt = False,
) -> None:
    """Run a job now, by hand; the run is recorded in the ledger."""
    quiet_libraries()
    from jobs.runtime import Runtime
    from jobs.scheduler import run_job_now

    settings = load_settings()
    slot, status = run_job_now(settings, name)
    record = Runtime(settings).ledger.history(name, limit=1)[0]
    emit(record, as_json, lambda: out.print(kv_table(f"{name} {_slot(slot)}", record)))
    if status == "failed":
        console.print(f"[bold red]error:[/] job {name} failed: {record['error']}", soft_wrap=True)
        raise typer.Exit(1)


@jobs_app.command("history")
def jobs_history(
    name: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent job runs, newest first."""
    from jobs.runtime import Runtime

    rows = Runtime(load_settings()).ledger.history(name, limit)
    if as_json:
        print(json.dumps({"runs": rows}, default=str))
        return
    table = Table(title="Job runs (UTC)", title_justify="left")
    for col in ("job", "slot", "status", "tries", "took"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("tries", "took") else "left")
    table.add_column("error", overflow="fold")
    for r in rows:
        took = (
            f"{(r['finished_at'] - r['started_at']).total_seconds():,.1f}s"
            if r["finished_at"] and r["started_at"]
            else ""
        )
        table.add_row(
            r["job"], _slot(r["slot"]), r["status"], str(r["attempts"]), took, r["error"] or ""
        )
    out.print(table)


def _slot(slot: str) -> str:
    """``2026-12-01T05:00:00+00:00`` → ``2026-12-01 05:00:00``; by hand: ``manual 06:23:07``."""
    manual = slot.startswith("manual:")
    text = slot.removeprefix("manual:").replace("T", " ")[:19]
    return f"manual {text}" if manual else text


# db ------------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Migrate the database (REPLEN_DATABASE_URL) to the newest schema; safe to repeat."""
    from replen.db import upgrade

    settings = load_settings()
    settings.ensure_dirs()
    revision = upgrade(settings.db_url)
    emit({"revision": revision}, as_json, lambda: out.print(f"database at revision {revision}"))


@db_app.command("current")
def db_current(as_json: JsonOpt = False) -> None:
    """Show the database's schema revision."""
    from replen.db import current

    revision = current(load_settings().db_url)
    emit(
        {"revision": revision},
        as_json,
        lambda: out.print(
            f"revision: {revision}"
            if revision
            else "no database yet: the first command that needs it creates it "
            "(or run `replen db upgrade`)"
        ),
    )


def _age(seconds: float) -> str:
    """A lag as a person reads it: 45s, 12.5 min, 3.2 h, 4.1 days."""
    for size, unit in ((86_400, "days"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.0f}s"
