"""The purchase-order document sent to the ERP (JSON Schema ``schema/purchase_order.v1.json``),
built from one PO version with item, store and supplier names."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from replenishment.models import AuditEntry, ItemMaster, PurchaseOrder, StoreMaster
from replenishment.rules_store import _items as rules_items
from replenishment.rules_store import _suppliers as rules_suppliers
from replenishment.sql import utc

__all__ = ["SCHEMA_PATH", "build_payload", "origin_of", "schema", "validate_payload"]

SCHEMA_PATH = Path(__file__).parent / "schema" / "purchase_order.v1.json"


def origin_of(po_id: int) -> str:
    """The ERP order's source reference: how Replen finds its order again in the ERP."""
    return f"REPLEN-{po_id}"


@cache
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return data


def validate_payload(payload: dict[str, Any]) -> list[str]:
    """Every way ``payload`` breaks the schema (empty when it conforms)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in validator.iter_errors(payload)
    ]


def build_payload(session: Session, po_id: int, key: str) -> dict[str, Any]:
    """The document of PO ``po_id`` at its current revision."""
    po = session.get(PurchaseOrder, po_id)
    if po is None:
        raise LookupError(f"no purchase order with id {po_id}")
    skus = [line.sku_id for line in po.lines]
    items = {i.sku_id: i for i in session.scalars(select(ItemMaster).where(ItemMaster.sku_id.in_(skus)))}
    packs = dict(
        session.execute(
            select(rules_items.c.sku_id, rules_items.c.pack_size).where(rules_items.c.sku_id.in_(skus))
        ).all()
    )
    store = session.get(StoreMaster, po.store_id)
    supplier_name = session.scalar(
        select(rules_suppliers.c.name).where(rules_suppliers.c.supplier_id == po.supplier_id)
    )
    approval = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.po_id == po_id, AuditEntry.action.in_(["approved", "revise"]))
        .order_by(desc(AuditEntry.id))
        .limit(1)
    ).first()
    lines = []
    for n, line in enumerate(sorted(po.lines, key=lambda x: x.sku_id), start=1):
        item = items.get(line.sku_id)
        lines.append(
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
    approved_at = utc(approval.at) if approval else utc(po.created_at)
    return {
        "schema_version": "1",
        "idempotency_key": key,
        "po_id": po.id,
        "revision": po.revision,
        "origin": origin_of(po.id),
        "order_date": po.order_date.isoformat(),
        "expected_delivery": po.expected_delivery.isoformat(),
        "currency": po.currency,
        "supplier": {"supplier_id": po.supplier_id, "name": supplier_name},
        "store": {"store_id": po.store_id, "name": store.name if store else None},
        "lines": lines,
        "total_value": round(sum(x["line_value"] for x in lines), 2),
        "approved_by": approval.actor if approval else "unknown",
        "approved_at": approved_at.isoformat() if approved_at else "",
    }
