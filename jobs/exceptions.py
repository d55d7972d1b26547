"""The exceptions a planner clears daily, data health, and their counts for /metrics.

Exceptions come from three places: the open PO lines (stockout risk, overstock, large
change against the previous plan), the plan itself (held POs, stale plans) and the data
(stale POS feed per store, missing stock positions and rules, unknown stores and SKUs,
blocks of history the latest retrain's data checks masked).
Each has a key ``type|subject|day``; a planner confirms it for its day or snoozes it
until a later day (``replenishment/review_store.py`` keeps the marks).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from jobs.model_inputs import CHECKS_FILE, latest_checks
from jobs.review import worklist
from jobs.runtime import Runtime
from kernel.errors import InvalidInput, NotFound
from replenishment.data_health import data_problems
from replenishment.worklist import EXCEPTION_SCHEMA, EXCEPTION_TYPES, plan_exceptions

__all__ = ["data_health", "exception_counts", "exceptions", "mark_exception", "parse_key"]

_DATA_CACHE: dict[str, tuple[Any, float, pl.DataFrame, pl.DataFrame]] = {}
_LOCK = threading.Lock()
DATA_TTL_SECONDS = 60.0


def _master(rt: Runtime, name: str) -> pl.DataFrame | None:
    """The latest stock positions (``stock``) or the item / store names the ERP sent
    (``items``, ``stores``); None when that feed never sent anything."""
    frame = rt.positions.latest() if name == "stock" else rt.positions.master(name)
    return None if frame.is_empty() else frame


def _data_frames(rt: Runtime, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(freshness per store, data problems), recomputed when the lake gains a batch or
    after ``DATA_TTL_SECONDS``."""
    from features.monitor import freshness

    checks = rt.settings.out_dir / CHECKS_FILE
    checked = checks.stat().st_mtime_ns if checks.exists() else None
    stamp = (len(rt.lake.batches()), *rt.positions.version(), checked)
    key = rt.settings.db_url
    with _LOCK:
        hit = _DATA_CACHE.get(key)
    if hit and hit[0] == stamp and time.monotonic() - hit[1] < DATA_TTL_SECONDS:
        return hit[2], hit[3]
    events = rt.lake.scan_events()
    fresh = freshness(events, now)
    sold = events.select("store_id", "sku_id").unique().collect()
    stock = _master(rt, "stock")
    items = _master(rt, "items")
    stores = _master(rt, "stores")
    rules = rt.rules_store.load()
    problems = data_problems(
        today=now.date(),
        freshness=fresh,
        sold=sold,
        stock_keys=stock,
        rule_skus=set(rules.items["sku_id"].to_list()) if rules is not None else None,
        known_stores=set(stores["store_id"].to_list())
        if stores is not None
        else (set(stock["store_id"].to_list()) if stock is not None else None),
        known_skus=set(items["sku_id"].to_list()) if items is not None else None,
        stale_after_hours=rt.settings.pos_stale_hours,
        suspect_blocks=latest_checks(rt),
    )
    with _LOCK:
        _DATA_CACHE[key] = (stamp, time.monotonic(), fresh, problems)
    return fresh, problems


def _all(rt: Runtime, today: date, now: datetime) -> pl.DataFrame:
    _, line_exc = worklist(rt)
    held = rt.review.held()
    held_frame = pl.DataFrame(
        [
            {k: h[k] for k in ("plan_date", "supplier_id", "store_id", "value", "min_order_value")}
            for h in held
        ],
        schema={
            "plan_date": pl.Date,
            "supplier_id": pl.String,
            "store_id": pl.String,
            "value": pl.Float64,
            "min_order_value": pl.Float64,
        },
    )
    stale = rt.review.stale_plans()
    latest = rt.review.latest_plan_date()
    if latest is not None and latest < today:
        stale = pl.concat(
            [
                stale,
                pl.DataFrame(
                    {
                        "plan_date": [latest],
                        "purchase_orders": [0],
                        "reason": [f"the newest plan is older than today ({today})"],
                    },
                    schema=stale.schema,
                ),
            ]
        )
    _, problems = _data_frames(rt, now)
    return pl.concat(
        [
            line_exc.select(list(EXCEPTION_SCHEMA)),
            plan_exceptions(held_frame, stale, today),
            problems,
        ]
    )


