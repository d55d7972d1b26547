"""The purchase-order document sent to the ERP (JSON Schema ``schema/purchase_order.v1.json``),
built from one PO version with item, store and supplier names."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.sql import utc
from replenishment.models import AuditEntry, ItemMaster, PoLine, PurchaseOrder, StoreMaster
from replenishment.rules_store import _items as rules_items
from replenishment.rules_store import _suppliers as rules_suppliers

__all__ = ["SCHEMA_PATH", "build_payloads", "origin_of", "schema", "validate_payload"]

SCHEMA_PATH = Path(__file__).parent / "schema" / "purchase_order.v1.json"


def origin_of(po_id: int) -> str:
    """The ERP order's source reference: how Replen finds its order again in the ERP."""
    return f"REPLEN-{po_id}"


@cache
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return data


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate_payload(payload: dict[str, Any]) -> list[str]:
    """Every way ``payload`` breaks the schema (empty when it conforms)."""
    validator = _validator()
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in validator.iter_errors(payload)
    ]


def build_payloads(session: Session, versions: list[tuple[int, str]]) -> dict[int, dict[str, Any]]:
    """The documents of many POs at their current revisions, ``{po_id: document}``, from
    ``(po_id, idempotency key)`` pairs; a handful of queries whatever their number."""
    ids = [po_id for po_id, _ in versions]
    keys = dict(versions)
    po_t, line_t = PurchaseOrder.__table__, PoLine.__table__
    heads = {r.id: r for r in session.execute(select(po_t).where(po_t.c.id.in_(ids)))}
    lines: dict[int, list[Any]] = {i: [] for i in ids}
    for r in session.execute(
        select(line_t).where(line_t.c.po_id.in_(ids)).order_by(line_t.c.po_id, line_t.c.sku_id)
    ):
        lines[r.po_id].append(r)
    skus = sorted({x.sku_id for rows in lines.values() for x in rows})
    items = {
        r.sku_id: r
        for r in session.execute(
            select(ItemMaster.__table__).where(ItemMaster.__table__.c.sku_id.in_(skus))
        )
    }
    packs: dict[str, Any] = dict(
        session.execute(
            select(rules_items.c.sku_id, rules_items.c.pack_size).where(
                rules_items.c.sku_id.in_(skus)
            )
        )
        .tuples()
        .all()
    )
    stores: dict[str, Any] = dict(
        session.execute(
            select(StoreMaster.store_id, StoreMaster.name).where(
                StoreMaster.store_id.in_({h.store_id for h in heads.values()})
            )
        )
        .tuples()
        .all()
    )
    suppliers: dict[str, Any] = dict(
        session.execute(
            select(rules_suppliers.c.supplier_id, rules_suppliers.c.name).where(
                rules_suppliers.c.supplier_id.in_({h.supplier_id for h in heads.values()})
            )
        )
        .tuples()
        .all()
    )
    approvals: dict[int, Any] = {}
    for a in session.execute(
        select(AuditEntry.po_id, AuditEntry.actor, AuditEntry.at)
        .where(AuditEntry.po_id.in_(ids), AuditEntry.action.in_(["approved", "revise"]))
        .order_by(AuditEntry.id)
    ):
        approvals[a.po_id] = a  # the newest wins
    out = {}
    for po_id in ids:
        head = heads.get(po_id)
        if head is None:
            continue
        doc_lines = []
        for n, line in enumerate(lines[po_id], start=1):
            item = items.get(line.sku_id)
            doc_lines.append(
                {
                    "line_no": n,
                    "sku_id": line.sku_id,
                    "name": item.name if item else None,
                    "description": item.description if item else None,
                    "unit": item.unit if item else "unit",
                    "quantity": int(line.quantity),
                    "pack_size": int(packs.get(line.sku_id) or 1),
                    "unit_price": round(float(line.unit_cost), 6),
                    "line_value": round(float(line.quantity * line.unit_cost), 2),
                }
            )
        approval = approvals.get(po_id)
        approved_at = utc(approval.at) if approval else utc(head.created_at)
        out[po_id] = {
            "schema_version": "1",
            "idempotency_key": keys[po_id],
            "po_id": po_id,
            "revision": head.revision,
            "origin": origin_of(po_id),
            "order_date": head.order_date.isoformat(),
            "expected_delivery": head.expected_delivery.isoformat(),
            "currency": head.currency,
            "supplier": {"supplier_id": head.supplier_id, "name": suppliers.get(head.supplier_id)},
            "store": {"store_id": head.store_id, "name": stores.get(head.store_id)},
            "lines": doc_lines,
            "total_value": round(sum(x["line_value"] for x in doc_lines), 2),
            "approved_by": approval.actor if approval else "unknown",
            "approved_at": approved_at.isoformat() if approved_at else "",
        }
    return out
