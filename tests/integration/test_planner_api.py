"""The planner API on a planned synthetic chain: queue, detail, actions, scopes, exceptions."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from replen.app import create_app
from replen.settings import Settings
from tests.conftest import AccessKit
from tests.planner_chain import build_planner_chain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("planner")
    settings = Settings(data_dir=root / "data", mlflow_dir=root / "mlflow")
    from replen.synthetic import generate

    suppliers = generate(stores=2, skus=8, days=120, seed=3).suppliers.with_columns(
        # SUP03's POs stay under a minimum no order reaches: they are held.
        pl.when(pl.col("supplier_id") == "SUP03")
        .then(pl.lit(1e6))
        .otherwise(pl.lit(0.0))
        .alias("min_order_value"),
        pl.lit("hold").alias("min_order_action"),
    )
    made = build_planner_chain(settings, suppliers=suppliers)
    assert made["held"] == 2 and made["purchase_orders"] >= 5
    return root, made


@pytest.fixture()
def client(template, tmp_path, monkeypatch):
    root, _ = template
    shutil.copytree(root / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=tmp_path / "data", mlflow_dir=tmp_path / "mlflow")
    app = create_app(settings)
    # Without the lifespan: no velocity-push process, which the planner routes never use.
    c = TestClient(app)
    c.app_state = app.state  # type: ignore[attr-defined]
    c.kit = AccessKit(settings.db_url)  # type: ignore[attr-defined]
    c.names = set()  # type: ignore[attr-defined]
    act_as(c)
    return c


def act_as(client, roles=("admin",), stores=("*",), name="ann", limit=None) -> None:
    """Send the next requests with a real bearer token of a user with these roles."""
    if name in client.names:  # the same person with other roles: another user
        name = f"{name}-{len(client.names)}"
    client.names.add(name)
    client.headers.update(
        client.kit.headers(tuple(roles), tuple(stores), kind="user", name=name, approve_limit=limit)
    )


def test_the_queue_is_most_urgent_first_filtered_and_paged(client, template) -> None:
    made = template[1]
    first = client.get("/v1/orders", params={"page_size": 3}).json()
    assert first["total"] == made["purchase_orders"] == sum(first["counts"].values())
    rank = {"critical": 0, "watch": 1, "ok": 2}
    everything = client.get("/v1/orders", params={"page_size": 500}).json()["items"]
    ranks = [rank[x["urgency"]] for x in everything]
    assert ranks == sorted(ranks)
    second = client.get("/v1/orders", params={"page_size": 3, "page": 2}).json()
    ids = [x["po_id"] for x in first["items"] + second["items"]]
    assert ids == [x["po_id"] for x in everything[:6]]
    assert first["facets"]["supplier_id"] == ["SUP01", "SUP02", "SUP04"]

    sup = client.get("/v1/orders", params={"supplier_id": "SUP02"}).json()
    assert sup["total"] >= 1 and {x["supplier_id"] for x in sup["items"]} == {"SUP02"}
    by_value = client.get("/v1/orders", params={"sort": "value", "descending": True}).json()
    values = [x["value"] for x in by_value["items"]]
    assert values == sorted(values, reverse=True)


def test_bad_filters_are_problems_naming_the_field(client) -> None:
    r = client.get("/v1/orders", params={"urgency": "panic"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "urgency" and "panic" in r.json()["detail"]
    r = client.get("/v1/orders", params={"page_size": 0})
    assert r.status_code == 422 and r.json()["field"] == "page_size"


def test_every_line_of_a_po_explains_its_quantity(client) -> None:
    for item in client.get("/v1/orders", params={"page_size": 500}).json()["items"]:
        po = client.get(f"/v1/orders/{item['po_id']}").json()
        assert po["lines"] and po["audit"] == []
        for line in po["lines"]:
            assert line["steps_total"] == pytest.approx(line["quantity"], abs=1e-4)
            assert line["sentence"].startswith(f"order {line['quantity']:,} = ")
            assert line["steps"][0]["kind"] == "need"


def test_a_planner_sees_and_touches_only_their_stores(client) -> None:
    act_as(client, roles=("planner",), stores=("S001",))
    items = client.get("/v1/orders", params={"page_size": 500}).json()["items"]
    assert items and {x["store_id"] for x in items} == {"S001"}
    act_as(client)
    other = client.get("/v1/orders", params={"store_id": "S002"}).json()["items"][0]
    act_as(client, roles=("planner",), stores=("S001",))
    r = client.get(f"/v1/orders/{other['po_id']}")
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem")
    assert client.get("/v1/items/S002/SKU00001").status_code == 403


def test_an_edit_needs_a_reason_and_names_who_made_it(client) -> None:
    po = client.get("/v1/orders").json()["items"][0]
    line = client.get(f"/v1/orders/{po['po_id']}").json()["lines"][0]
    url = f"/v1/orders/{po['po_id']}/lines/{line['sku_id']}"
    r = client.put(url, json={"quantity": line["quantity"] + 6})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    act_as(client, roles=("viewer",))
    assert client.put(url, json={"quantity": 1, "reason": "x"}).status_code == 403
    act_as(client, roles=("planner",), name="bob")
    r = client.put(url, json={"quantity": line["quantity"] + 6, "reason": "promo next week"})
    assert r.status_code == 200 and r.json() == {
        "po_id": po["po_id"],
        "sku_id": line["sku_id"],
        "from": line["quantity"],
        "to": line["quantity"] + 6,
    }
    after = client.get(f"/v1/orders/{po['po_id']}").json()
    edited = next(x for x in after["lines"] if x["sku_id"] == line["sku_id"])
    assert edited["suggested_quantity"] == line["quantity"]
    assert edited["steps"][-1]["kind"] == "planner" and edited["steps_total"] == edited["quantity"]
    assert after["audit"][-1]["actor"] == "user:bob"
    assert after["audit"][-1]["detail"]["reason"] == "promo next week"


def test_approval_needs_the_role_and_stays_within_the_value_limit(client) -> None:
    po = client.get("/v1/orders").json()["items"][0]
    url = f"/v1/orders/{po['po_id']}/approve"
    act_as(client, roles=("planner",))
    assert client.post(url).status_code == 403
    act_as(client, roles=("approver",), limit=po["value"] - 1)
    r = client.post(url)
    assert r.status_code == 403 and "may approve up to" in r.json()["detail"]
    act_as(client, roles=("approver",), name="cleo", limit=po["value"] + 1)
    r = client.post(url, json={"reason": "ok"})
    assert r.status_code == 200 and r.json() == {
        "po_id": po["po_id"],
        "from": "suggested",
        "to": "approved",
    }
    assert client.post(url).status_code == 409  # approved already
    audit = client.get(f"/v1/orders/{po['po_id']}").json()["audit"]
    assert [(a["actor"], a["action"]) for a in audit] == [("user:cleo", "approved")]


def test_bulk_actions_report_each_po(client) -> None:
    ids = [x["po_id"] for x in client.get("/v1/orders").json()["items"][:3]]
    client.post(f"/v1/orders/{ids[2]}/reject", json={"reason": "supplier on strike"})
    r = client.post("/v1/orders/bulk/approve", json={"po_ids": ids})
    body = r.json()
    assert (body["succeeded"], body["failed"]) == (2, 1)
    refused = next(x for x in body["results"] if not x["ok"])
    assert refused["po_id"] == ids[2] and refused["error"]["status"] == 409
    assert "rejected" in refused["error"]["detail"]
    approved = client.get("/v1/orders", params={"status": "approved"}).json()["items"]
    assert sorted(x["po_id"] for x in approved) == sorted(ids[:2])
    r = client.post("/v1/orders/bulk/reject", json={"po_ids": [ids[0]]})
    assert r.json()["results"][0]["error"]["field"] == "reason"


def test_a_snoozed_po_leaves_the_queue_until_its_day(client, template) -> None:
    plan_date = template[1]["plan_date"]
    po = client.get("/v1/orders").json()["items"][0]
    until = (plan_date + timedelta(days=400)).isoformat()
    r = client.post(f"/v1/orders/{po['po_id']}/snooze", json={"until": until, "reason": "wait"})
    assert r.status_code == 200
    ids = [x["po_id"] for x in client.get("/v1/orders", params={"page_size": 500}).json()["items"]]
    assert po["po_id"] not in ids
    shown = client.get("/v1/orders", params={"page_size": 500, "include_snoozed": True}).json()
    assert any(x["po_id"] == po["po_id"] and x["snoozed_until"] == until for x in shown["items"])
    assert client.get(f"/v1/orders/{po['po_id']}").json()["audit"][-1]["action"] == "snooze"


def test_held_pos_list_their_lines_and_what_releases_them(client) -> None:
    held = client.get("/v1/held-orders").json()
    assert len(held) == 2 and {h["supplier_id"] for h in held} == {"SUP03"}
    h = held[0]
    assert h["value"] == pytest.approx(sum(x["value"] for x in h["lines"]), abs=0.02)
    assert h["release"]["short_value"] == pytest.approx(1e6 - h["value"], abs=0.01)
    assert "under the supplier minimum" in h["release"]["text"]
    assert all(x["sentence"].startswith(f"order {x['quantity']:,} = ") for x in h["lines"])


def test_the_store_sku_view_has_history_forecast_band_and_projection(client) -> None:
    po = client.get("/v1/orders").json()["items"][0]
    line = client.get(f"/v1/orders/{po['po_id']}").json()["lines"][0]
    view = client.get(f"/v1/items/{po['store_id']}/{line['sku_id']}", params={"days": 28}).json()
    assert len(view["history"]) == 28 and view["demand_class"]
    assert view["model_version"] == "t1" and view["band"] == {"low": "q50", "high": "q95"}
    assert all(d["high"] >= d["low"] for d in view["forecast"])
    delivery = [d for d in view["projection"] if d["delivery"]]
    assert len(delivery) == 1 and delivery[0]["date"] == po["expected_delivery"]
    assert view["line"]["quantity"] == line["quantity"]
    r = client.get("/v1/items/S001/NOPE")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem")


def test_exceptions_can_be_confirmed_or_snoozed_and_are_counted_on_metrics(client) -> None:
    open_ = client.get("/v1/exceptions").json()
    kinds = {x["type"] for x in open_}
    assert {"held_po", "stale_pos_feed"} <= kinds
    metrics = client.get("/metrics").text
    held_line = 'replen_planner_exceptions{type="held_po"} 2.0'
    assert held_line in metrics
    keys = [x["key"] for x in open_ if x["type"] == "held_po"]
    r = client.post("/v1/exceptions/confirm", json={"keys": keys[:1]}).json()
    assert r == {"marked": 1, "errors": []}
    r = client.post("/v1/exceptions/snooze", json={"keys": keys[1:]})
    assert r.status_code == 422 and r.json()["field"] == "until"
    far = "2999-01-01"
    r = client.post(
        "/v1/exceptions/snooze", json={"keys": [*keys[1:], "held_po|nope|2020-01-01"], "until": far}
    ).json()
    assert r["marked"] == 1 and r["errors"][0]["status"] == 404
    assert not [x for x in client.get("/v1/exceptions").json() if x["type"] == "held_po"]
    done = client.get("/v1/exceptions", params={"state": "all", "type": "held_po"}).json()
    assert sorted(x["state"] for x in done) == ["confirmed", "snoozed"]
    assert 'replen_planner_exceptions{type="held_po"} 0.0' in client.get("/metrics").text


def test_an_order_for_an_item_the_plan_saw_inactive_is_a_dormant_item(
    client, template, tmp_path
) -> None:
    _, made = template
    plan_date = made["plan_date"]
    line = made["suggestion"].lines.row(0, named=True)
    classes = tmp_path / "data" / "out" / f"classes_{plan_date}.parquet"
    assert not [x for x in client.get("/v1/exceptions").json() if x["type"] == "dormant_item"]
    frame = pl.read_parquet(classes)
    pl.concat(
        [
            frame.filter(
                (pl.col("store_id") != line["store_id"]) | (pl.col("sku_id") != line["sku_id"])
            ),
            frame.filter(
                (pl.col("store_id") == line["store_id"]) & (pl.col("sku_id") == line["sku_id"])
            ).with_columns(pl.lit("inactive").alias("demand_class")),
        ]
    ).write_parquet(classes)
    # The worklist was cached before: a rewritten classes file is seen all the same.
    found = [x for x in client.get("/v1/exceptions").json() if x["type"] == "dormant_item"]
    assert [(x["store_id"], x["sku_id"]) for x in found] == [(line["store_id"], line["sku_id"])]
    assert f"ordering {line['quantity']} on the chance it sells again" in found[0]["message"]
    assert 'replen_planner_exceptions{type="dormant_item"} 1.0' in client.get("/metrics").text
    r = client.post("/v1/exceptions/confirm", json={"keys": [found[0]["key"]]}).json()
    assert r == {"marked": 1, "errors": []}
    assert not [x for x in client.get("/v1/exceptions").json() if x["type"] == "dormant_item"]


def test_data_health_and_job_runs(client) -> None:
    health = client.get("/v1/data-health").json()
    assert health["rules_loaded"] and health["stock_positions"] == 16
    assert {s["store_id"] for s in health["stores"]} == {"S001", "S002"}
    assert client.get("/v1/jobs/runs").json() == []


def test_docs_and_page_assets_come_from_this_server(client) -> None:
    html = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    page = client.get("/").text
    assert '<script src="/static/app.js"' in page and "http" not in page.split("<body>")[1]
    for name in ("app.js", "chart.js", "app.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/..%2F__init__.py").status_code == 404


def test_cli_orders_list_filters_and_fits_80_columns(client, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from replen.cli import app

    monkeypatch.setenv("REPLEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "80")
    runner = CliRunner()
    r = runner.invoke(app, ["orders", "list", "--supplier", "SUP02", "--status", "suggested"])
    assert r.exit_code == 0, r.output
    rows = [
        line for line in r.output.splitlines() if line.split()[:1] and line.split()[0].isdigit()
    ]
    assert rows and all("SUP02" in line for line in rows)
    assert max(len(line) for line in r.output.splitlines()) <= 80
    r = runner.invoke(app, ["orders", "list", "--store", "S002", "--json"])
    import json

    listed = json.loads(r.output)["purchase_orders"]
    assert listed and {x["store_id"] for x in listed} == {"S002"}
    r = runner.invoke(app, ["orders", "list", "--status", "shipped"])
    assert r.exit_code == 2 and "--status 'shipped' is not one of" in r.output
    po = listed[0]["po_id"]
    r = runner.invoke(app, ["orders", "show", str(po)])
    assert r.exit_code == 0 and "order " in r.output and "= forecast over" in r.output


def test_value_added_scores_a_planners_change_after_its_period(client, template) -> None:
    from typer.testing import CliRunner

    from replen.cli import app

    made = template[1]
    rt = client.app_state.runtime
    early = made["plan_date"] - timedelta(days=40)  # its protection periods have passed
    rt.orders.replace_suggestions(early, made["suggestion"])
    po = next(
        x
        for x in client.get("/v1/orders", params={"page_size": 500}).json()["items"]
        if x["plan_date"] == early.isoformat()
    )
    line = client.get(f"/v1/orders/{po['po_id']}").json()["lines"][0]
    act_as(client, roles=("planner",), name="bob")
    url = f"/v1/orders/{po['po_id']}/lines/{line['sku_id']}"
    assert client.put(url, json={"quantity": line["quantity"] + 12, "reason": "fair"}).is_success
    assert client.get("/v1/value-added").json()["changed_lines"] == 0  # not approved yet
    act_as(client)
    assert client.post(f"/v1/orders/{po['po_id']}/approve").is_success
    report = client.get("/v1/value-added").json()
    assert (report["changed_lines"], report["scored_lines"]) == (1, 1)
    group = report["groups"][0]
    assert (group["planner"], group["store_id"], group["model_version"]) == (
        "user:bob",
        po["store_id"],
        "t1",
    )
    assert group["units_changed"] == 12 and group["sold"] >= 0
    assert group["value_added"] == pytest.approx(
        group["wape_suggestion"] - group["wape_planner"], abs=1e-3
    )
    r = CliRunner().invoke(
        app, ["orders", "value-added"], env={"REPLEN_DATA_DIR": str(rt.settings.data_dir)}
    )
    assert r.exit_code == 0 and "user:bob" in r.output
