"""The README's "A day in production", run verbatim from an empty directory on files a
retailer has (rules, POS history, stock positions, names): it produces POs, the ERP gets them,
its answers come back; a store×SKU without a stock position is unplanned, not ordered."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

NO_POSITION = ("S001", "SKU00001")  # sold, has a rule, but the ERP sent no position
NO_RULE = "SKU00006"  # sold, has a position, but no item rule


def readme_block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- day-in-production:{name} -->\s*```bash\n(.*?)```", text, re.S)
    assert found, f"README has no block marked day-in-production:{name}"
    return found.group(1)


def _retailer_files(folder: Path) -> None:
    """What a retailer exports from its own systems (no Replen-generated master data)."""
    from replen.synthetic import generate

    chain = generate(stores=2, skus=6, days=200, seed=11, end=date.today() - timedelta(days=2))
    suppliers = chain.suppliers.select(
        "supplier_id", "name", "lead_time_mean", "lead_time_std", "order_days", "currency"
    )
    items = chain.items.filter(pl.col("sku_id") != NO_RULE).select(
        "sku_id", "supplier_id", "unit_cost", "pack_size", "moq_units"
    )
    rules = {"suppliers": suppliers.to_dicts(), "items": items.to_dicts()}
    (folder / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    chain.pos.with_columns(pl.col("sold_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")).write_csv(
        folder / "sales_history.csv"
    )
    chain.stock.filter(
        ~((pl.col("store_id") == NO_POSITION[0]) & (pl.col("sku_id") == NO_POSITION[1]))
    ).with_columns(pl.col("as_of").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")).write_csv(
        folder / "stock_positions.csv"
    )
    chain.item_master().write_csv(folder / "items.csv")
    chain.store_master().write_csv(folder / "stores.csv")


def _run(block: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLEN_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["USER"] = "planner"
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _answer_as_the_erp(cwd: Path) -> int:
    """Read the POs dropped in erp-inbox/, write what the ERP sends back."""
    acks, receipts = [], []
    now = datetime.now(UTC)
    docs = [json.loads(p.read_text()) for p in sorted((cwd / "erp-inbox").glob("*.json"))]
    for doc in docs:
        due = datetime.fromisoformat(doc["expected_delivery"]).replace(tzinfo=UTC)
        received = min(due + timedelta(hours=10), now - timedelta(minutes=1))
        for line in doc["lines"]:
            acks.append(
                {
                    "po_id": doc["po_id"],
                    "erp_po_number": f"ERP-{doc['po_id']}",
                    "sku_id": line["sku_id"],
                    "confirmed_quantity": line["quantity"],
                }
            )
            receipts.append(
                {
                    "receipt_id": f"GR-{doc['po_id']}",
                    "po_id": doc["po_id"],
                    "sku_id": line["sku_id"],
                    "quantity": line["quantity"],
                    "received_at": received.isoformat(),
                }
            )
    pl.DataFrame(acks).write_csv(cwd / "erp_acks.csv")
    pl.DataFrame(receipts).write_csv(cwd / "erp_receipts.csv")
    return len(docs)


def test_a_day_in_production_runs_verbatim_on_a_retailers_files(tmp_path, monkeypatch) -> None:
    _retailer_files(tmp_path)
    assert not (tmp_path / ".replen").exists()
    morning = _run(readme_block("morning"), tmp_path)
    assert "order" in morning.stdout and "Article" in morning.stdout  # names on screen

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from jobs.runtime import Runtime
    from replen.settings import Settings
    from replenishment.erp.payload import validate_payload

    rt = Runtime(Settings(data_dir=tmp_path / ".replen", mlflow_dir=tmp_path / "mlflow"))
    heads = rt.orders.purchase_orders()
    assert heads.height >= 1 and heads.filter(pl.col("po_id") == 1)["status"][0] == "exported"
    lines = rt.orders.po_lines()
    assert lines.filter(
        (pl.col("store_id") == NO_POSITION[0]) & (pl.col("sku_id") == NO_POSITION[1])
    ).is_empty(), "a store×SKU without a stock position was ordered"
    assert lines.filter(pl.col("sku_id") == NO_RULE).is_empty()
    unplanned = {
        (r["store_id"], r["sku_id"]): r["reason"] for r in rt.orders.unplanned().to_dicts()
    }
    assert unplanned[NO_POSITION] == "no_position"
    assert {v for (_, sku), v in unplanned.items() if sku == NO_RULE} == {"no_rule"}
    assert "no_position" in morning.stdout

    dropped = json.loads((tmp_path / "erp-inbox" / "replen-po-1-r1.json").read_text())
    assert validate_payload(dropped) == []
    assert all(line["name"] and line["name"].startswith("Article") for line in dropped["lines"])
    assert dropped["store"]["name"] and dropped["supplier"]["name"]

    assert _answer_as_the_erp(tmp_path) == 1  # only PO 1 was approved
    answers = _run(readme_block("erp-answers"), tmp_path)
    heads = rt.orders.purchase_orders()
    po1 = heads.filter(pl.col("po_id") == 1).row(0, named=True)
    assert (po1["status"], po1["erp_ref"]) == ("received", "ERP-1")
    assert dropped["supplier"]["supplier_id"] in answers.stdout  # lead-time table
