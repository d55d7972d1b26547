"""Corrections: an admin voids a bad batch; history, velocity (offline and online) and the
next plan's input leave it out, the lake keeps it, and the record names who and why."""

from __future__ import annotations

import json

import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from features.sales import daily_sales, velocity
from replen.app import create_app

pytestmark = pytest.mark.slow


def _events(chain, n: int) -> list[dict]:
    rows = chain.pos.tail(n).with_columns(pl.col("sold_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
    return rows.to_dicts()


def _attack(chain) -> list[dict]:
    """The issue's attack: 30 sales of 9,999 units at 0.01 for one SKU."""
    last = chain.pos.sort("sold_at").row(-1, named=True)
    return [
        {
            "event_id": f"evil-{i}",
            "store_id": last["store_id"],
            "sku_id": last["sku_id"],
            "sold_at": last["sold_at"].isoformat(),
            "quantity": 9999,
            "unit_price": 0.01,
        }
        for i in range(30)
    ]


def test_voiding_a_batch_over_http_takes_it_out_of_history_and_online_velocity(
    settings, access, chain
) -> None:
    with TestClient(create_app(settings)) as client:
        client.headers.update(access.headers(("pos_ingest",), kind="client"))
        assert client.post("/v1/pos/events", json=_events(chain, 300)).json()["accepted"] == 300
        rt = client.app.state.runtime
        before = rt.history()
        bad = client.post("/v1/pos/events", json=_attack(chain)).json()
        assert bad["accepted"] == 30
        sender = next(m for m in rt.lake.batches() if m["batch_id"] == bad["batch_id"])
        assert sender["actor"].startswith("client:pos-ingest")  # which till sent it
        assert rt.history()["units"].sum() == before["units"].sum() + 30 * 9999

        admin = access.headers(("admin",), kind="user", name="ops")
        refused = client.post(
            "/v1/corrections/voids", json={"batch_ids": [bad["batch_id"]], "reason": "x"}
        )
        assert refused.status_code == 403  # a till may not rewrite what counts
        r = client.post(
            "/v1/corrections/voids",
            headers=admin,
            json={"batch_ids": [bad["batch_id"]], "reason": "attack from a leaked till key"},
        )
        assert r.status_code == 200, r.text
        record = r.json()
        assert (record["voided"], record["actor"], record["keys"]) == (30, "user:ops", 1)

        after = rt.history()
        assert after.equals(before), "history is back to what it was"
        assert rt.lake.scan_events(apply_voids=False).collect().height == 330  # kept
        client.app.state.pusher.drain()
        expected = velocity(daily_sales(rt.lake.scan_events())).sort("store_id", "sku_id")
        online = rt.features.online_velocity(expected.select("store_id", "sku_id"))
        assert online.sort("store_id", "sku_id")["units_1d"].to_list() == (
            expected["units_1d"].to_list()
        )
        # Resending a voided event does not bring it back.
        again = client.post("/v1/pos/events", json=_attack(chain)[:1]).json()
        assert (again["accepted"], again["duplicates"]) == (0, 1)
        listed = client.get("/v1/corrections/voids", headers=admin).json()
        assert [v["reason"] for v in listed] == ["attack from a leaked till key"]
        audit = access.identities.audit()
        assert audit[0]["action"] == "void" and audit[0]["actor"] == "user:ops"


def test_the_cli_voids_events_by_id_as_the_signed_in_admin(settings, access, chain, monkeypatch):
    from jobs.refresh import ingest_pos
    from jobs.runtime import Runtime
    from replen.cli import app

    rt = Runtime(settings)
    ingest_pos(rt, chain.pos.tail(50), push=False)
    ids = chain.pos.tail(50)["event_id"].head(3).to_list()
    _, secret = access.principal(("admin",), kind="user", name="root")
    monkeypatch.setenv("REPLEN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("REPLEN_MLFLOW_DIR", str(settings.mlflow_dir))
    runner = CliRunner()
    args = ["corrections", "void", "--reason", "test sales", "--json"]
    args += [a for i in ids for a in ("--event-id", i)] + ["--event-id", "nope"]

    anonymous = runner.invoke(app, args)
    assert anonymous.exit_code == 7 and "replen login" in anonymous.output

    monkeypatch.setenv("REPLEN_USERNAME", "root")
    monkeypatch.setenv("REPLEN_PASSWORD", secret)
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert (record["voided"], record["not_found"], record["actor"]) == (3, ["nope"], "user:root")
    assert set(ids).isdisjoint(rt.lake.scan_events().collect()["event_id"].to_list())
