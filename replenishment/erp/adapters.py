"""ERP adapters: send one PO version, say whether the ERP accepted it, or why not and whether
trying again can help. HTTP JSON webhook (HMAC-signed) and file drop; Odoo in ``odoo.py``."""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

__all__ = [
    "Accepted",
    "Adapter",
    "DeliveryFailed",
    "FileAdapter",
    "WebhookAdapter",
    "canonical_json",
    "classify_response",
    "retry_after_seconds",
    "sign",
]

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Accepted:
    """The ERP holds this PO version; ``erp_ref`` is its own order number when it said."""

    erp_ref: str | None = None


class DeliveryFailed(Exception):
    """The ERP did not accept the PO version. ``permanent``: sending it again cannot help (a
    4xx, bad credentials, an unknown product): it goes to the dead letters with ``reason``.
    Otherwise it is tried again later, not before ``retry_after`` seconds if the ERP said."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.status = status


class Adapter(Protocol):
    """Sends a PO document; raises :class:`DeliveryFailed` when the ERP did not accept it.

    ``commits_in_erp``: acceptance means the ERP itself holds the order (so its stock
    positions count it from then on); a file drop only hands it over."""

    name: str
    commits_in_erp: bool

    def send(self, payload: dict[str, Any], key: str) -> Accepted: ...

    def close(self) -> None: ...


def canonical_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` HMAC of ``timestamp + "." + body``: the body cannot be altered or
    replayed later with another timestamp without the receiver noticing."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_response(response: httpx.Response, what: str) -> None:
    """Raise :class:`DeliveryFailed` for a non-2xx answer: temporary (408, 425, 429, 5xx;
    honouring ``Retry-After``) or permanent (any other 4xx)."""
    code = response.status_code
    if 200 <= code < 300:
        return
    body = response.text[:300].replace("\n", " ")
    reason = f"{what} answered HTTP {code}: {body}"
    if code in RETRYABLE_STATUS or code >= 500:
        raise DeliveryFailed(
            reason,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            status=code,
        )
    raise DeliveryFailed(reason, permanent=True, status=code)


def transport_failure(exc: httpx.HTTPError, what: str) -> DeliveryFailed:
    """A request that got no answer (timeout, reset, refused): the ERP may or may not have
    committed it, so it is tried again with the same idempotency key."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return DeliveryFailed(f"{what} {kind}: {type(exc).__name__}: {exc}"[:500])


class WebhookAdapter:
    """POST the document as JSON to ``url`` with ``Idempotency-Key`` and an HMAC signature.

    2xx = accepted (``erp_po_number`` in a JSON answer becomes the ERP reference)."""

    name = "webhook"
    commits_in_erp = True

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        max_connections: int = 8,
    ) -> None:
        self.url = url
        self.secret = secret
        self.client = client or httpx.Client(
            timeout=timeout, limits=httpx.Limits(max_connections=max_connections)
        )

    def send(self, payload: dict[str, Any], key: str) -> Accepted:
        body = canonical_json(payload)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-Replen-Schema": "purchase_order/v1",
            "X-Replen-Timestamp": stamp,
            "X-Replen-Signature": sign(self.secret, stamp, body),
        }
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_failure(exc, f"POST {self.url}") from None
        classify_response(response, f"POST {self.url}")
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        ref = answer.get("erp_po_number") if isinstance(answer, dict) else None
        return Accepted(erp_ref=str(ref) if ref else None)

    def close(self) -> None:
        self.client.close()


class FileAdapter:
    """One JSON file per PO version in ``directory``, named by its idempotency key.

    Written to a temporary file, fsynced, then hard-linked to its final name, which fails
    if the name exists: an earlier file is never overwritten. A file already there with the
    same content is a resend after a crash (accepted); with other content, a conflict."""

    name = "file"
    commits_in_erp = False

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def send(self, payload: dict[str, Any], key: str) -> Accepted:
        body = json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
        target = self.directory / f"{key}.json"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{key}.{os.getpid()}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, target)
            except FileExistsError:
                if target.read_bytes() != body:
                    raise DeliveryFailed(
                        f"{target} exists with other content; it is never overwritten "
                        "(move it away, then retry)",
                        permanent=True,
                    ) from None
            finally:
                tmp.unlink(missing_ok=True)
            _fsync_dir(self.directory)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write {target}: {exc}") from None
        return Accepted(erp_ref=target.name)

    def close(self) -> None:
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
