"""Helpers of the ERP tests: bulk POs, the delivery worker process, waiting for events."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

from replenishment.planner import Suggestion

DAY = date(2024, 1, 1)


def suggestion_of(n_pos: int, skus: int = 20, seed: int = 0, poison: int = 0) -> Suggestion:
    """``n_pos`` POs of supplier A (one per store), 1–3 lines each; the first ``poison``
    POs also carry the SKU ``BAD1``, which the ERP refuses."""
    rng = random.Random(seed)
    heads, lines = [], []
    for i in range(n_pos):
        store = f"S{i + 1:05d}"
        chosen = rng.sample([f"K{j:03d}" for j in range(skus)], rng.randint(1, 3))
        if i < poison:
            chosen.append("BAD1")
        value = 0.0
        for sku in sorted(chosen):
            qty = rng.randint(1, 40) * 6
            value += qty * 1.5
            lines.append(
                {
                    "supplier_id": "A",
                    "store_id": store,
                    "sku_id": sku,
                    "quantity": qty,
                    "unit_cost": 1.5,
                    "value": qty * 1.5,
                }
            )
        heads.append(
            {
                "supplier_id": "A",
                "store_id": store,
                "order_date": DAY,
                "expected_delivery": date(2024, 1, 5),
                "currency": "EUR",
                "value": value,
                "model_version": "1",
            }
        )
    frame = pl.DataFrame(lines)
    return Suggestion(headers=pl.DataFrame(heads), lines=frame, evaluated=frame, held=frame)


class Worker:
    """``replen erp deliver --loop`` in its own process group, killed or stopped at will."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "replen.cli", "erp", "deliver", "--loop"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=30)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for an event (never a fixed sleep), polling; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
