"""Crash safety and replay: kill -9 mid-ingest loses nothing; Feast can be rebuilt exactly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from datetime import timedelta

import polars as pl
import pytest
from support import replen_exe, wait_for

from features.sales import velocity
from jobs.refresh import ingest_pos, rebuild_features
from jobs.runtime import Runtime
from replen.synthetic import generate

pytestmark = pytest.mark.slow


def test_kill_9_at_random_points_then_resend_loses_and_doubles_nothing(settings, tmp_path, procs):
    chain = generate(stores=2, skus=6, days=150, seed=9)
    pos = chain.pos.head(6000)
    path = tmp_path / "pos.csv"
    pos.with_columns(pl.col("sold_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.f%:z")).write_csv(path)
    env = {**os.environ, "REPLEN_DATA_DIR": str(settings.data_dir)}
    cmd = [replen_exe(), "ingest", "pos", str(path), "--chunk-rows", "150", "--no-push", "--json"]
    manifests = settings.lake_dir / "_manifests"

    def committed() -> int:
        return len(list(manifests.glob("*.json"))) if manifests.exists() else 0

    rng = random.Random(1)
    kills = 0
    for _ in range(5):
        proc = procs.start(cmd, env=env)
        # Kill at a random batch boundary or inside one: after 1–4 more batches commit.
        target = committed() + rng.randint(1, 4)
        wait_for(lambda t=target, p=proc: committed() >= t or p.poll() is not None, what="a commit")
        if proc.poll() is None:
            procs.signal(proc, signal.SIGKILL)
            kills += 1
        proc.wait()
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    summary = pl.Series([final.stdout]).str.json_decode()[0]
    assert summary["received"] == pos.height
    assert summary["accepted"] + summary["duplicates"] == pos.height
    assert kills >= 3, "the ingests finished before they could be killed: make the file larger"

    events = Runtime(settings).lake.scan_events().collect()
    assert events.height == pos.height
    assert events["event_id"].is_unique().all()
    assert events["quantity"].sum() == pos["quantity"].sum()


def test_shuffled_and_late_replay_keeps_online_velocity_exact(settings):
    chain = generate(stores=3, skus=8, days=60, seed=4)
    rt = Runtime(settings)
    pos = chain.pos.sample(fraction=1.0, shuffle=True, seed=2)
    # Hold back a tenth of the lines and send them late (up to 48 h after their time).
    newest = pos["sold_at"].max()
    late_mask = (pl.int_range(pos.height, eager=True) % 10 == 0) & (
        pos["sold_at"] > newest - timedelta(hours=48)
    )
    on_time, late = pos.filter(~late_mask), pos.filter(late_mask)
    for part in (on_time.head(on_time.height // 2), on_time.tail(on_time.height // 2 + 1), late):
        ingest_pos(rt, part, chunk_rows=2000)

    def check() -> None:
        expected = velocity(rt.history()).sort("store_id", "sku_id")
        online = rt.features.online_velocity(expected.select("store_id", "sku_id"))
        online = online.sort("store_id", "sku_id")
        assert online.height == expected.height == 24
        for col in ("units_1d", "units_7d", "units_28d", "days_since_last_sale"):
            assert online[col].to_list() == expected[col].to_list(), col

    check()
    (settings.feast_dir / "online_store.db").unlink()  # lose the cache entirely
    rebuild_features(Runtime(settings))
    check()
