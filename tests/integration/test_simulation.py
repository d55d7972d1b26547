"""The what-if end to end: forecasting + the shipped planner on a synthetic chain, and the
`replen simulate` command on files a retailer would have."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from jobs.simulation import Forecaster, what_if
from kernel.errors import InvalidInput
from replenishment.rules import Rules

pytestmark = pytest.mark.slow


def _rules(chain, pack_factor: int = 1) -> Rules:
    items = chain.items.with_columns(pl.col("pack_size") * pack_factor)
    return Rules.from_frames(chain.suppliers.drop("name"), items)


def test_current_and_candidate_rules_replay_the_same_demand_and_forecasts(daily, chain) -> None:
    events: list[tuple[str, int, int]] = []
    report = what_if(
        daily,
        _rules(chain),
        _rules(chain, pack_factor=4),
        days=56,
        backtest_horizon=7,
        on_progress=lambda *e: events.append(e),
    )
    assert report.candidate is not None
    cur, cand = report.current.totals(), report.candidate.totals()
    assert cur["demand"] == cand["demand"] > 0 and report.current.series.height == 16
    assert cand["avg_on_hand_value"] > cur["avg_on_hand_value"]  # bigger packs, more stock
    assert 0 < cur["fill_rate"] <= 1 and cur["orders"] > 0
    assert ("replaying candidate rules", 56, 56) in events and events[0][1] == 0
    # The replay forecasts with the model the retrain made, its global booster included.
    assert report.forecaster.booster is not None
    data = json.loads(json.dumps(report.to_dict()))
    suppliers = data["current"]["suppliers"]
    assert sum(s["orders"] for s in suppliers) == data["current"]["total"]["orders"]
    assert set(data["change"]) >= {"fill_rate", "avg_on_hand_value", "orders"}

    # Forecasts do not depend on the rules: kept, they replay other rules without forecasting.
    kept = Forecaster.from_frame(report.forecaster.frame(), daily, report.start, 56)
    again = what_if(daily, _rules(chain), days=56, forecaster=kept)
    assert again.current.totals() == cur and again.candidate is None
    slow = Rules.from_frames(
        chain.suppliers.drop("name").with_columns(pl.col("lead_time_mean") + 60), chain.items
    )
    with pytest.raises(InvalidInput, match="forecasts look"):
        what_if(daily, _rules(chain), slow, days=56, forecaster=kept)


def _replen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("replen")
    assert exe, "the `replen` console script is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLEN_", "MLFLOW_"))}
    env["REPLEN_DATA_DIR"] = str(cwd / "data")
    return subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_simulate_command_on_a_retailers_files(tmp_path, daily, chain) -> None:
    daily.select("store_id", "sku_id", "date", "units").write_csv(tmp_path / "sales.csv")
    for name, factor in (("rules", 1), ("candidate", 4)):
        (tmp_path / name).mkdir()
        rules = _rules(chain, factor)
        rules.suppliers.write_csv(tmp_path / name / "suppliers.csv")
        rules.items.write_csv(tmp_path / name / "items.csv")

    no_rules = _replen("simulate", "--history", "sales.csv", cwd=tmp_path)
    assert no_rules.returncode == 5 and "--rules FILE" in " ".join(no_rules.stderr.split())

    shutil.copytree(tmp_path / "rules", tmp_path / "bad")
    (tmp_path / "bad" / "items.csv").write_text(
        "sku_id,supplier_id,unit_cost,pack_size\nA,SUP01,1,0\n"
    )
    bad = _replen(
        "simulate", "--history", "sales.csv", "--rules", "rules",
        "--candidate-rules", "bad", cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2 and "bad/items.csv:2: pack_size" in "".join(bad.stderr.split("\n"))

    proc = _replen(
        "simulate", "--history", "sales.csv", "--rules", "rules", "--candidate-rules",
        "candidate", "--days", "56", "--json", "--plot", "whatif.png", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["days"] == 56 and data["series"] == 16
    assert data["candidate"]["total"]["avg_on_hand_value"] > 0
    assert (tmp_path / "whatif.png").stat().st_size > 1000


def test_simulate_replays_a_weekly_history_day_by_day(tmp_path, daily, chain) -> None:
    weekly = (
        daily.sort("date")
        .group_by_dynamic("date", every="1w", group_by=["store_id", "sku_id"])
        .agg(pl.col("units").sum())
    )
    weekly.write_csv(tmp_path / "weekly.csv")
    (tmp_path / "rules").mkdir()
    rules = _rules(chain)
    rules.suppliers.write_csv(tmp_path / "rules" / "suppliers.csv")
    rules.items.write_csv(tmp_path / "rules" / "items.csv")
    proc = _replen(
        "simulate", "--history", "weekly.csv", "--freq", "weekly", "--rules", "rules",
        "--periods", "8", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["days"] == 56 and data["series"] == 16
    replayed = weekly.filter(pl.col("date") > pl.col("date").max() - pl.duration(days=56))
    assert data["current"]["total"]["demand"] == pytest.approx(replayed["units"].sum(), rel=1e-6)


def test_the_latest_what_if_is_on_the_planners_api(tmp_path, daily, chain) -> None:
    from fastapi.testclient import TestClient

    from replen.app import create_app
    from replen.settings import Settings
    from tests.conftest import AccessKit

    daily.select("store_id", "sku_id", "date", "units").write_csv(tmp_path / "sales.csv")
    for name, factor in (("rules", 1), ("candidate", 4)):
        (tmp_path / name).mkdir()
        rules = _rules(chain, factor)
        rules.suppliers.write_csv(tmp_path / name / "suppliers.csv")
        rules.items.write_csv(tmp_path / name / "items.csv")
    settings = Settings(data_dir=tmp_path / "data", mlflow_dir=tmp_path / "mlflow")
    with TestClient(create_app(settings)) as client:
        client.headers.update(AccessKit(settings.db_url).headers(("viewer",)))
        none = client.get("/v1/what-if")
        assert none.status_code == 404 and "replen simulate" in none.json()["hint"]
        proc = _replen(
            "simulate", "--history", "sales.csv", "--rules", "rules", "--candidate-rules",
            "candidate", "--days", "28", "--json", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        printed = json.loads(proc.stdout.strip().splitlines()[-1])
        shown = client.get("/v1/what-if")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["current"]["total"] == printed["current"]["total"]
    assert body["candidate"]["suppliers"] == printed["candidate"]["suppliers"]
    assert body["change"] == pytest.approx(printed["change"])
