"""Hostile-input-proof reading of JSON and NDJSON bodies into lines.

Strict UTF-8 (a BOM is dropped, invalid bytes → 400), NDJSON split on ``\\n`` only (never
on U+2028 and friends), a JSON array read element by element so that counting stops at
the line cap, nesting bounded by the parser (deeper → 400, never a 500), and every line
that is not a flat JSON object kept as a per-line rejection with its rule. Pure and
synchronous: the routes run it in a worker thread, off the event loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from replen.api.problems import MalformedBody, PayloadTooLarge

__all__ = ["ParsedBody", "parse_body"]

_BOM = "\ufeff"
_WS = " \t\r\n"
_KEEP = 10_000  # characters of a broken line kept in the quarantine


@dataclass
class ParsedBody:
    """Lines that are flat JSON objects (with their place and text as received) and the
    lines that are not, as quarantine rejects (``line, rule, value, message, payload``)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.rows) + len(self.rejects)


def parse_body(body: bytes | bytearray, ndjson: bool, max_lines: int) -> ParsedBody:
    """Parse a JSON array (``ndjson`` False) or NDJSON body; raises 400/413 problems for a
    body that cannot be split into lines or has more than ``max_lines`` lines.

    A ``bytearray`` body is emptied once decoded, so that the bytes and the text are not
    both held while the lines are read.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(
            f"the body is not valid UTF-8 (byte {exc.start}: {exc.reason})",
            field="body",
            value=repr(bytes(body[exc.start : exc.start + 8])),
            rule="body.utf8",
        ) from None
    if isinstance(body, bytearray):
        del body[:]
    text = text.removeprefix(_BOM)
    if ndjson:
        return _ndjson(text, max_lines)
    return _array(text, max_lines)


def _ndjson(text: str, max_lines: int) -> ParsedBody:
    if text.rstrip(_WS).count("\n") >= max_lines:  # cheap: no line is split yet
        raise _too_many(max_lines)
    out = ParsedBody()
    for i, line in enumerate(text.split("\n")):
        line = line.strip(_WS)
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            out.rejects.append(_reject(i, "line.json", line, f"not JSON: {exc}"))
            continue
        except RecursionError:
            out.rejects.append(_reject(i, "line.depth", line, "nested too deep"))
            continue
        _keep(out, i, value, line)
    return out


def _array(text: str, max_lines: int) -> ParsedBody:
    decoder = json.JSONDecoder()
    out = ParsedBody()
    i = _skip(text, 0)
    if i >= len(text) or text[i] != "[":
        raise _bad_json("a JSON array of events (or NDJSON with Content-Type application/x-ndjson)")
    i = _skip(text, i + 1)
    if i < len(text) and text[i] == "]":
        return _end(text, i + 1, out)
    n = 0
    while True:
        try:
            value, j = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise _bad_json(f"valid JSON ({exc.msg} at character {exc.pos})") from None
        except RecursionError:
            raise MalformedBody(
                f"the JSON nests too deep at line {n}",
                field="body",
                rule="body.depth",
                hint="events are flat objects",
            ) from None
        if n >= max_lines:
            raise _too_many(max_lines)
        _keep(out, n, value, text[i:j])
        n += 1
        i = _skip(text, j)
        if i < len(text) and text[i] == ",":
            i = _skip(text, i + 1)
            continue
        if i < len(text) and text[i] == "]":
            return _end(text, i + 1, out)
        raise _bad_json(f"',' or ']' after line {n - 1} (character {i})")


def _keep(out: ParsedBody, i: int, value: Any, raw: str) -> None:
    if not isinstance(value, dict):
        out.rejects.append(_reject(i, "line.object", raw, "each line must be a JSON object"))
        return
    nested = next((k for k, v in value.items() if isinstance(v, dict | list)), None)
    if nested is not None:
        out.rejects.append(
            _reject(
                i,
                "line.flat",
                raw,
                f"{str(nested)[:64]!r} holds an object or list; "
                "every field must be a string, number, boolean or null",
            )
        )
        return
    out.rows.append(value)
    out.raws.append(raw)
    out.lines.append(i)


def _reject(i: int, rule: str, raw: str, message: str) -> dict[str, Any]:
    return {
        "line": i,
        "event_id": None,
        "rule": rule,
        "field": None,
        "value": raw[:200],
        "message": message,
        "payload": raw[:_KEEP],
    }


def _end(text: str, i: int, out: ParsedBody) -> ParsedBody:
    if _skip(text, i) != len(text):
        raise _bad_json("a single JSON array (something follows the closing ']')")
    return out


def _skip(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


def _too_many(max_lines: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"more than {max_lines:,} lines in one request; send smaller batches",
        field="body",
        rule="body.lines",
        hint="REPLEN_MAX_LINES_PER_REQUEST sets the cap",
    )


def _bad_json(expected: str) -> MalformedBody:
    return MalformedBody(f"the body is not {expected}", field="body", rule="body.json")
