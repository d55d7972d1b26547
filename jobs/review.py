"""The planner's worklist, wired: POs by urgency with filters, PO detail, the store×SKU view.

Reads the PO store, the lake and the forecast files of a :class:`Runtime`; the arithmetic
is in ``replenishment/worklist.py`` and ``replenishment/explain.py``. Store scopes are
applied here: ``stores`` None means every store.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import polars as pl

from jobs.runtime import Runtime
from kernel.errors import Forbidden, InvalidInput, NotFound
from replenishment.explain import explain, explanation_steps, steps_total
from replenishment.worklist import (
    EXCEPTION_TYPES,
    URGENCY_LEVELS,
    line_exceptions,
    line_urgency,
    po_urgency,
    release_advice,
    sort_by_urgency,
)

__all__ = [
    "SORT_KEYS",
    "QueueQuery",
    "held_orders",
    "item_names",
    "po_detail",
    "queue",
    "store_names",
    "worklist",
    "worklist_lines",
]

SORT_KEYS = (
    "urgency",
    "value",
    "value_at_risk",
    "min_days_of_cover",
    "plan_date",
    "order_date",
    "supplier_id",
    "store_id",
    "po_id",
)
OPEN_STATUSES = ("suggested",)


@dataclass
class QueueQuery:
    """Filters, sort and page of the PO queue (every filter optional)."""

    status: list[str] = field(default_factory=lambda: list(OPEN_STATUSES))
    store_id: list[str] | None = None
    supplier_id: list[str] | None = None
    plan_date: date | None = None
    exception: list[str] | None = None
    urgency: list[str] | None = None
    include_snoozed: bool = False
    sort: str = "urgency"
    descending: bool = False
    page: int = 1
    page_size: int = 50

    def check(self) -> None:
        from replenishment.orders import TRANSITIONS

        for name, values, allowed in (
            ("status", self.status, tuple(TRANSITIONS)),
            ("exception", self.exception, EXCEPTION_TYPES),
            ("urgency", self.urgency, URGENCY_LEVELS),
            ("sort", [self.sort], SORT_KEYS),
        ):
            bad = sorted(set(values or []) - set(allowed))
            if bad:
                raise InvalidInput(
                    f"{name}={bad[0]!r} is not one of {list(allowed)}",
                    field=name,
                    value=bad[0],
                    rule=f"{name}.enum",
                )
        if self.page < 1 or not 1 <= self.page_size <= 500:
            raise InvalidInput(
                f"page={self.page}, page_size={self.page_size}: page >= 1, page_size 1..500",
                field="page_size" if self.page >= 1 else "page",
                rule="page.range",
            )


_CACHE: dict[tuple[str, Any], tuple[Any, tuple[pl.DataFrame, pl.DataFrame]]] = {}
_CACHE_LOCK = threading.Lock()


def _changes(rt: Runtime, since: int | None) -> tuple[int | None, int, set[int] | None]:
    """(newest audit id, POs, the POs changed since audit id ``since``); None for the last
    when a change touched the plan as a whole (a new plan, stale marks). Every change of a
    PO writes an audit entry, in any process."""
    from sqlalchemy import func, select

    from replenishment.orders import AuditEntry, PurchaseOrder

    with rt.orders.engine.connect() as conn:
        newest = conn.scalar(select(func.max(AuditEntry.id)))
        count = int(conn.scalar(select(func.count()).select_from(PurchaseOrder)) or 0)
        if since is None or newest is None or newest <= since:
            return newest, count, set()
        ids = [
            r[0] for r in conn.execute(select(AuditEntry.po_id).where(AuditEntry.id > since)).all()
        ]
    return newest, count, None if any(i is None for i in ids) else {int(i) for i in ids}


def _annotate(rt: Runtime, lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Urgency and exceptions of ``lines``; each line tagged with its exception types."""
    s = rt.settings
    lines = line_urgency(lines, overstock_days=s.overstock_days)
    parts = [
        line_exceptions(
            lines.filter(pl.col("plan_date") == plan_date),
            rt.review.previous_quantities(plan_date),
            change_ratio=s.plan_change_ratio,
            change_min_units=s.plan_change_min_units,
            dormant=_dormant(rt, plan_date),
        )
        for plan_date in lines["plan_date"].unique().to_list()
    ]
    exc = pl.concat(parts) if parts else line_exceptions(lines, lines.clear())
    tags = exc.group_by("po_id", "sku_id").agg(pl.col("type").unique().sort().alias("exceptions"))
    out = lines.join(tags, on=["po_id", "sku_id"], how="left").with_columns(
        pl.col("exceptions").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )
    return out, exc


