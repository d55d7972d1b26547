"""POS events from a Redis stream: acknowledged only after the lake commit, so a crash at
any point loses nothing and doubles nothing (the lake is idempotent by event_id)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import polars as pl
import pytest
from support import replen_exe

from features.streams import RedisStreamSource
from jobs.consume import consume_pos
from jobs.runtime import Runtime

pytestmark = pytest.mark.slow

STREAM, GROUP = "test:pos", "replen-ingest"


def _publish(url: str, events: pl.DataFrame) -> None:
    import redis

    client = redis.Redis.from_url(url)
    rows = events.with_columns(pl.col("sold_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.f%:z"))
    with client.pipeline(transaction=False) as pipe:
        for row in rows.iter_rows(named=True):
            pipe.xadd(STREAM, {k: str(v) for k, v in row.items() if v is not None})
        pipe.execute()


class CrashBeforeAck(RedisStreamSource):
    """Dies like a killed process would: after the lake commit, before acknowledging."""

    def ack(self, messages) -> None:  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt("killed between commit and acknowledgement")


def test_a_crash_between_commit_and_ack_redelivers_as_duplicates(settings, redis_url, chain):
    events = chain.pos.head(500)
    _publish(redis_url, events)
    rt = Runtime(settings)
    with pytest.raises(KeyboardInterrupt):
        consume_pos(rt, CrashBeforeAck(redis_url, STREAM, GROUP, "c1"), batch_max=200)
    source = RedisStreamSource(redis_url, STREAM, GROUP, "c1")
    assert source.pending() == 200  # committed in the lake, not acknowledged
    assert rt.lake.scan_events().collect().height == 200

    totals = consume_pos(rt, source, batch_max=200, block_ms=100, until_idle=0.5)
    assert (totals.received, totals.accepted, totals.duplicates) == (500, 300, 200)
    assert source.pending() == 0
    lake = rt.lake.scan_events().collect()
    assert lake.height == 500 and lake["event_id"].is_unique().all()


def test_entries_left_by_a_dead_consumer_are_claimed(settings, redis_url, chain):
    _publish(redis_url, chain.pos.head(50))
    rt = Runtime(settings)
    with pytest.raises(KeyboardInterrupt):
        consume_pos(rt, CrashBeforeAck(redis_url, STREAM, GROUP, "dead"), batch_max=50)
    other = RedisStreamSource(redis_url, STREAM, GROUP, "alive", claim_idle_ms=0)
    totals = consume_pos(rt, other, block_ms=100, until_idle=0.5)
    assert (totals.accepted, totals.duplicates, other.pending()) == (0, 50, 0)


def test_bad_entries_are_quarantined_with_the_entry_as_received(settings, redis_url, chain):
    events = chain.pos.head(20).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(0.0).otherwise("quantity").alias("quantity")
    )
    _publish(redis_url, events)
    rt = Runtime(settings)
    source = RedisStreamSource(redis_url, STREAM, GROUP, "c1")
    totals = consume_pos(rt, source, block_ms=100, until_idle=0.5)
    assert (totals.accepted, totals.rejected, source.pending()) == (19, 1, 0)
    bad = rt.lake.quarantine().row(0, named=True)
    assert bad["rule"] == "quantity.nonzero"
    assert json.loads(bad["payload"])["event_id"] == events["event_id"][3]

    _publish(redis_url, events)  # the producer sends the same entries again
    resent = consume_pos(rt, source, block_ms=100, until_idle=0.5)
    assert (resent.duplicates, resent.rejected, resent.already_quarantined) == (19, 1, 1)
    assert rt.lake.quarantine().height == 1


def test_kill_9_at_random_points_loses_and_doubles_nothing(settings, redis_url, chain):
    events = chain.pos
    _publish(redis_url, events)
    exe = replen_exe()
    env = {
        **os.environ,
        "REPLEN_DATA_DIR": str(settings.data_dir),
        "REPLEN_REDIS_URL": redis_url,
        "REPLEN_POS_STREAM": STREAM,
    }
    cmd = [exe, "consume", "pos", "--consumer", "till-1", "--batch", "20", "--json"]
    rng = random.Random(7)
    lake = Runtime(settings).lake
    mid_stream_kills = 0
    for _ in range(4):
        before = len(lake.pos_batches())
        target = before + rng.randint(1, 25)  # kill somewhere in the batch after this one
        proc = subprocess.Popen(
            [*cmd, "--until-idle", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if len(lake.pos_batches()) >= target:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            mid_stream_kills += 1
        proc.wait()
    final = subprocess.run(
        [*cmd, "--until-idle", "2"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    summary = json.loads(final.stdout.strip().splitlines()[-1])
    assert mid_stream_kills >= 1, "no run was killed while consuming: publish more events"

    lake = Runtime(settings).lake.scan_events().collect()
    assert lake.height == events.height
    assert lake["event_id"].is_unique().all()
    assert lake["quantity"].sum() == pytest.approx(events["quantity"].sum())
    assert RedisStreamSource(redis_url, STREAM, GROUP, "till-1").pending() == 0
    assert summary["rejected"] == 0
