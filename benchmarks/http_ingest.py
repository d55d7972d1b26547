"""HTTP batch ingest on loopback: lines/s and acknowledgement-to-online-visibility latency.

Starts `replen serve` (real uvicorn, real lake, real Feast; ``--workers`` API processes and
one velocity pusher) and, in the same run, a baseline server that only parses the JSON body
(the loopback + HTTP + JSON ceiling). Sends the same live-looking POS batches to both from
concurrent clients and reports lines/s for each, the ratio, and the latency from a batch's
commit (its acknowledgement) to its velocity being in Feast's online store (p50/p99), as
the pusher measured it. ``--redis`` puts the online store on a redis-server started here;
``--data-dir`` runs on an existing data directory (e.g. a 50M-line lake made with
``--lake-lines``, generated once). Aims: ≥ 20,000 lines/s, p99 < 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _common import ROOT, emit, synthetic_lake, timed


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


def _group_peaks_mb(pgid: int) -> dict[str, int]:
    """Peak resident memory (VmHWM) of every process of the server's group, by role."""
    peaks: dict[str, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            status = (proc / "status").read_text()
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ProcessLookupError):
            continue
        hwm = next(
            (int(x.split()[1]) // 1024 for x in status.splitlines() if x.startswith("VmHWM")), 0
        )
        role = (
            "serve" if "replen.cli" in cmd else "worker/pusher" if "spawn_main" in cmd else "other"
        )
        key = f"{role}-{proc.name}"
        peaks[key] = hwm
    return peaks


def _lake_lines(data_dir: Path) -> int:
    from features.lake import Lake

    if not (data_dir / "lake").exists():
        return 0
    return sum(int(m["summary"].get("accepted", 0)) for m in Lake(data_dir / "lake").pos_batches())


@contextlib.contextmanager
def _redis_server(folder: str) -> Iterator[str]:
    """A redis-server on a free loopback port for the run; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed (apt-get install -y redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    try:
        import redis

        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _batches(
    n_batches: int, size: int, stores: int, skus: int, run: str = "bench"
) -> list[list[dict]]:
    now = datetime.now(UTC) - timedelta(minutes=1)
    out = []
    k = 0
    for b in range(n_batches):
        rows = []
        for i in range(size):
            rows.append(
                {
                    "event_id": f"{run}-{b}-{i}",
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
    stamp = int(time.time())  # a reused --data-dir already holds earlier runs' clients
    for name, role in ((f"bench-till-{stamp}", "pos_ingest"), (f"bench-admin-{stamp}", "admin")):
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
    parser.add_argument("--workers", type=int, default=1, help="API worker processes")
    parser.add_argument("--redis", action="store_true", help="online store on Redis")
    parser.add_argument("--data-dir", type=Path, help="existing data directory to ingest into")
    parser.add_argument(
        "--lake-lines", type=int, default=0, help="fill --data-dir's lake first (once)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run = f"bench{int(time.time())}"  # fresh event ids on a lake that already holds a run
    batches = _batches(args.batches, args.batch_size, args.stores, args.skus, run)
    python = sys.executable
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        data_dir = args.data_dir or Path(tmp) / "data"
        if args.lake_lines:
            synthetic_lake(data_dir, args.lake_lines, stores=args.stores, skus=args.skus)
        lake_lines = _lake_lines(data_dir)
        env = {
            **os.environ,
            "REPLEN_DATA_DIR": str(data_dir),
            "REPLEN_MLFLOW_DIR": f"{tmp}/ml",
            "REPLEN_RATE_LIMIT_PER_MINUTE": "100000",
        }
        bearer = _bearer(str(data_dir))
        if args.redis:
            env["REPLEN_ONLINE_STORE"] = stack.enter_context(_redis_server(tmp))
        port, base_port = _free_port(), _free_port()
        serve = ["serve", "--port", str(port), "--workers", str(args.workers)]
        replen = subprocess.Popen(
            [python, "-m", "replen.cli", *serve],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
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
            # Reach every worker (imports, its lake index): concurrent requests spread.
            till, admin = bearer["pos_ingest"], {"Authorization": bearer["admin"]}
            warm_all = _batches(4 * args.workers, 10, 2, 2, run + "-warm")
            _send(f"http://127.0.0.1:{port}", warm_all, 2 * args.workers, till)
            _send(f"http://127.0.0.1:{base_port}", warm, 1)
            # The pusher folds a big lake once on its first start: wait until it follows.
            ops = f"http://127.0.0.1:{port}/v1/ops/push-latency"
            mark = httpx.get(ops, params={"wait": 600}, timeout=700, headers=admin).json()
            assert mark["drained"], mark
            base_s, lines = _send(f"http://127.0.0.1:{base_port}", batches, args.clients)
            replen_s, _ = _send(f"http://127.0.0.1:{port}", batches, args.clients, till)
            latency = httpx.get(
                ops,
                params={"since": mark["samples_total"], "wait": 300},
                timeout=400,
                headers=admin,
            ).json()
            peaks = _group_peaks_mb(replen.pid)
        finally:
            os.killpg(replen.pid, signal.SIGTERM)
            echo.terminate()
            for proc in (replen, echo):
                proc.wait(60)
    figures = {
        "benchmark": "http_ingest",
        "lines": lines,
        "lake_lines_before": lake_lines,
        "online_store": "redis" if args.redis else "sqlite",
        "workers": args.workers,
        "batch_size": args.batch_size,
        "clients": args.clients,
        "baseline_lines_per_s": round(lines / base_s),
        "replen_lines_per_s": round(lines / replen_s),
        "ratio": round(base_s / replen_s, 3),
        "ack_to_online_p50_s": round(latency["p50"] or float("nan"), 3),
        "ack_to_online_p99_s": round(latency["p99"] or float("nan"), 3),
        "push_samples": latency["samples"],
        "server_peak_rss_mb": peaks,
        "push_errors": latency["errors"],
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
