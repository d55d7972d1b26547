"""The fake ERP's Odoo face: the ORM methods of res.partner, product.product, purchase.order
and purchase.order.line that Replen's Odoo adapter calls, over the fake's own books."""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ["OdooFault", "OdooModels"]


class OdooFault(Exception):
    """An error the fake Odoo reports in a JSON-RPC error object."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class OdooModels:
    """Mixed into the books: ``odoo(model, method, args, kwargs)`` as ``execute_kw`` does."""

    def _tx(self) -> Any:  # provided by the books
        raise NotImplementedError

    @staticmethod
    def _new_order(*args: Any) -> int:  # provided by the books
        raise NotImplementedError

    # Odoo ----------------------------------------------------------------------------------
    def odoo(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """The subset of Odoo's ORM methods the Replen adapter calls."""
        handler = getattr(self, f"_odoo_{model.replace('.', '_')}", None)
        if handler is None:
            raise OdooFault("builtins.KeyError", repr(model))
        with self._tx() as db:
            return handler(db, method, args, kwargs)

    def _odoo_res_partner(self, db: sqlite3.Connection, method: str, args: list, kw: dict) -> Any:
        rows = self._search(db, "partners", {"ref": "ref", "id": "id"}, args[0] if args else [])
        if method == "search":
            return [r["id"] for r in rows][: kw.get("limit") or None]
        if method == "search_read":
            return [{"id": r["id"], "ref": r["ref"], "name": r["name"]} for r in rows]
        raise OdooFault("odoo.exceptions.UserError", f"res.partner.{method} is not available")

    def _odoo_product_product(
        self, db: sqlite3.Connection, method: str, args: list, kw: dict
    ) -> Any:
        rows = self._search(
            db, "products", {"default_code": "default_code", "id": "id"}, args[0] if args else []
        )
        if method == "search":
            return [r["id"] for r in rows]
        if method == "search_read":
            return [
                {"id": r["id"], "default_code": r["default_code"], "name": r["name"]} for r in rows
            ]
        raise OdooFault("odoo.exceptions.UserError", f"product.product.{method} is not available")

    def _odoo_purchase_order(
        self, db: sqlite3.Connection, method: str, args: list, kw: dict
    ) -> Any:
        fields = {"origin": "origin", "id": "id", "name": "name", "state": "state"}
        if method in ("search", "search_read"):
            rows = self._search(
                db, "orders", fields, args[0] if args else [], extra="protocol='odoo'"
            )
            rows = rows[: kw.get("limit") or None]
            if method == "search":
                return [r["id"] for r in rows]
            return [self._po_record(db, r, kw.get("fields")) for r in rows]
        if method == "read":
            ids = [int(i) for i in args[0]]
            rows = [db.execute("SELECT * FROM orders WHERE id=?", (i,)).fetchone() for i in ids]
            if any(r is None for r in rows):
                raise OdooFault("odoo.exceptions.MissingError", f"records {ids} do not exist")
            return [
                self._po_record(db, r, kw.get("fields") or (args[1] if len(args) > 1 else None))
                for r in rows
            ]
        if method == "create":
            values = args[0][0] if isinstance(args[0], list) else args[0]
            partner = db.execute(
                "SELECT * FROM partners WHERE id=?", (values.get("partner_id"),)
            ).fetchone()
            if partner is None:
                raise OdooFault("odoo.exceptions.ValidationError", "partner_id is required")
            origin = values.get("origin")
            po_id = int(origin.split("-")[-1]) if origin and origin.startswith("REPLEN-") else None
            order_id = self._new_order(
                db,
                "odoo",
                origin,
                po_id,
                None,
                partner["id"],
                partner["ref"],
                None,
                values.get("date_order", ""),
                values.get("date_planned", ""),
            )
            self._order_lines(db, order_id, values.get("order_line", []))
            return [order_id] if isinstance(args[0], list) else order_id
        if method == "write":
            ids, values = [int(i) for i in args[0]], args[1]
            for order_id in ids:
                row = db.execute("SELECT state FROM orders WHERE id=?", (order_id,)).fetchone()
                if row is None:
                    raise OdooFault("odoo.exceptions.MissingError", f"record {order_id} is gone")
                if row["state"] not in ("draft", "sent"):
                    raise OdooFault("odoo.exceptions.UserError", "a confirmed order is locked")
                self._order_lines(db, order_id, values.get("order_line", []))
                db.execute("UPDATE orders SET versions=versions+1 WHERE id=?", (order_id,))
            return True
        raise OdooFault("odoo.exceptions.UserError", f"purchase.order.{method} is not available")

    def _odoo_purchase_order_line(
        self, db: sqlite3.Connection, method: str, args: list, kw: dict
    ) -> Any:
        if method != "search_read":
            raise OdooFault("odoo.exceptions.UserError", f"purchase.order.line.{method}")
        rows = self._search(
            db, "order_lines", {"order_id": "order_id", "id": "id"}, args[0] if args else []
        )
        out = []
        for r in rows:
            product = db.execute("SELECT * FROM products WHERE id=?", (r["product_id"],)).fetchone()
            out.append(
                {
                    "id": r["id"],
                    "product_id": [r["product_id"], product["name"] if product else ""],
                    "product_qty": r["product_qty"],
                    "price_unit": r["price_unit"],
                    "qty_received": r["qty_received"],
                }
            )
        return out

    @staticmethod
    def _order_lines(db: sqlite3.Connection, order_id: int, commands: list) -> None:
        """Odoo x2many commands: [0, 0, values] adds a line, [5, 0, 0] removes them all."""
        for command in commands:
            code = command[0]
            if code == 5:
                db.execute("DELETE FROM order_lines WHERE order_id=?", (order_id,))
            elif code == 0:
                v = command[2]
                product = db.execute(
                    "SELECT * FROM products WHERE id=?", (v.get("product_id"),)
                ).fetchone()
                if product is None:
                    raise OdooFault("odoo.exceptions.ValidationError", "product_id is required")
                db.execute(
                    "INSERT INTO order_lines(order_id, product_id, sku_id, product_qty, "
                    "price_unit, date_planned, name) VALUES (?,?,?,?,?,?,?)",
                    (
                        order_id,
                        product["id"],
                        product["default_code"],
                        v.get("product_qty", 0),
                        v.get("price_unit", 0),
                        v.get("date_planned"),
                        v.get("name"),
                    ),
                )
            else:
                raise OdooFault("odoo.exceptions.UserError", f"command {code} is not supported")

    def _po_record(self, db: sqlite3.Connection, row: sqlite3.Row, fields: list | None) -> dict:
        lines = [
            r["id"] for r in db.execute("SELECT id FROM order_lines WHERE order_id=?", (row["id"],))
        ]
        record = {
            "id": row["id"],
            "name": row["name"],
            "origin": row["origin"],
            "state": row["state"],
            "partner_id": [row["partner_id"], row["supplier_id"]],
            "date_order": row["date_order"],
            "date_planned": row["date_planned"],
            "order_line": lines,
        }
        return {k: v for k, v in record.items() if not fields or k in fields or k == "id"}

    @staticmethod
    def _search(
        db: sqlite3.Connection,
        table: str,
        columns: dict[str, str],
        domain: list,
        extra: str | None = None,
    ) -> list[sqlite3.Row]:
        """A domain of ``[field, '=' | 'in' | '!=', value]`` terms, all of which must hold."""
        where, params = ([extra] if extra else []), []
        for term in domain:
            if not isinstance(term, list | tuple) or len(term) != 3:
                raise OdooFault("builtins.ValueError", f"unsupported domain term {term!r}")
            name, op, value = term
            if name not in columns:
                raise OdooFault("builtins.ValueError", f"Invalid field {name!r} in domain")
            if op == "=":
                where.append(f"{columns[name]} = ?")
                params.append(value)
            elif op == "!=":
                where.append(f"{columns[name]} != ?")
                params.append(value)
            elif op == "in":
                values = list(value) or [None]
                where.append(f"{columns[name]} IN ({','.join('?' * len(values))})")
                params += values
            else:
                raise OdooFault("builtins.ValueError", f"operator {op!r} is not supported")
        sql = f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(where)}" if where else "")
        return db.execute(sql + " ORDER BY id", params).fetchall()