def exceptions(
    rt: Runtime,
    *,
    today: date | None = None,
    now: datetime | None = None,
    types: list[str] | None = None,
    state: str = "open",
    stores: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Exceptions with their ``key`` and ``state`` (open, confirmed or snoozed);
    ``state="all"`` lists every one."""
    now = now or datetime.now(UTC)
    today = today or now.date()
    if types:
        bad = sorted(set(types) - set(EXCEPTION_TYPES))
        if bad:
            raise InvalidInput(
                f"type={bad[0]!r} is not one of {list(EXCEPTION_TYPES)}",
                field="type",
                value=bad[0],
                rule="type.enum",
            )
    frame = _with_state(rt, _all(rt, today, now), today)
    if types:
        frame = frame.filter(pl.col("type").is_in(types))
    if state != "all":
        frame = frame.filter(pl.col("state") == state)
    if stores is not None:
        frame = frame.filter(
            pl.col("store_id").is_null() | pl.col("store_id").is_in(sorted(stores))
        )
    order = {t: i for i, t in enumerate(EXCEPTION_TYPES)}
    frame = (
        frame.with_columns(pl.col("type").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
        .sort("_o", "subject")
        .drop("_o")
    )
    return frame.to_dicts()


def _with_state(rt: Runtime, frame: pl.DataFrame, today: date) -> pl.DataFrame:
    marks = rt.review.active_marks(today)
    confirmed = (
        marks.filter(pl.col("state") == "confirmed")
        .group_by("type", "subject", "day")
        .agg(pl.col("actor").last().alias("confirmed_by"))
    )
    snoozed = (
        marks.filter(pl.col("state") == "snoozed")
        .group_by("type", "subject")
        .agg(
            pl.col("until").max().alias("snoozed_until"), pl.col("actor").last().alias("snoozed_by")
        )
    )
    return (
        frame.with_columns(
            pl.format("{}|{}|{}", "type", "subject", pl.col("day").cast(pl.String)).alias("key")
        )
        .join(confirmed, on=["type", "subject", "day"], how="left")
        .join(snoozed, on=["type", "subject"], how="left")
        .with_columns(
            pl.when(pl.col("confirmed_by").is_not_null())
            .then(pl.lit("confirmed"))
            .when(pl.col("snoozed_until").is_not_null())
            .then(pl.lit("snoozed"))
            .otherwise(pl.lit("open"))
            .alias("state")
        )
    )


def parse_key(key: str) -> tuple[str, str, date]:
    """``type|subject|day`` → its parts; errors name the rule broken."""
    parts = key.split("|")
    if len(parts) != 3 or parts[0] not in EXCEPTION_TYPES:
        raise InvalidInput(
            f"exception key {key!r} must be 'type|subject|day' with a known type",
            field="key",
            value=key,
            rule="key.format",
        )
    try:
        day = date.fromisoformat(parts[2])
    except ValueError:
        raise InvalidInput(
            f"exception key {key!r}: day {parts[2]!r} is not a date (YYYY-MM-DD)",
            field="key",
            value=key,
            rule="key.day",
        ) from None
    return parts[0], parts[1], day


def mark_exception(
    rt: Runtime,
    key: str,
    *,
    state: str,
    actor: str,
    until: date | None = None,
    note: str | None = None,
    today: date | None = None,
    stores: set[str] | None = None,
) -> dict[str, Any]:
    """Confirm (for its day) or snooze (until a day) the exception ``key``."""
    type_, subject, day = parse_key(key)
    today = today or date.today()
    found = [x for x in exceptions(rt, today=today, state="all", stores=stores) if x["key"] == key]
    if not found:
        raise NotFound(f"no exception {key!r} today", hint="GET /v1/exceptions lists them")
    if state == "snoozed" and until is not None and until <= today:
        raise InvalidInput(
            f"until={until} must be after today ({today})",
            field="until",
            value=until,
            rule="until.future",
        )
    rt.review.mark(type_, subject, state=state, actor=actor, day=day, until=until, note=note)
    return {**found[0], "state": state}


def exception_counts(rt: Runtime) -> dict[str, int]:
    """Open exceptions by type (every type present, zeros included)."""
    frame = pl.DataFrame(exceptions(rt), schema_overrides={"type": pl.String})
    counts = dict(frame.group_by("type").len().iter_rows()) if frame.height else {}
    return {t: int(counts.get(t, 0)) for t in EXCEPTION_TYPES}


def data_health(rt: Runtime, now: datetime | None = None) -> dict[str, Any]:
    """POS freshness per store, the data problems by type, and what the plan rests on."""
    now = now or datetime.now(UTC)
    fresh, problems = _data_frames(rt, now)
    stock = _master(rt, "stock")
    rules = rt.rules_store.load()
    stale_h = rt.settings.pos_stale_hours
    return {
        "checked_at": now,
        "pos_stale_after_hours": stale_h,
        "stores": [
            {
                "store_id": r["store_id"],
                "newest_sale": r["newest"],
                "lag_hours": round(r["lag_seconds"] / 3600, 2),
                "stale": r["lag_seconds"] > stale_h * 3600,
            }
            for r in fresh.iter_rows(named=True)
        ],
        "problems": dict(problems.group_by("type").len().sort("type").iter_rows()),
        "stock_positions": stock.height if stock is not None else 0,
        "rules_loaded": rules is not None,
        "latest_plan_date": rt.review.latest_plan_date(),
        "quarantined_lines": int(rt.lake.quarantine().height),
    }
