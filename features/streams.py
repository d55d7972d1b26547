"""POS event streams: a small source interface, and Redis Streams with a consumer group.

A source hands out messages and takes acknowledgements; the consumer acknowledges a
message only after the lake committed its event, and the lake is idempotent by
``event_id``, so a message delivered again after a crash is a duplicate, never a second
sale: effectively once. The only module that imports redis. A Kafka source would map
``read`` to ``poll`` and ``ack`` to committing offsets.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from features.events import EVENT_SCHEMA
from kernel.errors import StorageError

__all__ = ["Message", "PosSource", "RedisStreamSource", "messages_frame"]


@dataclass(frozen=True)
class Message:
    """One POS event as delivered: its position in the source and its fields (text)."""

    id: str
    fields: dict[str, str]


class PosSource(Protocol):
    """Where streamed POS events come from; at-least-once delivery until acknowledged."""

    def read(self, max_messages: int, block_ms: int) -> list[Message]:
        """Up to ``max_messages``, waiting at most ``block_ms`` for the first one."""
        ...

    def ack(self, messages: Sequence[Message]) -> None:
        """These messages are committed in the lake: never deliver them again."""
        ...

    def pending(self) -> int:
        """Messages delivered to the group and not acknowledged yet."""
        ...


class RedisStreamSource:
    """A consumer in a Redis Streams consumer group (created on first use).

    On start it first re-reads its own unacknowledged entries (a previous run of the same
    consumer name died between commit and acknowledgement), then claims entries that
    another consumer left unacknowledged for ``claim_idle_ms``, then reads new ones.
    One event per entry, its fields named as the POS contract (``event_id``, ``store_id``,
    ``sku_id``, ``sold_at``, ``quantity``, ``unit_price``, ...).
    """

    def __init__(
        self,
        url: str,
        stream: str,
        group: str,
        consumer: str | None = None,
        *,
        claim_idle_ms: int = 60_000,
    ) -> None:
        import redis

        self.client: Any = redis.Redis.from_url(url, decode_responses=True)
        self.stream, self.group = stream, group
        self.consumer = consumer or socket.gethostname()
        self.claim_idle_ms = claim_idle_ms
        self._own_backlog = True
        try:
            self.client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except redis.ConnectionError as exc:
            raise StorageError(
                f"cannot reach Redis at {_safe(url)}: {exc}",
                hint="start Redis or point REPLEN_REDIS_URL at it",
            ) from None

    def read(self, max_messages: int, block_ms: int) -> list[Message]:
        if self._own_backlog:
            mine = self._read("0", max_messages, None)
            if mine:
                return mine
            self._own_backlog = False
        claimed = self.client.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, "0-0", count=max_messages
        )[1]  # [next start, entries, deleted ids (Redis 7)]
        if claimed:
            return [Message(i, f) for i, f in claimed if f is not None]
        return self._read(">", max_messages, block_ms)

    def _read(self, start: str, count: int, block_ms: int | None) -> list[Message]:
        answer = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block_ms
        )
        if not answer:
            return []
        return [Message(i, f) for i, f in answer[0][1] if f is not None]

    def ack(self, messages: Sequence[Message]) -> None:
        if messages:
            self.client.xack(self.stream, self.group, *[m.id for m in messages])

    def pending(self) -> int:
        return int(self.client.xpending(self.stream, self.group)["pending"])


def messages_frame(messages: Sequence[Message]) -> pl.DataFrame:
    """Messages → contract columns as text (unknown fields ignored) and ``_json``, the
    message as received (kept in quarantine when a line is rejected)."""
    columns = {c: [m.fields.get(c) for m in messages] for c in EVENT_SCHEMA}
    return pl.DataFrame(columns, schema={c: pl.String for c in EVENT_SCHEMA}).with_columns(
        pl.Series("_json", [json.dumps(m.fields) for m in messages], dtype=pl.String)
    )


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@") if parts.password else url
