"""POS ingestion over HTTP: counts, per-line errors, 413/415, NDJSON, quarantine, online
velocity, rate limits."""

from __future__ import annotations

import json

import polars as pl
import pytest
from fastapi.testclient import TestClient
from support import DEADLINE

from replen.app import create_app

pytestmark = pytest.mark.slow


def _events(chain, n: int) -> list[dict]:
    rows = chain.pos.head(n).with_columns(pl.col("sold_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
    return rows.to_dicts()


@pytest.fixture()
def client(settings, access):
    with TestClient(create_app(settings)) as c:
        c.headers.update(access.headers(("admin",)))
        yield c


def test_json_array_is_acknowledged_with_exact_counts(client, chain) -> None:
    events = _events(chain, 50)
    events[3]["quantity"] = 0
    events[7]["sold_at"] = "2024-01-01 10:00:00"
    r = client.post("/v1/pos/events", json=events)
    assert r.status_code == 200
    body = r.json()
    assert (body["received"], body["accepted"], body["duplicates"], body["rejected"]) == (
        50,
        48,
        0,
        2,
    )
    assert [(e["line"], e["rule"]) for e in body["errors"]] == [
        (3, "quantity.nonzero"),
        (7, "sold_at.timezone"),
    ]

    again = client.post("/v1/pos/events", json=events).json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 48, 2)


def test_ndjson_with_a_broken_line_keeps_the_good_ones(client, chain) -> None:
    lines = [json.dumps(e) for e in _events(chain, 5)]
    lines.insert(2, "{not json")
    r = client.post(
        "/v1/pos/events", content="\n".join(lines), headers={"content-type": "application/x-ndjson"}
    )
    body = r.json()
    assert (body["received"], body["accepted"], body["rejected"]) == (6, 5, 1)
    assert body["errors"][0]["rule"] == "line.json"


def test_oversized_body_is_refused_with_413(settings, access, chain) -> None:
    small = settings.model_copy(update={"max_request_bytes": 1000})
    c = TestClient(create_app(small))  # no lifespan: nothing here reaches the pusher
    c.headers.update(access.headers())
    r = c.post("/v1/pos/events", json=_events(chain, 50))
    chunked = c.post(
        "/v1/pos/events",
        content=(b"[" + b" " * 100 for _ in range(50)),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and "REPLEN_MAX_REQUEST_BYTES" in r.json()["hint"]
    assert chunked.status_code == 413 and chunked.json()["rule"] == "body.size"


def test_a_json_array_sent_as_text_plain_is_refused_with_415(client, chain) -> None:
    body = json.dumps(_events(chain, 3))
    for media in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
    ):
        r = client.post("/v1/pos/events", content=body, headers={"content-type": media})
        assert r.status_code == 415, media
        assert r.headers["content-type"] == "application/problem+json"
    assert client.app.state.runtime.lake.batches() == []


def test_every_rejected_line_parse_failures_included_is_quarantined_and_monitored(
    client, chain
) -> None:
    lines = [json.dumps(e) for e in _events(chain, 4)]
    lines[1] = "{not json"
    lines.append('{"event_id": {"nested": 1}}')
    lines.append(json.dumps({**_events(chain, 5)[4], "sold_at": "0001-01-01T00:00:00+00:00"}))
    body = "\n".join(lines)
    r = client.post(
        "/v1/pos/events", content=body, headers={"content-type": "application/x-ndjson"}
    )
    out = r.json()
    assert (out["received"], out["accepted"], out["rejected"]) == (6, 3, 3)
    assert out["rejected_by_rule"] == {"line.json": 1, "line.flat": 1, "sold_at.past": 1}
    assert sorted((e["line"], e["rule"]) for e in out["errors"]) == [
        (1, "line.json"),
        (4, "line.flat"),
        (5, "sold_at.past"),
    ]
    quarantine = client.app.state.runtime.lake.quarantine()
    assert sorted(quarantine["rule"].to_list()) == ["line.flat", "line.json", "sold_at.past"]
    assert "{not json" in quarantine["payload"].to_list()
    monitor = client.get("/v1/monitor").json()
    assert (monitor["received"], monitor["rejected"]) == (6, 3)

    # The same body again (a till's retry): every line answered as before, the rejected
    # ones listed again but kept once; a new line in front moves no identity.
    again = client.post(
        "/v1/pos/events",
        content="\n".join([json.dumps(_events(chain, 6)[5]), *lines]),
        headers={"content-type": "application/x-ndjson"},
    ).json()
    assert (again["received"], again["accepted"], again["duplicates"]) == (7, 1, 3)
    assert (again["rejected"], again["already_quarantined"]) == (3, 3)
    assert sorted((e["line"], e["rule"]) for e in again["errors"]) == [
        (2, "line.json"),
        (5, "line.flat"),
        (6, "sold_at.past"),
    ]
    assert client.app.state.runtime.lake.quarantine().height == 3


def test_errors_past_the_limit_are_summarised(settings, access, chain) -> None:
    few = settings.model_copy(update={"max_response_errors": 5})
    events = _events(chain, 40)
    for e in events:
        e["quantity"] = 0
    c = TestClient(create_app(few))  # no lifespan: nothing here reaches the pusher
    c.headers.update(access.headers())
    out = c.post("/v1/pos/events", json=events).json()
    assert out["rejected"] == 40 and len(out["errors"]) == 5 and out["errors_omitted"] == 35
    assert out["rejected_by_rule"] == {"quantity.nonzero": 40}


def test_too_many_requests_get_429_with_retry_after(settings, access) -> None:
    slow = settings.model_copy(update={"rate_limit_per_minute": 3})
    c = TestClient(create_app(slow))  # no lifespan: nothing here reaches the pusher
    c.headers.update(access.headers(("viewer",)))
    codes = [c.get("/v1/me").status_code for _ in range(5)]
    r = c.get("/v1/me")
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 20


def test_accepted_events_become_visible_online(client, chain) -> None:
    from features.sales import daily_sales, velocity

    events = _events(chain, 400)
    assert client.post("/v1/pos/events", json=events).json()["accepted"] == 400
    assert client.app.state.pusher.drain(timeout=DEADLINE), "pushes still pending"
    rt = client.app.state.runtime
    expected = velocity(daily_sales(rt.lake.scan_events())).sort("store_id", "sku_id")
    online = rt.features.online_velocity(expected.select("store_id", "sku_id"))
    online = online.sort("store_id", "sku_id")
    for col in ("units_1d", "units_7d", "units_28d", "days_since_last_sale"):
        assert online[col].to_list() == expected[col].to_list(), col


def test_inventory_all_or_nothing_and_metrics(client) -> None:
    good = [{"store_id": "S1", "sku_id": "A", "as_of": "2026-11-01T07:00:00+00:00", "on_hand": 3}]
    assert client.post("/v1/inventory", json=good).json() == {"rows": 1}
    bad = [*good, {"store_id": "S1", "sku_id": "B", "as_of": "2026-11-01 07:00", "on_hand": 1}]
    r = client.post("/v1/inventory", json=bad)
    assert r.status_code == 422 and "row 1: as_of" in r.json()["detail"]
    assert r.json()["rule"] == "as_of.timestamp"
    negative = [{**good[0], "on_hand": -1}]
    assert client.post("/v1/inventory", json=negative).json()["rule"] == "on_hand.nonnegative"
    metrics = client.get("/metrics").text
    assert "replen_pos_lines_total" in metrics


def test_metrics_show_job_failures_recorded_by_another_process(client, settings) -> None:
    from jobs.scheduler import execute

    assert execute(settings, "retrain", "2024-01-07T02:00:00+00:00") == "failed"
    text = client.get("/metrics").text
    assert 'replen_ledger_job_runs_total{job="retrain",status="failed"} 1.0' in text
    assert 'replen_ledger_alerts_total{kind="job"}' in text
