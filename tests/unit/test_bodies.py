"""Reading hostile bodies: strict UTF-8, NDJSON on \\n only, bounded lines and nesting."""

from __future__ import annotations

import json

import pytest

from replen.api.bodies import parse_body
from replen.api.problems import MalformedBody, PayloadTooLarge


def test_ndjson_splits_on_newline_only_not_on_unicode_line_separators() -> None:
    line = json.dumps({"event_id": "a\u2028b\u2029c\x85d"}, ensure_ascii=False)
    body = (line + "\r\n" + line.replace("a", "z", 1) + "\n").encode()
    parsed = parse_body(body, ndjson=True, max_lines=10)
    assert [r["event_id"] for r in parsed.rows] == ["a\u2028b\u2029c\x85d", "z\u2028b\u2029c\x85d"]
    assert parsed.lines == [0, 1] and not parsed.rejects


def test_a_byte_order_mark_is_dropped() -> None:
    parsed = parse_body(b"\xef\xbb\xbf" + b'[{"event_id": "a"}]', ndjson=False, max_lines=10)
    assert parsed.rows == [{"event_id": "a"}]


def test_invalid_utf8_is_refused_naming_the_byte() -> None:
    with pytest.raises(MalformedBody, match="byte 15") as err:
        parse_body(b'[{"event_id": "\xff"}]', ndjson=False, max_lines=10)
    assert err.value.http_status() == 400 and err.value.rule == "body.utf8"


def test_lines_that_are_not_flat_objects_are_rejected_one_by_one() -> None:
    body = b'{"a": 1}\n{broken\n[1, 2]\n{"a": {"b": 1}}\n\n{"a": 2}'
    parsed = parse_body(body, ndjson=True, max_lines=10)
    assert [r["a"] for r in parsed.rows] == [1, 2] and parsed.lines == [0, 5]
    assert [(r["line"], r["rule"]) for r in parsed.rejects] == [
        (1, "line.json"),
        (2, "line.object"),
        (3, "line.flat"),
    ]
    assert parsed.rejects[0]["payload"] == "{broken"
    assert parsed.received == 5


@pytest.mark.parametrize("ndjson", [False, True])
def test_deep_nesting_is_a_client_error_not_a_crash(ndjson: bool) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    if ndjson:
        parsed = parse_body(deep, ndjson=True, max_lines=10)
        assert [r["rule"] for r in parsed.rejects] == ["line.depth"]
    else:
        with pytest.raises(MalformedBody) as err:
            parse_body(b"[" + deep + b"]", ndjson=False, max_lines=10)
        assert err.value.rule == "body.depth" and err.value.http_status() == 400


@pytest.mark.parametrize("ndjson", [False, True])
def test_too_many_lines_is_refused_before_reading_them_all(ndjson: bool) -> None:
    n = 2_000_000
    body = b"{}\n" * n if ndjson else b"[" + b",".join([b"{}"] * n) + b"]"
    with pytest.raises(PayloadTooLarge) as err:
        parse_body(body, ndjson=ndjson, max_lines=1000)
    assert err.value.http_status() == 413 and err.value.rule == "body.lines"


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'[{"a": 1}', b'[{"a": 1}] []', b'[{"a": 1} {"a": 2}]', b"[,]"],
)
def test_a_malformed_array_is_refused_whole(body: bytes) -> None:
    with pytest.raises(MalformedBody) as err:
        parse_body(body, ndjson=False, max_lines=10)
    assert err.value.rule == "body.json"


def test_an_empty_array_has_no_lines() -> None:
    assert parse_body(b" [ ] ", ndjson=False, max_lines=10).received == 0
