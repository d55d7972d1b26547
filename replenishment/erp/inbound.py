"""What the ERP sends back: acknowledgements (its PO number, confirmed quantities and dates)
and goods receipts (POs received fully or in part); supplier lead times measured from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kernel.sql import engine_for, now_utc, read_session, utc, write_session
from replenishment.models import AuditEntry, Delivery, PoLine, PurchaseOrder, Receipt

__all__ = ["InboundResult", "apply_acks", "apply_receipts", "lead_times"]

ORDERED = ("approved", "exported", "acknowledged", "received")


@dataclass
class InboundResult:
    """Rows applied (``accepted``: changed something), already known (``duplicates``), and
    refused against the stored state: ``(line, field, rule, message)`` each."""

    accepted: int = 0
    duplicates: int = 0
    rejects: list[tuple[int, str, str, str]] = field(default_factory=list)
    purchase_orders: set[int] = field(default_factory=set)
    received_in_full: int = 0
    acknowledged: int = 0


def _resolve(session: Session, rows: list[dict[str, Any]]) -> dict[tuple, PurchaseOrder]:
    """The POs the rows name, locked for this transaction (PostgreSQL: row locks; SQLite:
    the write transaction already excludes other writers)."""
    ids = {int(r["po_id"]) for r in rows if r.get("po_id") is not None}
    refs = {r["erp_po_number"] for r in rows if r.get("po_id") is None and r.get("erp_po_number")}
    found: dict[tuple, PurchaseOrder] = {}
    for start in range(0, len(ids), 500):
        chunk = sorted(ids)[start : start + 500]
        for po in session.scalars(
            select(PurchaseOrder).where(PurchaseOrder.id.in_(chunk)).with_for_update()
        ):
            found[("id", po.id)] = po
    if refs:
        stmt = select(PurchaseOrder).where(PurchaseOrder.erp_ref.in_(refs)).with_for_update()
        for po in session.scalars(stmt):
            found[("ref", po.erp_ref)] = po
    return found


def _po_of(r: dict[str, Any], found: dict[tuple, PurchaseOrder]) -> PurchaseOrder | None:
    if r.get("po_id") is not None:
        return found.get(("id", int(r["po_id"])))
    return found.get(("ref", r.get("erp_po_number")))


def _unknown(r: dict[str, Any]) -> tuple[int, str, str, str]:
    if r.get("po_id") is not None:
        return (r["_line"], "po_id", "unknown", f"no purchase order with id {int(r['po_id'])}")
    return (
        r["_line"],
        "erp_po_number",
        "unknown",
        f"no purchase order with ERP number {r['erp_po_number']!r}",
    )


def _ordered_po(
    r: dict[str, Any], found: dict[tuple, PurchaseOrder], result: InboundResult, only: str
) -> PurchaseOrder | None:
    """The ordered PO the row names; else None, the row refused in ``result`` (``only``
    ordered POs …, what the row would do to it)."""
    po = _po_of(r, found)
    if po is None:
        result.rejects.append(_unknown(r))
    elif po.status not in ORDERED:
        result.rejects.append(
            (r["_line"], "po_id", "status", f"PO {po.id} is {po.status}; only ordered POs {only}")
        )
    else:
        return po
    return None


def _po_line(r: dict[str, Any], po: PurchaseOrder, result: InboundResult) -> PoLine | None:
    """The PO's line for the row's SKU; else None, the row refused in ``result``."""
    line = next((x for x in po.lines if x.sku_id == r["sku_id"]), None)
    if line is None:
        result.rejects.append(
            (
                r["_line"],
                "sku_id",
                "not_on_po",
                f"PO {po.id} has no line for sku_id={r['sku_id']!r}",
            )
        )
    return line


def _settle_delivery(session: Session, po: PurchaseOrder, now: datetime, ref: str | None) -> None:
    """The ERP evidently holds this version: its pending delivery needs no more sending."""
    session.execute(
        update(Delivery)
        .where(
            Delivery.po_id == po.id,
            Delivery.revision == po.revision,
            Delivery.status == "pending",
        )
        .values(
            status="delivered",
            delivered_at=now,
            erp_ref=ref,
            lease_owner=None,
            lease_until=None,
            last_error="settled by the ERP's own answer",
        )
        .execution_options(synchronize_session=False)
    )


def apply_receipts(engine: Any, rows: pl.DataFrame, actor: str = "erp") -> InboundResult:
    """Record receipt lines (typed rows of the receipts feed) in one transaction.

    A line adds to its PO line's received quantity; a PO whose every line is received (as
    confirmed, else as ordered) becomes ``received``. A receipt line already stored is a
    duplicate; the same receipt line with another quantity or time is refused."""
    result = InboundResult()
    now = now_utc()
    records = rows.sort("received_at", "_line").to_dicts()
    with write_session(engine_for(engine)) as session:
        found = _resolve(session, records)
        for r in records:
            po = _ordered_po(r, found, result, "receive goods")
            if po is None:
                continue
            if r.get("store_id") and r["store_id"] != po.store_id:
                result.rejects.append(
                    (
                        r["_line"],
                        "store_id",
                        "mismatch",
                        f"PO {po.id} is for store {po.store_id}, not {r['store_id']}",
                    )
                )
                continue
            line = _po_line(r, po, result)
            if line is None:
                continue
            stored = session.scalars(
                select(Receipt).where(
                    Receipt.receipt_id == r["receipt_id"],
                    Receipt.po_id == po.id,
                    Receipt.sku_id == line.sku_id,
                )
            ).first()
            if stored is not None:
                if stored.quantity == r["quantity"] and utc(stored.received_at) == r["received_at"]:
                    result.duplicates += 1
                else:
                    result.rejects.append(
                        (
                            r["_line"],
                            "receipt_id",
                            "conflict",
                            f"receipt {r['receipt_id']} of PO {po.id} / {line.sku_id} was received "
                            f"before as {stored.quantity:g} units at {utc(stored.received_at)}",
                        )
                    )
                continue
            session.add(
                Receipt(
                    receipt_id=r["receipt_id"],
                    po_id=po.id,
                    store_id=po.store_id,
                    sku_id=line.sku_id,
                    quantity=float(r["quantity"]),
                    received_at=r["received_at"],
                    ingested_at=now,
                )
            )
            line.received_quantity = float(line.received_quantity or 0.0) + float(r["quantity"])
            result.accepted += 1
            result.purchase_orders.add(po.id)
        session.flush()
        for po_id in sorted(result.purchase_orders):
            po = session.get(PurchaseOrder, po_id)
            assert po is not None
            done = all(
                x.received_quantity
                >= (x.confirmed_quantity if x.confirmed_quantity is not None else x.quantity)
                for x in po.lines
            )
            detail = {x.sku_id: x.received_quantity for x in po.lines}
            action = "receipt"
            if done and po.status != "received":
                if po.status == "approved":
                    _settle_delivery(session, po, now, po.erp_ref)
                po.status = "received"
                action = "received"
                result.received_in_full += 1
            session.add(
                AuditEntry(
                    po_id=po_id, at=now, actor=actor, action=action, detail={"received": detail}
                )
            )
    return result


def apply_acks(engine: Any, rows: pl.DataFrame, actor: str = "erp") -> InboundResult:
    """Record acknowledgements (typed rows of the acks feed) in one transaction: the ERP's
    PO number, confirmed quantities and delivery dates per line; an ordered PO becomes
    ``acknowledged`` (and the ERP holds it from the acknowledgement on)."""
    result = InboundResult()
    now = now_utc()
    records = rows.sort("_line").to_dicts()
    with write_session(engine_for(engine)) as session:
        found = _resolve(session, records)
        for r in records:
            po = _ordered_po(r, found, result, "can be acknowledged")
            if po is None:
                continue
            line = None
            if r.get("sku_id"):
                line = _po_line(r, po, result)
                if line is None:
                    continue
            at = r.get("acknowledged_at") or now
            changed = False
            ref = r.get("erp_po_number")
            if ref and po.erp_ref != ref:
                po.erp_ref, changed = ref, True
            if line is not None:
                for attr in ("confirmed_quantity", "confirmed_delivery"):
                    if r.get(attr) is not None and getattr(line, attr) != r[attr]:
                        setattr(line, attr, r[attr])
                        changed = True
            if po.status in ("approved", "exported"):
                if po.status == "approved":
                    _settle_delivery(session, po, now, ref or po.erp_ref)
                po.status = "acknowledged"
                po.acknowledged_at = at
                result.acknowledged += 1
                changed = True
                session.add(
                    AuditEntry(
                        po_id=po.id,
                        at=now,
                        actor=actor,
                        action="acknowledged",
                        detail={"erp_ref": po.erp_ref, "acknowledged_at": at.isoformat()},
                    )
                )
            known = utc(po.erp_known_at)
            if known is None or at < known:
                po.erp_known_at = at
            if changed:
                result.accepted += 1
                result.purchase_orders.add(po.id)
            else:
                result.duplicates += 1
    return result


def lead_times(engine: Any) -> pl.DataFrame:
    """Measured supplier lead times: per PO with receipts, days from its order date to its
    first receipt (the span the planner models as order date + lead time); per supplier
    the count, mean, standard deviation and the share received by the expected delivery."""
    stmt = select(
        PurchaseOrder.id,
        PurchaseOrder.supplier_id,
        PurchaseOrder.order_date,
        PurchaseOrder.erp_known_at,
        PurchaseOrder.expected_delivery,
        Receipt.received_at,
    ).join(Receipt, Receipt.po_id == PurchaseOrder.id)
    with read_session(engine_for(engine)) as session:
        rows = session.execute(stmt).all()
    per_po = pl.DataFrame(
        [(i, s, o, utc(k), e, utc(r)) for i, s, o, k, e, r in rows],
        schema={
            "po_id": pl.Int64,
            "supplier_id": pl.String,
            "order_date": pl.Date,
            "erp_known_at": pl.Datetime("us", "UTC"),
            "expected_delivery": pl.Date,
            "received_at": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    return (
        per_po.group_by("po_id", "supplier_id", "order_date", "erp_known_at", "expected_delivery")
        .agg(pl.col("received_at").min().dt.date().alias("received_on"))
        .with_columns(
            (pl.col("received_on") - pl.col("order_date"))
            .dt.total_days()
            .cast(pl.Float64)
            .alias("lead_days"),
            (pl.col("received_on") <= pl.col("expected_delivery")).alias("on_time"),
        )
        .group_by("supplier_id")
        .agg(
            pl.len().alias("receipts"),
            pl.col("lead_days").mean().alias("measured_mean"),
            pl.col("lead_days").std().fill_null(0.0).alias("measured_std"),
            pl.col("on_time").mean().alias("on_time_rate"),
        )
        .sort("supplier_id")
    )
