"""What the retrain's data checks mask reaches the planner as data exceptions.

A chain whose last four weeks are a placeholder block (half the level, no weekly cycle) is
retrained for real (statsforecast, MLflow); the block then shows in `GET /v1/exceptions`
as ``suspect_history`` for the whole chain, dated by its first day, and a confirmation
clears it for good; a retrain on clean history clears it too.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from jobs.exceptions import exceptions
from jobs.retrain import retrain
from jobs.runtime import Runtime
from replen.app import create_app
from replen.settings import Settings
from tests.conftest import AccessKit

pytestmark = pytest.mark.slow


def _history(flat_weeks: int) -> pl.DataFrame:
    """2 stores × 6 SKUs × 280 days of Poisson sales with a retail weekly cycle; the last
    ``flat_weeks`` weeks replaced by half each series' level, flat."""
    rng = np.random.default_rng(5)
    d0 = date(2025, 1, 6)
    days = [d0 + timedelta(days=i) for i in range(280)]
    week = np.array([0.8, 0.8, 0.9, 1.0, 1.2, 1.5, 1.3])
    rows = []
    for store in ("S001", "S002"):
        for k in range(6):
            level = rng.uniform(4, 20)
            units = rng.poisson(level * week[[d.weekday() for d in days]]).astype(float)
            if flat_weeks:
                units[-7 * flat_weeks :] = round(level * 0.5)
            rows.append(
                pl.DataFrame(
                    {
                        "store_id": store,
                        "sku_id": f"SKU{k + 1:05d}",
                        "date": days,
                        "units": units,
                        "price": 2.0 + k,
                    }
                )
            )
    return pl.concat(rows)


def test_a_masked_block_is_a_data_exception_until_confirmed(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=tmp_path / "data", mlflow_dir=tmp_path / "mlflow")
    rt = Runtime(settings)
    assert not [x for x in exceptions(rt) if x["type"] == "suspect_history"]

    history = _history(flat_weeks=4)
    end = history["date"].max()
    summary = retrain(rt, history)
    assert summary.suspect_blocks >= 1

    found = [x for x in exceptions(rt) if x["type"] == "suspect_history"]
    chain = [x for x in found if x["store_id"] is None and x["sku_id"] is None]
    assert len(chain) == 1, found
    block = chain[0]
    start = end - timedelta(days=27)
    assert block["day"] == start
    assert block["key"] == f"suspect_history|chain level_shift_no_cycle|{start}"
    assert f"{start}..{end} (4 weeks)" in block["message"]
    assert "the whole chain" in block["message"] and "masked at retrain" in block["message"]
    assert block["value"] == pytest.approx(0.5, abs=0.15)

    app = create_app(settings)
    client = TestClient(app)
    client.headers.update(AccessKit(settings.db_url).headers(("admin",), ("*",), kind="user"))
    listed = client.get("/v1/exceptions", params={"type": "suspect_history"}).json()
    assert block["key"] in {x["key"] for x in listed}
    assert 'replen_planner_exceptions{type="suspect_history"}' in client.get("/metrics").text
    health = client.get("/v1/data-health").json()
    assert health["problems"]["suspect_history"] == len(found)

    r = client.post("/v1/exceptions/confirm", json={"keys": [block["key"]]}).json()
    assert r == {"marked": 1, "errors": []}
    # Dated by the block's first day: still confirmed on the following days.
    later = date.today() + timedelta(days=3)
    still = exceptions(rt, today=later, state="all", types=["suspect_history"])
    assert {x["key"]: x["state"] for x in still}[block["key"]] == "confirmed"

    retrain(rt, _history(flat_weeks=0))
    assert not exceptions(rt, types=["suspect_history"], state="all")
