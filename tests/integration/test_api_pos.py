"""POS ingestion over HTTP: counts, per-line errors, 413, NDJSON, online velocity."""

from __future__ import annotations

import json

import polars as pl
import pytest
from fastapi.testclient import TestClient

from replen.app import create_app

pytestmark = pytest.mark.slow


def _events(chain, n: int) -> list[dict]:
    rows = chain.pos.head(n).with_columns(pl.col("sold_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
    return rows.to_dicts()


@pytest.fixture()
def client(settings):
    with TestClient(create_app(settings)) as c:
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


def test_oversized_body_is_refused_with_413(settings, chain) -> None:
    small = settings.model_copy(update={"max_request_bytes": 1000})
    with TestClient(create_app(small)) as c:
        r = c.post("/v1/pos/events", json=_events(chain, 50))
    assert r.status_code == 413 and "REPLEN_MAX_REQUEST_BYTES" in r.json()["detail"]


def test_accepted_events_become_visible_online(client, chain) -> None:
    from features.sales import daily_sales, velocity

    events = _events(chain, 400)
    assert client.post("/v1/pos/events", json=events).json()["accepted"] == 400
    assert client.app.state.pusher.drain(timeout=120)
    rt = client.app.state.runtime
    expected = velocity(daily_sales(rt.lake.scan_events())).sort("store_id", "sku_id")
    online = rt.features.online_velocity(expected.select("store_id", "sku_id"))
    online = online.sort("store_id", "sku_id")
    for col in ("units_1d", "units_7d", "units_28d", "days_since_last_sale"):
        assert online[col].to_list() == expected[col].to_list(), col


def test_inventory_all_or_nothing_and_metrics(client) -> None:
    good = [{"store_id": "S1", "sku_id": "A", "as_of": "2024-01-01T07:00:00+00:00", "on_hand": 3}]
    assert client.post("/v1/inventory", json=good).json() == {"rows": 1}
    bad = [*good, {"store_id": "S1", "sku_id": "B", "as_of": "2024-01-01 07:00", "on_hand": 1}]
    r = client.post("/v1/inventory", json=bad)
    assert r.status_code == 422 and "row 1: as_of" in r.json()["detail"]
    metrics = client.get("/metrics").text
    assert "replen_pos_lines_total" in metrics


def test_metrics_show_job_failures_recorded_by_another_process(client, settings) -> None:
    from jobs.scheduler import execute

    assert execute(settings, "retrain", "2024-01-07T02:00:00+00:00") == "failed"
    text = client.get("/metrics").text
    assert 'replen_ledger_job_runs_total{job="retrain",status="failed"} 1.0' in text
    assert 'replen_ledger_alerts_total{kind="job"}' in text
