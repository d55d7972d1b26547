"""The fake ERP's books (SQLite): purchase orders received by webhook or Odoo JSON-RPC,
vendors and products, stock, and a log of requests with the fault each one got."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from replen.fake_erp.odoo import OdooFault, OdooModels

__all__ = ["ErpBooks", "OdooFault"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_keys(
  key TEXT PRIMARY KEY, body_sha TEXT, status INTEGER, response TEXT);
CREATE TABLE IF NOT EXISTS orders(
  id INTEGER PRIMARY KEY, name TEXT, protocol TEXT, origin TEXT, po_id INTEGER,
  revision INTEGER, partner_id INTEGER, supplier_id TEXT, store_id TEXT, state TEXT,
  date_order TEXT, date_planned TEXT, created_at REAL, versions INTEGER DEFAULT 1);
CREATE INDEX IF NOT EXISTS orders_origin ON orders(origin);
CREATE TABLE IF NOT EXISTS order_lines(
  id INTEGER PRIMARY KEY, order_id INTEGER, product_id INTEGER, sku_id TEXT,
  product_qty REAL, price_unit REAL, date_planned TEXT, name TEXT, qty_received REAL DEFAULT 0);
CREATE INDEX IF NOT EXISTS order_lines_order ON order_lines(order_id);
CREATE TABLE IF NOT EXISTS partners(id INTEGER PRIMARY KEY, ref TEXT UNIQUE, name TEXT);
CREATE TABLE IF NOT EXISTS products(id INTEGER PRIMARY KEY, default_code TEXT UNIQUE, name TEXT);
CREATE TABLE IF NOT EXISTS stock(
  store_id TEXT, sku_id TEXT, on_hand REAL, PRIMARY KEY(store_id, sku_id));
CREATE TABLE IF NOT EXISTS requests(
  id INTEGER PRIMARY KEY, at REAL, path TEXT, key TEXT, fault TEXT, status INTEGER);
"""


