"""HTTP batch ingest on loopback: lines/s and acknowledgement-to-online-visibility latency.

Starts `replen serve` (real uvicorn, real lake, real Feast) and, in the same run, a baseline
server that only parses the JSON body (the loopback + HTTP + JSON ceiling). Sends the same
live-looking POS batches to both from concurrent clients and reports lines/s for each, the
ratio, and the server-side latency from acknowledgement to the velocity push being visible
in Feast's online store (p50/p99). Aims: ≥ 20,000 lines/s, p99 < 1 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _common import ROOT, emit, timed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start")


def _batches(n_batches: int, size: int, stores: int, skus: int) -> list[list[dict]]:
    now = datetime.now(UTC) - timedelta(minutes=1)
    out = []
    k = 0
    for b in range(n_batches):
        rows = []
        for i in range(size):
            rows.append(
                {
                    "event_id": f"bench-{b}-{i}",
                    "store_id": f"S{k % stores:03d}",
                    "sku_id": f"SKU{(k * 7) % skus:05d}",
                    "quantity": 1 + k % 3,
                    "sold_at": (now + timedelta(milliseconds=k)).isoformat(),
                    "unit_price": 2.5,
                    "register_id": "R1",
                }
            )
            k += 1
        out.append(rows)
    return out


def _bearer(data_dir: str) -> dict[str, str]:
    """A till identity (pos_ingest, every store) and an admin, straight in the database:
    the till's access token for the posts, the admin's for the ops endpoint."""
    sys.path.insert(0, str(ROOT))
    from jobs.runtime import ensure_schema
    from replen.auth.store import IdentityStore
    from replen.auth.tokens import TokenService

    url = f"sqlite:///{Path(data_dir).resolve() / 'replen.db'}"
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    ensure_schema(url)
    ids = IdentityStore(url)
    tokens = TokenService(ids)
    out = {}
    for name, role in (("bench-till", "pos_ingest"), ("bench-admin", "admin")):
        ids.create("client", name, roles=[role], stores=["*"], actor="system:benchmark")
        principal = ids.principal("client", name)
        assert principal is not None
        out[role] = f"Bearer {tokens.issue_access(principal)[0]}"
    return out


def _send(base: str, batches: list[list[dict]], clients: int, token: str = "") -> tuple[float, int]:
    headers = {"Authorization": token} if token else {}
    with httpx.Client(base_url=base, timeout=120, headers=headers) as http:

        def post(batch: list[dict]) -> int:
            r = http.post("/v1/pos/events", json=batch)
            r.raise_for_status()
            return len(batch)

        seconds, counts = timed(lambda: list(ThreadPoolExecutor(clients).map(post, batches)))
    return seconds, sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--skus", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    batches = _batches(args.batches, args.batch_size, args.stores, args.skus)
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "REPLEN_DATA_DIR": f"{tmp}/data",
            "REPLEN_MLFLOW_DIR": f"{tmp}/ml",
            "REPLEN_RATE_LIMIT_PER_MINUTE": "100000",
        }
        bearer = _bearer(f"{tmp}/data")
        port, base_port = _free_port(), _free_port()
        replen = subprocess.Popen(
            [python, "-m", "replen.cli", "serve", "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        echo = subprocess.Popen(
            [
                python,
                "-m",
                "uvicorn",
                "_echo_app:app",
                "--port",
                str(base_port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT / "benchmarks",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait(f"http://127.0.0.1:{port}/healthz", replen)
            _wait(f"http://127.0.0.1:{base_port}/docs", echo)
            # Warm up both (imports, Feast registry, JIT) outside the measurement.
            warm = _batches(1, 10, 2, 2)
            for w in warm:
                for row in w:
                    row["event_id"] = "warm-" + row["event_id"]
            till, admin = bearer["pos_ingest"], {"Authorization": bearer["admin"]}
            _send(f"http://127.0.0.1:{port}", warm, 1, till)
            _send(f"http://127.0.0.1:{base_port}", warm, 1)
            ops = f"http://127.0.0.1:{port}/v1/ops/push-latency"
            httpx.get(f"{ops}?reset=true", timeout=300, headers=admin).raise_for_status()
            base_s, lines = _send(f"http://127.0.0.1:{base_port}", batches, args.clients)
            replen_s, _ = _send(f"http://127.0.0.1:{port}", batches, args.clients, till)
            latency = httpx.get(ops, timeout=120, headers=admin).json()
        finally:
            for proc in (replen, echo):
                proc.terminate()
                proc.wait(30)
    figures = {
        "benchmark": "http_ingest",
        "lines": lines,
        "batch_size": args.batch_size,
        "clients": args.clients,
        "baseline_lines_per_s": round(lines / base_s),
        "replen_lines_per_s": round(lines / replen_s),
        "ratio": round(base_s / replen_s, 3),
        "ack_to_online_p50_s": round(latency["p50"] or float("nan"), 3),
        "ack_to_online_p99_s": round(latency["p99"] or float("nan"), 3),
        "push_samples": latency["samples"],
    }
    if not args.json:
        print(
            f"baseline (parse only): {figures['baseline_lines_per_s']:,} lines/s; replen: "
            f"{figures['replen_lines_per_s']:,} lines/s (aim >= 20,000); ack→online p50 "
            f"{figures['ack_to_online_p50_s']}s p99 {figures['ack_to_online_p99_s']}s"
        )
    emit(figures)


if __name__ == "__main__":
    main()
