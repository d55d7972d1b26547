"""ERP delivery throughput: approved POs delivered per second through the fake ERP's webhook by
Replen's outbox (claim, lease, sign, send, record, exactly once), against raw HTTP POSTs of
the same documents to the same fake ERP in the same run; then the same with faults."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import polars as pl
from _common import emit

FAULTS = {"drop": 0.10, "error": 0.05, "throttle": 0.05, "slow": 0.02}
DAY = date(2024, 1, 1)


def _approved_pos(url: str, n: int, seed: int) -> list[int]:
    """``n`` approved POs of 1–3 lines each (one per store), in the database at ``url``."""
    from replen.db import upgrade
    from replenishment.orders import OrderStore
    from replenishment.planner import Suggestion

    upgrade(url)
    rng = random.Random(seed)
    heads, lines = [], []
    for i in range(n):
        store, value = f"S{i:06d}", 0.0
        for sku in sorted(rng.sample([f"K{j:03d}" for j in range(50)], rng.randint(1, 3))):
            qty = rng.randint(1, 40) * 6
            lines.append(
                {
                    "supplier_id": "A",
                    "store_id": store,
                    "sku_id": sku,
                    "quantity": qty,
                    "unit_cost": 1.25,
                    "value": qty * 1.25,
                }
            )
            value += qty * 1.25
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
    store = OrderStore(url)
    store.replace_suggestions(DAY, Suggestion(pl.DataFrame(heads), frame, frame, frame))
    ids = store.purchase_orders(DAY)["po_id"].to_list()
    approved, _ = store.approve_many(ids, "bench")
    return approved


def _documents(url: str, ids: list[int]) -> list[dict]:
    from kernel.sql import engine_for, read_session
    from replenishment.erp.payload import build_payloads
    from replenishment.orders import delivery_key

    with read_session(engine_for(url)) as session:
        docs = build_payloads(session, [(i, delivery_key(i, 1)) for i in ids])
    return [docs[i] for i in ids]


def baseline(docs: list[dict], target: str, secret: str, concurrency: int) -> float:
    """Raw signed POSTs of the documents, ``concurrency`` at a time: the fake ERP's pace."""
    from replenishment.erp.adapters import canonical_json, sign

    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrency))

    def post(doc: dict) -> int:
        body = canonical_json(doc)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": doc["idempotency_key"],
            "X-Replen-Timestamp": stamp,
            "X-Replen-Signature": sign(secret, stamp, body),
        }
        return client.post(target, content=body, headers=headers).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        codes = Counter(pool.map(post, docs))
    seconds = time.perf_counter() - started
    client.close()
    assert codes == {201: len(docs)}, codes
    return seconds


def replen(url: str, target: str, secret: str, concurrency: int, batch: int) -> tuple[float, dict]:
    """Replen's delivery loop until the outbox is empty; seconds and what it did."""
    from replenishment.erp.adapters import WebhookAdapter
    from replenishment.erp.delivery import run_loop
    from replenishment.erp.outbox import Outbox, RetryPolicy

    outbox = Outbox(url)
    policy = RetryPolicy(base_seconds=0.05, cap_seconds=1.0, max_attempts=100, lease_seconds=30)
    adapter = WebhookAdapter(target, secret, timeout=0.5, max_connections=concurrency)
    stop = threading.Event()
    result: dict = {}

    def work() -> None:
        result["report"] = run_loop(
            outbox,
            adapter,
            policy,
            stop=stop,
            poll_seconds=0.05,
            batch_size=batch,
            concurrency=concurrency,
        )

    started = time.perf_counter()
    thread = threading.Thread(target=work)
    thread.start()
    while outbox.counts().get("pending"):
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    stop.set()
    thread.join()
    adapter.close()
    return seconds, result["report"].to_dict() | {"outbox": outbox.counts()}


def _exactly_once(erp, ids: list[int]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    per_po = Counter(o["po_id"] for o in erp.orders())
    return {
        "doubled": sum(1 for n in per_po.values() if n > 1),
        "lost": len(set(ids) - set(per_po)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pos", type=int, default=10_000, help="approved POs per run")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--batch", type=int, default=50, help="deliveries claimed at once")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()

    from replen.fake_erp import FakeErp

    figures: dict[str, object] = {"pos": args.pos, "concurrency": args.concurrency}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        clean_db, faulty_db = f"sqlite:///{root / 'clean.db'}", f"sqlite:///{root / 'faulty.db'}"
        clean_ids = _approved_pos(clean_db, args.pos, seed=1)
        faulty_ids = _approved_pos(faulty_db, args.pos, seed=2)
        docs = _documents(clean_db, clean_ids)
        figures["setup_seconds"] = round(time.perf_counter() - started, 1)

        with FakeErp(root / "erp-base") as erp:
            base = baseline(docs, erp.webhook_url, erp.secret or "", args.concurrency)
        with FakeErp(root / "erp-clean") as erp:
            clean, _clean_report = replen(
                clean_db, erp.webhook_url, erp.secret or "", args.concurrency, args.batch
            )
            clean_check = _exactly_once(erp, clean_ids)
        with FakeErp(root / "erp-faulty") as erp:
            erp.set_faults(**FAULTS, retry_after=1, slow_seconds=1.0)
            faulty, faulty_report = replen(
                faulty_db, erp.webhook_url, erp.secret or "", args.concurrency, args.batch
            )
            faulty_check = _exactly_once(erp, faulty_ids)
            faults = Counter(r["fault"] for r in erp.requests())

    n = args.pos
    figures |= {
        "baseline_pos_per_s": round(n / base, 1),
        "replen_pos_per_s": round(n / clean, 1),
        "replen_faults_pos_per_s": round(n / faulty, 1),
        "ratio_replen_vs_baseline": round(base / clean, 3),
        "ratio_faults_vs_clean": round(clean / faulty, 3),
        "attempts_per_po_with_faults": round(faulty_report["attempts"] / n, 2),
        "faults_injected": dict(faults),
        "doubled": clean_check["doubled"] + faulty_check["doubled"],
        "lost": clean_check["lost"] + faulty_check["lost"],
    }
    if not args.json:
        print(f"{n:,} POs, {args.concurrency} in flight, webhook to the fake ERP on loopback")
        print(f"  baseline (raw signed POSTs)  {figures['baseline_pos_per_s']:>8} POs/s")
        print(
            f"  Replen outbox, no faults     {figures['replen_pos_per_s']:>8} POs/s  "
            f"(× {figures['ratio_replen_vs_baseline']} of baseline)"
        )
        print(
            f"  Replen outbox, with faults   {figures['replen_faults_pos_per_s']:>8} POs/s  "
            f"(× {figures['ratio_faults_vs_clean']} of no faults; "
            f"{figures['attempts_per_po_with_faults']} attempts per PO)"
        )
        print(f"  doubled {figures['doubled']}, lost {figures['lost']}; faults {dict(faults)}")
    emit(figures)
    if figures["doubled"] or figures["lost"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
