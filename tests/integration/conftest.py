"""Fixtures of the ERP tests: approved POs in bulk, a fake ERP process, delivery workers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from erp_helpers import DAY, Worker, suggestion_of


@pytest.fixture()
def approved_pos(db_url: str) -> Callable[..., list[int]]:
    """Store and approve POs: ``approved_pos(n, poison=0)`` → their ids."""
    from replenishment.orders import OrderStore

    def make(n: int, poison: int = 0, seed: int = 0) -> list[int]:
        store = OrderStore(db_url)
        store.replace_suggestions(DAY, suggestion_of(n, poison=poison, seed=seed))
        ids = store.purchase_orders(DAY, status="suggested")["po_id"].to_list()
        approved, refused = store.approve_many(ids, "test-planner")
        assert not refused
        return approved

    return make


@pytest.fixture()
def fake_erp(tmp_path: Path) -> Iterator[object]:
    from replen.fake_erp import FakeErp

    erp = FakeErp(tmp_path / "erp")
    try:
        erp.start()
    except RuntimeError as exc:  # pragma: no cover - environment problem
        pytest.skip(f"the fake ERP could not start: {exc}")
    try:
        yield erp
    finally:
        erp.stop()


@pytest.fixture()
def worker_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLEN_", "MLFLOW_"))}
    env.update(
        REPLEN_DATA_DIR=str(tmp_path / "data"),
        REPLEN_DATABASE_URL=db_url,
        REPLEN_ERP_TIMEOUT_SECONDS="0.5",
        REPLEN_ERP_BACKOFF_BASE_SECONDS="0.05",
        REPLEN_ERP_BACKOFF_CAP_SECONDS="1",
        REPLEN_ERP_LEASE_SECONDS="3",
        REPLEN_ERP_BATCH_SIZE="25",
        REPLEN_ERP_CONCURRENCY="8",
        REPLEN_ERP_POLL_SECONDS="0.2",
        REPLEN_ERP_MAX_ATTEMPTS="200",
    )
    return env


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    started: list[Worker] = []

    def make(env: dict[str, str]) -> Worker:
        w = Worker(env, tmp_path / f"worker{len(started)}.log")
        started.append(w)
        return w

    try:
        yield make
    finally:
        for w in started:
            w.stop()
