"""Planner API latency on loopback: p50/p95 of the main calls against /healthz, same run.

Builds the demo chain scaled ×``--scale`` (demo: 5 stores × 40 SKUs; ×10 = 50 stores),
ingests its POS lines into the lake and plans it (real rules, spans, lead-time demand,
policy and PO store; a naive 28-day-mean forecast stands in for the MLflow champion, which
does not change what the API reads). Then starts `uvicorn` (real process) and times, per
route, ``--requests`` sequential calls from one client: the queue (default and filtered),
PO detail, the store×SKU view, exceptions, a line edit and an approval. A second database
holds a plan of ``--lines`` lines (10,000) for the queue alone: its first answer after the
plan (``first``), after a plan-wide change (every line read again) and after a planner's
change (that PO's lines read again).
Aim: every queue answer under 1 s. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from _common import emit, timed


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(pick(0.95) * 1000, 2),
        "n": len(ordered),
    }


def _sign_in(settings: object, client: httpx.Client) -> None:
    """A real admin in the served database, signed in through the token endpoint: every
    timed call carries its bearer token (the door check is part of the figure)."""
    from replen.auth.store import IdentityStore
    from replen.db import connect

    password = "benchmark-password-1"
    IdentityStore(connect(settings.db_url)).create(  # type: ignore[attr-defined]
        "user", "bench", roles=["admin"], stores=["*"], actor="bench:setup", secret=password
    )
    r = client.post(
        "/v1/oauth/token",
        data={"grant_type": "password", "username": "bench", "password": password},
    )
    r.raise_for_status()
    client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"


def _time(client: httpx.Client, method: str, url: str, n: int, **kw: object) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        r = client.request(method, url, **kw)  # type: ignore[arg-type]
        out.append(time.perf_counter() - started)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:300]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10, help="× the demo's 5 stores")
    parser.add_argument("--skus", type=int, default=40)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=30, help="calls per route")
    parser.add_argument("--lines", type=int, default=10_000, help="lines of the big queue")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    say = (lambda *a: None) if args.json else print

    from replen.settings import Settings
    from tests.e2e.page_server import serve
    from tests.planner_chain import DAY, big_plan, build_planner_chain

    figures: dict[str, object] = {"scale": args.scale, "skus": args.skus, "days": args.days}
    with tempfile.TemporaryDirectory(prefix="replen-planner-bench-") as tmp:
        root = Path(tmp)
        chain = Settings(data_dir=root / "chain", mlflow_dir=root / "mlflow")
        seconds, made = timed(
            lambda: build_planner_chain(
                chain, stores=5 * args.scale, skus=args.skus, days=args.days, seed=7
            )
        )
        figures |= {
            "series": 5 * args.scale * args.skus,
            "purchase_orders": made["purchase_orders"],
            "lines": made["lines"],
            "build_seconds": round(seconds, 1),
        }
        say(f"planned in {seconds:.0f} s: {made['purchase_orders']} POs, {made['lines']} lines")
        env = {"REPLEN_DATA_DIR": str(root / "chain"), "REPLEN_MLFLOW_DIR": str(root / "mlflow")}
        routes: dict[str, dict[str, float]] = {}
        with serve(env, root) as url, httpx.Client(base_url=url, timeout=60) as client:
            _sign_in(chain, client)
            n = args.requests
            started = time.perf_counter()
            client.get("/v1/orders").raise_for_status()
            figures["queue_cold_ms"] = round((time.perf_counter() - started) * 1000, 1)
            items = client.get("/v1/orders", params={"page_size": 500}).json()["items"]
            po = client.get(f"/v1/orders/{items[0]['po_id']}").json()
            sku = po["lines"][0]["sku_id"]
            supplier = items[0]["supplier_id"]
            plan = [
                ("healthz", "GET", "/healthz", {}),
                ("queue", "GET", "/v1/orders", {}),
                (
                    "queue_filtered",
                    "GET",
                    "/v1/orders",
                    {"params": {"supplier_id": supplier, "sort": "value_at_risk", "page": 2}},
                ),
                ("po_detail", "GET", f"/v1/orders/{po['po_id']}", {}),
                ("item_view", "GET", f"/v1/items/{po['store_id']}/{sku}", {}),
                ("exceptions", "GET", "/v1/exceptions", {}),
            ]
            for name, method, path, kw in plan:
                _time(client, method, path, 2, **kw)  # warm
                routes[name] = _percentiles(_time(client, method, path, n, **kw))
            edits = []
            for i in range(n):
                body = {"quantity": po["lines"][0]["quantity"] + i + 1, "reason": "benchmark"}
                edits += _time(client, "PUT", f"/v1/orders/{po['po_id']}/lines/{sku}", 1, json=body)
            routes["edit_line"] = _percentiles(edits)
            routes["queue_after_edit"] = _percentiles(_time(client, "GET", "/v1/orders", n))
            approvals = []
            for item in items[1 : 1 + min(n, len(items) - 1)]:
                approvals += _time(client, "POST", f"/v1/orders/{item['po_id']}/approve", 1)
            routes["approve"] = _percentiles(approvals)
        base = routes["healthz"]["p50_ms"]
        for r in routes.values():
            r["x_healthz_p50"] = round(r["p50_ms"] / base, 1)
        figures["routes"] = routes

        big = Settings(data_dir=root / "big", mlflow_dir=root / "mlflow")
        from jobs.runtime import Runtime

        rt = Runtime(big)
        stores = max(1, args.lines // 40)
        plan_big = big_plan(stores=stores, skus=40)
        rt.orders.replace_suggestions(DAY, plan_big)
        env = {"REPLEN_DATA_DIR": str(root / "big"), "REPLEN_MLFLOW_DIR": str(root / "mlflow")}
        with serve(env, root) as url, httpx.Client(base_url=url, timeout=60) as client:
            _sign_in(big, client)
            client.get("/healthz")
            first = _time(client, "GET", "/v1/orders", 1)[0]
            cold = []
            for _ in range(5):
                rt.orders.mark_stale("bench")  # a plan-wide change: every line is read again
                cold += _time(client, "GET", "/v1/orders", 1)
            warm = []
            for i in range(min(args.requests, 20)):
                rt.orders.edit_line(i + 1, plan_big.lines["sku_id"][0], 5 + i, "bench", "change")
                warm += _time(client, "GET", "/v1/orders", 1)
            cached = _time(client, "GET", "/v1/orders", args.requests)
            health = _time(client, "GET", "/healthz", args.requests)
        figures["big_queue"] = {
            "lines": plan_big.lines.height,
            "first_ms": round(first * 1000, 1),
            "after_plan_change": _percentiles(cold),
            "after_change": _percentiles(warm),
            "unchanged": _percentiles(cached),
            "healthz": _percentiles(health),
        }
    say(f"routes: {figures['routes']}")
    say(f"big queue: {figures['big_queue']}")
    os.environ.pop("REPLEN_DATA_DIR", None)
    emit(figures)


if __name__ == "__main__":
    main()