def _dormant(rt: Runtime, plan_date: Any) -> pl.DataFrame | None:
    """Store×SKUs the plan of ``plan_date`` saw as inactive (its classes file), if kept."""
    path = rt.settings.out_dir / f"classes_{plan_date}.parquet"
    if not path.exists():
        return None
    return (
        pl.scan_parquet(path)
        .filter(pl.col("demand_class") == "inactive")
        .select("store_id", "sku_id")
        .collect()
    )


def worklist(
    rt: Runtime, status: tuple[str, ...] | None = OPEN_STATUSES
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines of POs in ``status`` with urgency and their exception types (``exceptions``,
    a list per line), and those exceptions as rows.

    Kept between calls: a change to some POs (an edit, an approval, a snooze) recomputes
    only those POs; a new plan recomputes everything.
    """
    key = (rt.settings.db_url, status)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    since, count = (hit[0][0], hit[0][1]) if hit else (None, -1)
    newest, now_count, changed = _changes(rt, since)
    wanted = list(status) if status else None
    classes = _classes_files(rt)
    if hit is not None and changed is not None and now_count == count and hit[0][2] == classes:
        if not changed:
            return hit[1]
        ids = sorted(changed)
        fresh, fresh_exc = _annotate(rt, rt.review.line_frame(po_ids=ids, status=wanted))
        old, old_exc = hit[1]
        out = pl.concat(
            [old.filter(~pl.col("po_id").is_in(ids)), fresh], how="vertical_relaxed"
        ).sort("po_id", "sku_id")
        exc = pl.concat([old_exc.filter(~pl.col("po_id").is_in(ids)), fresh_exc])
    else:
        out, exc = _annotate(rt, rt.review.line_frame(status=wanted))
    with _CACHE_LOCK:
        _CACHE[key] = ((newest, now_count, classes), (out, exc))
    return out, exc


def _classes_files(rt: Runtime) -> tuple[tuple[str, int], ...]:
    """The plans' classes files as they are now (name, mtime): a rewritten one (a plan
    re-run for its day) changes which lines order dormant items."""
    out = rt.settings.out_dir
    if not out.exists():
        return ()
    return tuple(sorted((f.name, f.stat().st_mtime_ns) for f in out.glob("classes_*.parquet")))


def worklist_lines(rt: Runtime, status: tuple[str, ...] | None = OPEN_STATUSES) -> pl.DataFrame:
    """The lines of :func:`worklist`."""
    return worklist(rt, status)[0]


def _in_scope(frame: pl.DataFrame, stores: set[str] | None) -> pl.DataFrame:
    return frame if stores is None else frame.filter(pl.col("store_id").is_in(sorted(stores)))


def queue(
    rt: Runtime, q: QueueQuery, stores: set[str] | None = None, today: date | None = None
) -> dict[str, Any]:
    """POs matching ``q`` with their urgency, most urgent first (or by ``q.sort``)."""
    q.check()
    today = today or date.today()
    lines = _in_scope(worklist_lines(rt, tuple(sorted(q.status)) or None), stores)
    heads = (
        lines.group_by("po_id")
        .agg(
            pl.col(
                "plan_date",
                "supplier_id",
                "store_id",
                "order_date",
                "expected_delivery",
                "status",
                "stale",
                "snoozed_until",
                "currency",
                "po_value",
                "model_version",
            ).first(),
            pl.len().alias("lines"),
            pl.col("quantity").sum().alias("units"),
            (pl.col("quantity") != pl.col("suggested_quantity")).sum().alias("edited_lines"),
            pl.col("exceptions").explode().drop_nulls().unique().sort().alias("exceptions"),
        )
        .rename({"po_value": "value"})
        .join(po_urgency(lines), on="po_id")
    )
    facets = {
        c: sorted(str(v) for v in heads[c].unique().to_list())
        for c in ("supplier_id", "store_id", "plan_date")
    }
    where = []
    if q.store_id:
        where.append(pl.col("store_id").is_in(q.store_id))
    if q.supplier_id:
        where.append(pl.col("supplier_id").is_in(q.supplier_id))
    if q.plan_date:
        where.append(pl.col("plan_date") == q.plan_date)
    if q.urgency:
        where.append(pl.col("urgency").is_in(q.urgency))
    if q.exception:
        want = set(q.exception)
        plan_level = pl.lit("stale_plan" in want) & pl.col("stale")
        where.append(
            pl.col("exceptions").list.eval(pl.element().is_in(sorted(want))).list.any() | plan_level
        )
    if not q.include_snoozed:
        where.append(pl.col("snoozed_until").is_null() | (pl.col("snoozed_until") <= today))
    for cond in where:
        heads = heads.filter(cond)
    counts = dict(heads.group_by("urgency").len().iter_rows())
    if q.sort == "urgency":
        heads = sort_by_urgency(heads)
        if q.descending:
            heads = heads.reverse()
    else:
        heads = heads.sort([q.sort, "po_id"], descending=q.descending, nulls_last=True)
    total = heads.height
    page = heads.slice((q.page - 1) * q.page_size, q.page_size)
    named = store_names(rt)
    return {
        "items": [r | {"store_name": named.get(r["store_id"])} for r in page.to_dicts()],
        "total": total,
        "page": q.page,
        "page_size": q.page_size,
        "counts": {u: int(counts.get(u, 0)) for u in URGENCY_LEVELS},
        "facets": facets,
    }


def item_names(rt: Runtime) -> dict[str, str]:
    """SKU → name from the item names the ERP sent (``POST /v1/items``), where present."""
    items = rt.positions.master("items")
    for col in ("name", "description"):
        if col in items.columns:
            return dict(items.select("sku_id", col).drop_nulls().iter_rows())
    return {}


def store_names(rt: Runtime) -> dict[str, str]:
    """Store → name from the store names the ERP sent (``POST /v1/stores``), where present."""
    stores = rt.positions.master("stores")
    if "name" not in stores.columns:
        return {}
    return dict(stores.select("store_id", "name").drop_nulls().iter_rows())


def po_detail(rt: Runtime, po_id: int, stores: set[str] | None = None) -> dict[str, Any]:
    """One PO: header, urgency, every line with its explanation in steps and in words, the
    quantity of the plan before, and the audit trail."""
    lines = rt.review.line_frame(po_ids=[po_id])
    if lines.is_empty():
        raise NotFound(f"no purchase order with id {po_id}", hint="see GET /v1/orders")
    store_id = lines["store_id"][0]
    if stores is not None and store_id not in stores:
        raise Forbidden(f"PO {po_id} is for store {store_id}, outside your stores")
    s = rt.settings
    plan_date = lines["plan_date"][0]
    previous = rt.review.previous_quantities(plan_date)
    urg = line_urgency(lines, overstock_days=s.overstock_days)
    exc = line_exceptions(
        urg, previous, change_ratio=s.plan_change_ratio, change_min_units=s.plan_change_min_units
    )
    urg = urg.join(previous, on=["store_id", "sku_id"], how="left")
    explanations = {
        line.sku_id: line.explanation
        for line in _po_lines(rt, po_id)  # full explanations (every field)
    }
    names = item_names(rt)
    out_lines = []
    for row in urg.iter_rows(named=True):
        expl = explanations[row["sku_id"]]
        steps = explanation_steps(expl, row["quantity"], row["suggested_quantity"])
        out_lines.append(
            {
                "sku_id": row["sku_id"],
                "name": names.get(row["sku_id"]),
                "quantity": row["quantity"],
                "suggested_quantity": row["suggested_quantity"],
                "previous_quantity": row["previous_quantity"],
                "unit_cost": row["unit_cost"],
                "value": row["value"],
                "explanation": expl,
                "steps": [st.to_dict() for st in steps],
                "steps_total": steps_total(steps),
                "sentence": explain(expl, row["quantity"], row["suggested_quantity"]),
                "urgency": {
                    k: row[k]
                    for k in (
                        "daily_rate",
                        "days_to_delivery",
                        "days_of_cover",
                        "stockout_date",
                        "stockout_before_delivery",
                        "short_units",
                        "value_at_risk",
                        "cover_after_order",
                        "overstock",
                    )
                },
                "exceptions": sorted(
                    exc.filter(pl.col("sku_id") == row["sku_id"])["type"].to_list()
                ),
            }
        )
    head = lines.row(0, named=True)
    summary = po_urgency(urg).row(0, named=True)
    return {
        "po_id": po_id,
        "plan_date": head["plan_date"],
        "supplier_id": head["supplier_id"],
        "store_id": store_id,
        "store_name": store_names(rt).get(store_id),
        "order_date": head["order_date"],
        "expected_delivery": head["expected_delivery"],
        "status": head["status"],
        "stale": head["stale"],
        "snoozed_until": head["snoozed_until"],
        "currency": head["currency"],
        "value": head["po_value"],
        "model_version": head["model_version"],
        "previous_plan_date": previous["previous_plan_date"][0] if previous.height else None,
        "urgency": summary["urgency"],
        "value_at_risk": summary["value_at_risk"],
        "first_stockout": summary["first_stockout"],
        "min_days_of_cover": summary["min_days_of_cover"],
        "lines": out_lines,
        "audit": rt.orders.history(po_id),
    }


def _po_lines(rt: Runtime, po_id: int) -> list[Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from replenishment.orders import PoLine

    with Session(rt.orders.engine) as session:
        rows = list(session.scalars(select(PoLine).where(PoLine.po_id == po_id)))
        session.expunge_all()
    return rows


def held_orders(
    rt: Runtime, plan_date: date | None = None, stores: set[str] | None = None
) -> list[dict[str, Any]]:
    """POs held under their supplier's minimum, each with what it takes to release it."""
    names = item_names(rt)
    out = []
    for h in rt.review.held(plan_date):
        if stores is not None and h["store_id"] not in stores:
            continue
        for line in h["lines"]:
            line["name"] = names.get(line["sku_id"])
            line["sentence"] = explain(line["explanation"], line["quantity"])
        out.append({**h, "release": release_advice(h)})
    return out


def value_added_report(rt: Runtime, stores: set[str] | None = None) -> dict[str, Any]:
    """Forecast value added of planners' changes, per planner × store × model version,
    scored on the sales of each line's protection period once it has ended."""
    from features.sales import daily_sales
    from replenishment.value_added import scored_changes, value_added

    changes = _in_scope(rt.review.changed_lines(), stores)
    if changes.is_empty():
        return {"as_of": None, "changed_lines": 0, "scored_lines": 0, "groups": []}
    pairs = changes.select("store_id", "sku_id").unique()
    first: date = changes["plan_date"].min()  # type: ignore[assignment]
    events = rt.lake.scan_events(first).join(pairs.lazy(), on=["store_id", "sku_id"], how="semi")
    sales = daily_sales(events)
    newest = rt.lake.newest_sold_at()
    as_of = newest.date() if newest else first
    # The newest day may still be filling up: score periods that ended the day before.
    as_of = as_of - timedelta(days=1)
    scored = scored_changes(changes, sales, as_of)
    return {
        "as_of": as_of,
        "changed_lines": changes.height,
        "scored_lines": scored.height,
        "groups": value_added(scored).to_dicts() if scored.height else [],
    }
