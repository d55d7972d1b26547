"""The demo as a new user runs it (the real `replen` executable), checked by its effects."""

from __future__ import annotations

import json
import math
import os
import subprocess
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from support import replen_exe

pytestmark = pytest.mark.slow

SIZE = ["--stores", "2", "--skus", "10", "--days", "240", "--seed", "5"]


def _replen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = replen_exe()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLEN_", "MLFLOW_"))}
    return subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    cwd = tmp_path_factory.mktemp("demo")
    proc = _replen("demo", *SIZE, "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return cwd, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture()
def in_demo(demo, monkeypatch):
    cwd, summary = demo
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from jobs.runtime import Runtime
    from replen.settings import Settings

    return Runtime(Settings()), summary


def test_lake_holds_exactly_the_accepted_events(in_demo) -> None:
    rt, s = in_demo
    ing = s["ingest"]
    assert ing["received"] == ing["accepted"] + ing["duplicates"] + ing["rejected"]
    assert rt.lake.scan_events().select(pl.len()).collect().item() == ing["accepted"] > 0


def test_online_velocity_equals_a_recomputation_from_the_lake(in_demo) -> None:
    from features.sales import velocity

    rt, _ = in_demo
    expected = velocity(rt.history()).sort("store_id", "sku_id")
    keys = expected.select("store_id", "sku_id").head(5)
    online = rt.features.online_velocity(keys).sort("store_id", "sku_id")
    want = expected.head(5)
    for col in ("units_1d", "units_7d", "units_28d", "days_since_last_sale"):
        assert online[col].to_list() == want[col].to_list(), col


def test_mlflow_holds_the_run_and_the_champion_predicts(in_demo) -> None:
    import mlflow

    rt, s = in_demo
    mlflow.set_tracking_uri(rt.settings.tracking_uri)
    assert rt.settings.tracking_uri.startswith("sqlite:///") and "mlflow/mlflow.db" in (
        rt.settings.tracking_uri
    )
    run = mlflow.get_run(s["training"]["run_id"])
    assert run.data.metrics["series"] == 20
    assert "wape" in run.data.metrics and "rmsse" in run.data.metrics
    model = mlflow.pyfunc.load_model("models:/replen-demand@champion")
    history = rt.history().select("store_id", "sku_id", "date", "units", "stockout")
    out = model.predict(
        history.to_pandas(), params={"horizon": 7, "quantiles": "0.5,0.9", "model_version": "1"}
    )
    assert len(out) == 20 * 7
    assert (out["q90"] >= out["q50"]).all() and (out["q50"] >= 0).all()
    assert set(out["model_version"]) == {"1"}


def test_the_model_trained_on_the_feast_frame_and_says_so(in_demo) -> None:
    import mlflow

    rt, s = in_demo
    assert s["training"]["feature_service"] == "forecasting_v2"
    assert set(s["ingest"]["reference"]) == {"calendar", "prices", "promotions", "attributes"}
    mlflow.set_tracking_uri(rt.settings.tracking_uri)
    run = mlflow.get_run(s["training"]["run_id"])
    assert run.data.params["features.service"] == "forecasting_v2"
    assert run.data.params["features.version"] == "2"
    assert run.data.params["pooled"] == "True"  # the global models took part


def test_every_po_line_reproduces_the_policy_arithmetic(in_demo) -> None:
    rt, s = in_demo
    plan = s["plan"]
    assert plan["purchase_orders"] > 0 and plan["lines"] > 0
    lines = rt.orders.po_lines(date.fromisoformat(plan["plan_date"]))
    assert lines.height == plan["lines"]
    for r in lines.iter_rows(named=True):
        target = r["demand_mean"] + r["safety_stock"]
        assert math.isclose(target, r["target_level"], abs_tol=1e-4)
        need = max(0.0, target - (r["on_hand"] + r["on_order"]))
        assert math.isclose(need, r["raw_need"], abs_tol=1e-4)
        qty = math.ceil(need / r["pack_size"] - 1e-6) * r["pack_size"]
        if 0 < qty < r["moq_units"]:
            qty = math.ceil(r["moq_units"] / r["pack_size"]) * r["pack_size"]
        qty += r["capacity_adjustment"] + r["shelf_life_adjustment"]
        qty += r["moq_cancel_adjustment"] + r["min_order_fill"] + r["budget_adjustment"]
        assert r["quantity"] == round(qty) > 0
        assert r["model_version"] == plan["model_version"]
    csv = pl.read_csv(plan["csv_path"])
    assert csv.height == lines.height and "safety_stock" in csv.columns


def test_the_explanation_shown_for_every_demo_line_adds_up_to_its_quantity(in_demo) -> None:
    """What the API (and so the page) shows for each line of the demo plan: the steps from
    the need to the quantity, whose changes add up to it, and the sentence saying so."""
    from fastapi.testclient import TestClient

    from replen.app import create_app

    rt, s = in_demo
    client = TestClient(create_app(rt.settings))
    # Signed in as the demo's local admin, as a user would at the page.
    password = Path(s["access"]["password_file"]).read_text().strip()
    grant = {"grant_type": "password", "username": "admin", "password": password}
    token = client.post("/v1/oauth/token", data=grant).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    # The first plan's POs went through the fake ERP (received); the next plan's wait.
    statuses = ["suggested", "approved", "exported", "acknowledged", "received"]
    queue = client.get("/v1/orders", params={"page_size": 500, "status": statuses}).json()
    plans = (s["plan"], s["next_plan"])
    assert queue["total"] == sum(p["purchase_orders"] for p in plans)
    checked = 0
    for item in queue["items"]:
        for line in client.get(f"/v1/orders/{item['po_id']}").json()["lines"]:
            total = sum(step["change"] for step in line["steps"])
            assert math.isclose(total, line["quantity"], abs_tol=1e-4), line["steps"]
            assert line["steps"][-1]["total"] == line["quantity"]
            assert line["sentence"].startswith(f"order {line['quantity']:,} = ")
            for step in line["steps"][1:]:
                assert step["text"] in line["sentence"]
            checked += 1
    assert checked == sum(p["lines"] for p in plans)


def test_rerun_is_idempotent(demo) -> None:
    cwd, first = demo
    proc = _replen("demo", *SIZE, "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout.strip().splitlines()[-1])
    assert again["ingest"]["accepted"] == 0
    assert again["ingest"]["duplicates"] == first["ingest"]["accepted"]
    assert again["ingest"]["stock_feed"]["duplicates"] == first["ingest"]["stock_feed"]["accepted"]
    # The first plan's POs were approved and went through the ERP: kept, never resent.
    assert again["plan"]["kept_reviewed"] == first["plan"]["purchase_orders"]
    assert again["plan"]["purchase_orders"] == 0
    assert (again["erp"]["approved"], again["erp"]["delivered"]) == (0, 0)
    assert again["next_plan"]["plan_date"] == first["next_plan"]["plan_date"]
    assert again["next_plan"]["replaced"] == first["next_plan"]["purchase_orders"]
    assert again["next_plan"]["lines"] == first["next_plan"]["lines"]


def test_other_parameters_need_reset(demo) -> None:
    cwd, _ = demo
    proc = _replen("demo", "--stores", "3", "--skus", "4", "--days", "200", cwd=cwd)
    assert proc.returncode == 4  # Conflict: the data directory holds another demo
    assert "--reset" in proc.stderr


def test_help_lists_commands(tmp_path) -> None:
    proc = _replen("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for cmd in ("demo", "generate", "ingest", "features", "train", "forecast", "plan", "orders"):
        assert cmd in proc.stdout


def test_the_demo_signs_the_shell_in_as_its_local_admin(demo) -> None:
    cwd, summary = demo
    access = summary["access"]
    assert access["sub"] == "user:admin"
    for path in (access["password_file"], access["credentials"]):
        assert Path(path).stat().st_mode & 0o777 == 0o600
    who = _replen("whoami", "--json", cwd=cwd)
    assert who.returncode == 0 and json.loads(who.stdout)["sub"] == "user:admin"

    heads = json.loads(_replen("orders", "list", "--json", cwd=cwd).stdout)["purchase_orders"]
    po = next(h["po_id"] for h in heads if h["status"] == "suggested")
    password = Path(access["password_file"]).read_text().strip()
    made = subprocess.run(
        [
            replen_exe(),
            "users",
            "create",
            "bob",
            "--role",
            "planner",
            "--password-stdin",
        ],
        cwd=cwd,
        input="bobs-password-1234\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    env = {"REPLEN_USERNAME": "bob", "REPLEN_PASSWORD": "bobs-password-1234"}
    as_bob = subprocess.run(
        [replen_exe(), "orders", "approve", str(po)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert as_bob.returncode == 7 and "orders:approve" in as_bob.stderr  # a planner may not
    approved = _replen("orders", "approve", str(po), "--json", cwd=cwd)
    assert approved.returncode == 0, approved.stderr
    shown = json.loads(_replen("orders", "show", str(po), "--json", cwd=cwd).stdout)
    assert shown["history"][-1]["actor"] == "user:admin"
    assert password not in approved.stdout + approved.stderr


def test_the_loop_closes_through_the_fake_erp(in_demo) -> None:
    """plan → approve → deliver → acknowledge → receive → the next plan sees the receipts."""
    rt, s = in_demo
    erp, plan, follow = s["erp"], s["plan"], s["next_plan"]
    assert erp["approved"] == erp["delivered"] == plan["purchase_orders"] > 0
    assert erp["acknowledged"]["accepted"] == erp["received"]["accepted"] == plan["lines"]
    heads = rt.orders.purchase_orders(date.fromisoformat(plan["plan_date"]))
    assert set(heads["status"]) == {"received"} and heads["erp_ref"].is_not_null().all()
    fake = sorted(
        (o["po_id"], o["name"]) for o in _fake_orders(rt.settings.data_dir / "fake-erp" / "erp.db")
    )
    assert fake == sorted(zip(heads["po_id"], heads["erp_ref"], strict=True))  # once each
    ex = follow["example"]
    assert ex["on_hand_after"] == ex["on_hand_before"] + ex["received"]  # the receipt is seen
    assert ex["ordered_next"] < ex["ordered"]
    assert follow["plan_date"] > plan["plan_date"]


def _fake_orders(path: Path) -> list[dict]:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT po_id, name FROM orders")]
