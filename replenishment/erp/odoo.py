"""Odoo adapter: a draft ``purchase.order`` per Replen PO over Odoo's external JSON-RPC API.

Protocol (``POST <url>/jsonrpc``, JSON-RPC 2.0, method ``call``): ``common.login(db, login,
key)`` gives the user id; ``object.execute_kw(db, uid, key, model, method, args, kwargs)``
calls a model method. Odoo has no idempotency keys, so each delivery first searches
``purchase.order`` by ``origin = REPLEN-<po_id>``: found with the same lines, it was
already created (an answer lost after Odoo committed); found as a draft with other lines,
it is a revision, written in place; not found, it is created. Suppliers are ``res.partner``
records with ``ref`` = supplier_id, products ``product.product`` with ``default_code`` =
sku_id. Errors Odoo reports (bad credentials, validation, a missing record) are permanent;
others (a lost connection, a serialization failure) are tried again.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import httpx

from replenishment.erp.adapters import (
    Accepted,
    DeliveryFailed,
    classify_response,
    transport_failure,
)

__all__ = ["OdooAdapter"]

# Exceptions Odoo raises when the request itself is wrong: retrying cannot help.
_PERMANENT = (
    "AccessDenied",
    "AccessError",
    "UserError",
    "ValidationError",
    "MissingError",
    "ValueError",
    "KeyError",
)
_EDITABLE = ("draft", "sent")


class OdooAdapter:
    name = "odoo"
    commits_in_erp = True

    def __init__(
        self,
        url: str,
        db: str,
        user: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        max_connections: int = 8,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/jsonrpc"
        self.db, self.user, self.api_key = db, user, api_key
        self.client = client or httpx.Client(
            timeout=timeout, limits=httpx.Limits(max_connections=max_connections)
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._uid: int | None = None
        self._partners: dict[str, int] = {}
        self._products: dict[str, int] = {}

    # JSON-RPC ------------------------------------------------------------------------------
    def _call(self, service: str, method: str, *args: Any) -> Any:
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": list(args)},
            "id": next(self._ids),
        }
        what = f"Odoo {service}.{method}" + (f" {args[3]}.{args[4]}" if len(args) > 4 else "")
        try:
            response = self.client.post(self.endpoint, json=body)
        except httpx.HTTPError as exc:
            raise transport_failure(exc, what) from None
        classify_response(response, what)
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryFailed(f"{what}: the answer is not JSON: {response.text[:200]}") from None
        error = answer.get("error")
        if error:
            data = error.get("data") or {}
            name = str(data.get("name") or "")
            message = str(data.get("message") or error.get("message") or error)[:300]
            permanent = name.rsplit(".", 1)[-1] in _PERMANENT
            raise DeliveryFailed(f"{what} failed: {name}: {message}", permanent=permanent)
        return answer.get("result")

    def _uid_(self) -> int:
        with self._lock:
            if self._uid is None:
                uid = self._call("common", "login", self.db, self.user, self.api_key)
                if not uid:
                    raise DeliveryFailed(
                        f"Odoo refused the login of {self.user!r} on database {self.db!r}; "
                        "check REPLEN_ERP_ODOO_USER and REPLEN_ERP_ODOO_API_KEY",
                        permanent=True,
                    )
                self._uid = int(uid)
            return self._uid

    def execute(
        self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None
    ) -> Any:
        uid = self._uid_()
        return self._call(
            "object", "execute_kw", self.db, uid, self.api_key, model, method, args, kwargs or {}
        )

    # Master data ---------------------------------------------------------------------------
    def _partner(self, supplier_id: str) -> int:
        if supplier_id not in self._partners:
            found = self.execute(
                "res.partner", "search", [[["ref", "=", supplier_id]]], {"limit": 2}
            )
            if not found:
                raise DeliveryFailed(
                    f"Odoo has no vendor (res.partner) with ref={supplier_id!r}; "
                    "create it or set its Internal Reference",
                    permanent=True,
                )
            self._partners[supplier_id] = int(found[0])
        return self._partners[supplier_id]

    def _product_ids(self, skus: list[str]) -> dict[str, int]:
        missing = [s for s in skus if s not in self._products]
        if missing:
            rows = self.execute(
                "product.product",
                "search_read",
                [[["default_code", "in", missing]]],
                {"fields": ["id", "default_code"]},
            )
            for row in rows:
                self._products.setdefault(str(row["default_code"]), int(row["id"]))
        unknown = [s for s in skus if s not in self._products]
        if unknown:
            raise DeliveryFailed(
                f"Odoo has no product with default_code in {unknown}; create them "
                "(Internal Reference = sku_id)",
                permanent=True,
            )
        return {s: self._products[s] for s in skus}

    # Delivery ------------------------------------------------------------------------------
    def send(self, payload: dict[str, Any], key: str) -> Accepted:
        origin = payload["origin"]
        partner = self._partner(payload["supplier"]["supplier_id"])
        products = self._product_ids([line["sku_id"] for line in payload["lines"]])
        planned = f"{payload['expected_delivery']} 12:00:00"
        wanted = {products[x["sku_id"]]: float(x["quantity"]) for x in payload["lines"]}
        commands: list[Any] = [
            [
                0,
                0,
                {
                    "product_id": products[x["sku_id"]],
                    "product_qty": float(x["quantity"]),
                    "price_unit": float(x["unit_price"]),
                    "date_planned": planned,
                    "name": x["name"] or x["sku_id"],
                },
            ]
            for x in payload["lines"]
        ]
        found = self.execute(
            "purchase.order",
            "search_read",
            [[["origin", "=", origin]]],
            {"fields": ["id", "name", "state"], "limit": 2},
        )
        if len(found) > 1:
            raise DeliveryFailed(
                f"Odoo holds {len(found)} orders with origin {origin}; keep one", permanent=True
            )
        if not found:
            order_id = self.execute(
                "purchase.order",
                "create",
                [
                    {
                        "partner_id": partner,
                        "origin": origin,
                        "date_order": f"{payload['order_date']} 08:00:00",
                        "date_planned": planned,
                        "order_line": commands,
                    }
                ],
            )
            order_id = order_id[0] if isinstance(order_id, list) else order_id
            names = self.execute("purchase.order", "read", [[int(order_id)]], {"fields": ["name"]})
            return Accepted(erp_ref=str(names[0]["name"]) if names else str(order_id))
        order = found[0]
        lines = self.execute(
            "purchase.order.line",
            "search_read",
            [[["order_id", "=", order["id"]]]],
            {"fields": ["product_id", "product_qty"]},
        )
        have = {_many2one(x["product_id"]): float(x["product_qty"]) for x in lines}
        if have == wanted:
            return Accepted(erp_ref=str(order["name"]))
        if order["state"] not in _EDITABLE:
            raise DeliveryFailed(
                f"Odoo order {order['name']} ({origin}) is {order['state']}; revision "
                f"{payload['revision']} cannot change it: edit it in Odoo",
                permanent=True,
            )
        self.execute(
            "purchase.order",
            "write",
            [[order["id"]], {"order_line": [[5, 0, 0], *commands], "date_planned": planned}],
        )
        return Accepted(erp_ref=str(order["name"]))

    def close(self) -> None:
        self.client.close()


def _many2one(value: Any) -> int:
    """Odoo reads a many2one as ``[id, display_name]`` (or False)."""
    return int(value[0]) if isinstance(value, list | tuple) else int(value)
