"""The real scheduler process, killed with SIGKILL during jobs and restarted."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import time
from datetime import datetime, timedelta

import pytest

from jobs.ledger import RunLedger

pytestmark = pytest.mark.slow


def _env(settings) -> dict[str, str]:
    return {
        **os.environ,
        "REPLEN_DATA_DIR": str(settings.data_dir),
        "REPLEN_SCHEDULES": json.dumps({"probe": "every 2s"}),
        "REPLEN_PROBE_SECONDS": "1.2",
        "REPLEN_CATCH_UP_MAX": "1000",
        "REPLEN_SCHEDULER_LOCK_TTL_SECONDS": "5",
    }


def _start(env) -> subprocess.Popen:
    exe = shutil.which("replen")
    assert exe
    return subprocess.Popen(
        [exe, "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_every_slot_completes_exactly_once_across_kill_9(settings) -> None:
    env = _env(settings)
    rng = random.Random(7)
    for _ in range(4):
        proc = _start(env)
        time.sleep(rng.uniform(3.0, 6.0))  # startup ~2 s, then jobs every 2 s for 1.2 s
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = _start(env)
    time.sleep(7)
    final.send_signal(signal.SIGTERM)
    final.wait(60)

    runs = RunLedger(settings.db_url).history("probe", limit=10_000)
    slots = sorted(datetime.fromisoformat(r["slot"]) for r in runs)
    assert len(slots) >= 8
    assert [r for r in runs if r["status"] != "succeeded"] == []
    assert len(set(slots)) == len(slots), "a slot ran twice"
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert set(gaps) == {timedelta(seconds=2)}, "a slot was missed"
    assert any(r["attempts"] > 1 for r in runs), "no run was interrupted: the test proved little"


def test_a_second_scheduler_refuses_to_start(settings) -> None:
    settings.ensure_dirs()
    env = _env(settings)
    first = _start(env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not RunLedger(settings.db_url).history("probe"):
            time.sleep(0.5)
        second = _start(env)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 4  # Conflict: the job store is held
        assert "another scheduler" in err and str(first.pid) in err
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