class ErpBooks(OdooModels):
    """Everything the fake ERP stores; one lock serialises writers (like one database)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.Lock()
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)

    def _tx(self) -> Any:
        class _Tx:
            def __enter__(inner) -> sqlite3.Connection:
                self.lock.acquire()
                self.db.execute("BEGIN IMMEDIATE")
                return self.db

            def __exit__(inner, exc_type: Any, *_: Any) -> None:
                try:
                    self.db.execute("ROLLBACK" if exc_type else "COMMIT")
                finally:
                    self.lock.release()

        return _Tx()

    def log(self, path: str, key: str | None, fault: str, status: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO requests(at, path, key, fault, status) VALUES (?,?,?,?,?)",
                (time.time(), path, key, fault, status),
            )

    # Webhook -------------------------------------------------------------------------------
    def webhook_order(self, key: str, body: bytes, payload: dict[str, Any]) -> tuple[int, dict]:
        """Apply one webhook delivery: a known key replays its first answer (another body
        under it is a 409); a new key creates the order, or updates it for a higher revision.
        A new key for a version already applied creates another order, as a naive ERP
        would: that is how a client that re-sends without its key is caught."""
        sha = hashlib.sha256(body).hexdigest()
        with self._tx() as db:
            seen = db.execute("SELECT * FROM webhook_keys WHERE key=?", (key,)).fetchone()
            if seen is not None:
                if seen["body_sha"] != sha:
                    return 409, {"error": f"Idempotency-Key {key} was used for another body"}
                return 200, {**json.loads(seen["response"]), "status": "replayed"}
            order = db.execute(
                "SELECT * FROM orders WHERE protocol='webhook' AND po_id=? ORDER BY id DESC",
                (payload["po_id"],),
            ).fetchone()
            if order is not None and payload["revision"] > order["revision"]:
                db.execute("DELETE FROM order_lines WHERE order_id=?", (order["id"],))
                db.execute(
                    "UPDATE orders SET revision=?, versions=versions+1, date_planned=? WHERE id=?",
                    (payload["revision"], payload["expected_delivery"], order["id"]),
                )
                order_id, name, status = order["id"], order["name"], "updated"
            else:
                order_id = self._new_order(
                    db,
                    "webhook",
                    payload["origin"],
                    payload["po_id"],
                    payload["revision"],
                    None,
                    payload["supplier"]["supplier_id"],
                    payload["store"]["store_id"],
                    payload["order_date"],
                    payload["expected_delivery"],
                )
                name, status = f"FE-{order_id:06d}", "created"
            for x in payload["lines"]:
                db.execute(
                    "INSERT INTO order_lines(order_id, sku_id, product_qty, price_unit, "
                    "date_planned, name) VALUES (?,?,?,?,?,?)",
                    (
                        order_id,
                        x["sku_id"],
                        x["quantity"],
                        x["unit_price"],
                        payload["expected_delivery"],
                        x["name"],
                    ),
                )
            answer = {"erp_po_number": name, "status": status}
            db.execute(
                "INSERT INTO webhook_keys(key, body_sha, status, response) VALUES (?,?,?,?)",
                (key, sha, 201, json.dumps(answer)),
            )
            return 201, answer

    @staticmethod
    def _new_order(
        db: sqlite3.Connection,
        protocol: str,
        origin: str | None,
        po_id: int | None,
        revision: int | None,
        partner_id: int | None,
        supplier_id: str | None,
        store_id: str | None,
        date_order: str,
        date_planned: str,
    ) -> int:
        cur = db.execute(
            "INSERT INTO orders(protocol, origin, po_id, revision, partner_id, supplier_id, "
            "store_id, state, date_order, date_planned, created_at) VALUES "
            "(?,?,?,?,?,?,?,'draft',?,?,?)",
            (
                protocol,
                origin,
                po_id,
                revision,
                partner_id,
                supplier_id,
                store_id,
                date_order,
                date_planned,
                time.time(),
            ),
        )
        order_id = int(cur.lastrowid or 0)
        name = f"FE-{order_id:06d}" if protocol == "webhook" else f"P{order_id:05d}"
        db.execute("UPDATE orders SET name=? WHERE id=?", (name, order_id))
        return order_id

    # Admin (what the test or the demo does in the ERP) -------------------------------------
    def seed(self, data: dict[str, Any]) -> dict[str, int]:
        with self._tx() as db:
            for p in data.get("partners", []):
                db.execute(
                    "INSERT OR IGNORE INTO partners(ref, name) VALUES (?,?)",
                    (p["ref"], p.get("name") or p["ref"]),
                )
            for p in data.get("products", []):
                db.execute(
                    "INSERT OR IGNORE INTO products(default_code, name) VALUES (?,?)",
                    (p["default_code"], p.get("name") or p["default_code"]),
                )
            for s in data.get("stock", []):
                db.execute(
                    "INSERT OR IGNORE INTO stock(store_id, sku_id, on_hand) VALUES (?,?,?)",
                    (s["store_id"], s["sku_id"], float(s["on_hand"])),
                )
        return {k: len(data.get(k, [])) for k in ("partners", "products", "stock")}

    def orders(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for o in self.db.execute("SELECT * FROM orders ORDER BY id").fetchall():
                lines = self.db.execute(
                    "SELECT sku_id, product_qty, price_unit, qty_received FROM order_lines "
                    "WHERE order_id=? ORDER BY sku_id",
                    (o["id"],),
                ).fetchall()
                out.append({**dict(o), "lines": [dict(x) for x in lines]})
            return out

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.db.execute("SELECT * FROM requests ORDER BY id")]

    def confirm(self) -> list[dict[str, Any]]:
        """The supplier confirms every draft order as ordered: acknowledgement rows in
        Replen's contract (po_id, erp_po_number, sku_id, confirmed_quantity, …)."""
        now = datetime.now(UTC).isoformat()
        acks = []
        with self._tx() as db:
            drafts = db.execute(
                "SELECT * FROM orders WHERE state='draft' AND po_id IS NOT NULL"
            ).fetchall()
            for o in drafts:
                db.execute("UPDATE orders SET state='purchase' WHERE id=?", (o["id"],))
                lines = db.execute("SELECT * FROM order_lines WHERE order_id=?", (o["id"],))
                for x in lines.fetchall():
                    acks.append(
                        {
                            "po_id": o["po_id"],
                            "erp_po_number": o["name"],
                            "sku_id": x["sku_id"],
                            "confirmed_quantity": x["product_qty"],
                            "confirmed_delivery": str(o["date_planned"])[:10],
                            "acknowledged_at": now,
                        }
                    )
        return acks

    def receive(self, delays: list[int], seed: int = 0) -> list[dict[str, Any]]:
        """Goods arrive for every confirmed order: at its planned date plus one of
        ``delays`` days (picked per order, seeded); stock grows; receipt rows returned."""
        import random

        rng = random.Random(seed)
        receipts = []
        with self._tx() as db:
            for o in db.execute("SELECT * FROM orders WHERE state='purchase'").fetchall():
                planned = date.fromisoformat(str(o["date_planned"])[:10])
                when = datetime.combine(
                    planned + timedelta(days=rng.choice(delays or [0])), datetime.min.time(), UTC
                ) + timedelta(hours=10)
                when = min(when, datetime.now(UTC) - timedelta(seconds=1))  # not in the future
                lines = db.execute("SELECT * FROM order_lines WHERE order_id=?", (o["id"],))
                for x in lines.fetchall():
                    qty = x["product_qty"] - x["qty_received"]
                    if qty <= 0:
                        continue
                    db.execute(
                        "UPDATE order_lines SET qty_received=product_qty WHERE id=?", (x["id"],)
                    )
                    db.execute(
                        "INSERT INTO stock(store_id, sku_id, on_hand) VALUES (?,?,?) ON CONFLICT"
                        "(store_id, sku_id) DO UPDATE SET on_hand = on_hand + excluded.on_hand",
                        (o["store_id"], x["sku_id"], qty),
                    )
                    receipts.append(
                        {
                            "receipt_id": f"GR-{o['id']:06d}",
                            "po_id": o["po_id"],
                            "store_id": o["store_id"],
                            "sku_id": x["sku_id"],
                            "quantity": qty,
                            "received_at": when.isoformat(),
                        }
                    )
                db.execute("UPDATE orders SET state='done' WHERE id=?", (o["id"],))
        return receipts

    def stock(self, as_of: str) -> list[dict[str, Any]]:
        """Stock positions as the ERP exports them: on hand, and open orders on order."""
        with self.lock:
            open_qty: dict[tuple[str, str], float] = {}
            for r in self.db.execute(
                "SELECT o.store_id, l.sku_id, SUM(l.product_qty - l.qty_received) AS q FROM "
                "orders o JOIN order_lines l ON l.order_id=o.id WHERE o.state IN "
                "('draft','purchase') AND o.store_id IS NOT NULL GROUP BY o.store_id, l.sku_id"
            ):
                open_qty[(r["store_id"], r["sku_id"])] = float(r["q"])
            rows = [dict(r) for r in self.db.execute("SELECT * FROM stock ORDER BY 1, 2")]
        return [
            {
                **r,
                "as_of": as_of,
                "on_order": open_qty.get((r["store_id"], r["sku_id"]), 0.0),
                "in_transit": 0.0,
                "backorders": 0.0,
            }
            for r in rows
        ]
