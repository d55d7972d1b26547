"""The fake ERP's HTTP server: the webhook protocol, Odoo's /jsonrpc subset, admin routes, and
injected faults (answer dropped after commit, 500, 429 with Retry-After, slow answer, reset)."""

from __future__ import annotations

import contextlib
import hmac
import json
import random
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from replen.fake_erp.store import ErpBooks, OdooFault
from replenishment.erp.adapters import sign
from replenishment.erp.payload import validate_payload

__all__ = ["FakeErpServer", "Faults"]

WEBHOOK_PATH = "/webhook/purchase-orders"


@dataclass
class Faults:
    """Share of requests that get each fault (drawn once per request, in this order)."""

    reset: float = 0.0  # connection reset before anything is done
    error: float = 0.0  # HTTP 500, nothing done
    throttle: float = 0.0  # HTTP 429 with Retry-After, nothing done
    slow: float = 0.0  # done and committed, answered after slow_seconds (past the timeout)
    drop: float = 0.0  # done and committed, connection closed without an answer
    retry_after: int = 1
    slow_seconds: float = 2.0
    seed: int = 1
    reject_skus: list[str] = field(default_factory=list)  # webhook: 422 for these SKUs

    def draw(self, rng: random.Random) -> str:
        u = rng.random()
        for name in ("reset", "error", "throttle", "slow", "drop"):
            share = float(getattr(self, name))
            if u < share:
                return name
            u -= share
        return "none"


class _Dropped(Exception):
    """The handler closed the connection on purpose."""


class FakeErpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        books: ErpBooks,
        *,
        secret: str | None = None,
        odoo: tuple[str, str, str] | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.books = books
        self.secret = secret
        self.odoo = odoo  # (db, login, api key)
        self.faults = Faults()
        self.rng = random.Random(1)
        self.rng_lock = threading.Lock()

    def set_faults(self, faults: Faults) -> None:
        with self.rng_lock:
            self.faults = faults
            self.rng = random.Random(faults.seed)

    def draw(self) -> str:
        with self.rng_lock:
            return self.faults.draw(self.rng)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeErpServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def handle(self) -> None:
        try:
            super().handle()
        except (_Dropped, OSError):
            self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    # Plumbing ------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _close(self, reset: bool) -> None:
        if reset:  # RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        raise _Dropped

    def _before(self, fault: str, key: str | None) -> bool:
        """Faults that strike before the work; True when the request was answered."""
        if fault == "reset":
            self.server.books.log(self.path, key, fault, 0)
            self._close(reset=True)
        if fault == "error":
            self.server.books.log(self.path, key, fault, 500)
            self._answer(500, {"error": "injected failure"})
            return True
        if fault == "throttle":
            wait = str(self.server.faults.retry_after)
            self.server.books.log(self.path, key, fault, 429)
            self._answer(429, {"error": "slow down"}, {"Retry-After": wait})
            return True
        return False

    def _after(self, fault: str, key: str | None, status: int, data: Any) -> None:
        """Answer work that is done and committed, unless a fault loses the answer."""
        self.server.books.log(self.path, key, fault, status)
        if fault == "drop":
            self._close(reset=False)
        if fault == "slow":
            time.sleep(self.server.faults.slow_seconds)
        self._answer(status, data)

    # Routes --------------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlparse(self.path)
        books = self.server.books
        if url.path == "/_admin/orders":
            self._answer(200, {"orders": books.orders()})
        elif url.path == "/_admin/requests":
            self._answer(200, {"requests": books.requests()})
        elif url.path == "/_admin/faults":
            self._answer(200, asdict(self.server.faults))
        elif url.path == "/_admin/stock":
            as_of = parse_qs(url.query).get("as_of", [""])[0]
            self._answer(200, {"positions": books.stock(as_of)})
        elif url.path == "/healthz":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": f"no route {url.path}"})

    def do_POST(self) -> None:
        body = self._body()
        path = urlparse(self.path).path
        if path.startswith("/_admin/"):
            self._admin(path, json.loads(body or b"{}"))
        elif path == WEBHOOK_PATH:
            self._webhook(body)
        elif path == "/jsonrpc":
            self._jsonrpc(body)
        else:
            self._answer(404, {"error": f"no route {path}"})

    def _admin(self, path: str, data: dict[str, Any]) -> None:
        books = self.server.books
        if path == "/_admin/faults":
            self.server.set_faults(Faults(**data))
            self._answer(200, asdict(self.server.faults))
        elif path == "/_admin/seed":
            self._answer(200, books.seed(data))
        elif path == "/_admin/confirm":
            self._answer(200, {"acks": books.confirm()})
        elif path == "/_admin/receive":
            self._answer(
                200, {"receipts": books.receive(data.get("delays", [0]), data.get("seed", 0))}
            )
        else:
            self._answer(404, {"error": f"no route {path}"})

    def _webhook(self, body: bytes) -> None:
        key = self.headers.get("Idempotency-Key")
        fault = self.server.draw()
        if self._before(fault, key):
            return
        secret = self.server.secret
        if secret is not None:
            stamp = self.headers.get("X-Replen-Timestamp", "")
            given = self.headers.get("X-Replen-Signature", "")
            if not hmac.compare_digest(given, sign(secret, stamp, body)):
                self._after("none", key, 401, {"error": "bad or missing X-Replen-Signature"})
                return
        if not key:
            self._after("none", key, 400, {"error": "Idempotency-Key header is required"})
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._after("none", key, 400, {"error": "body is not JSON"})
            return
        problems = validate_payload(payload)
        refused = [
            x["sku_id"]
            for x in payload.get("lines", [])
            if x.get("sku_id") in set(self.server.faults.reject_skus)
        ]
        if problems or refused:
            detail = problems or [f"unknown article(s) {refused}"]
            self._after("none", key, 422, {"error": "invalid purchase order", "detail": detail})
            return
        status, data = self.server.books.webhook_order(key, body, payload)
        self._after(fault, key, status, data)

    def _jsonrpc(self, body: bytes) -> None:
        try:
            request = json.loads(body)
            params = request["params"]
            service, method, args = params["service"], params["method"], params["args"]
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "not a JSON-RPC call"})
            return
        rid = request.get("id")
        fault = self.server.draw() if service == "object" else "none"
        tag = f"{args[3]}.{args[4]}" if service == "object" and len(args) > 4 else method
        if self._before(fault, tag):
            return
        try:
            result = self._odoo(service, method, args)
            answer: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "result": result}
        except OdooFault as exc:
            answer = {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {
                    "code": 200,
                    "message": "Odoo Server Error",
                    "data": {
                        "name": exc.name,
                        "debug": "",
                        "message": exc.message,
                        "arguments": [exc.message],
                        "context": {},
                    },
                },
            }
        self._after(fault, tag, 200, answer)

    def _odoo(self, service: str, method: str, args: list[Any]) -> Any:
        db, login, key = self.server.odoo or ("", "", "")
        if service == "common":
            if method == "version":
                return {"server_version": "17.0+fake", "protocol_version": 1}
            if method in ("login", "authenticate"):
                ok = self.server.odoo is not None and list(args[:3]) == [db, login, key]
                return 2 if ok else False
            raise OdooFault("builtins.KeyError", method)
        if service != "object" or method != "execute_kw":
            raise OdooFault("builtins.KeyError", f"{service}.{method}")
        if self.server.odoo is None or args[0] != db or args[1] != 2 or args[2] != key:
            raise OdooFault("odoo.exceptions.AccessDenied", "Access Denied")
        model, model_method = args[3], args[4]
        positional = args[5] if len(args) > 5 else []
        kwargs = args[6] if len(args) > 6 else {}
        return self.server.books.odoo(model, model_method, positional, kwargs)
