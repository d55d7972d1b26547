"""Hostile bodies against a real server process on loopback: refused cheaply, with the
server's memory (RSS, read from /proc) barely moving and /healthz answering throughout."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

MB = 1024 * 1024
GROWTH_LIMIT = 48 * MB  # "a few tens of MB" (measured: ~34 MB, mostly the 17 MB body + its text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture()
def server(tmp_path, _migrated_template):
    """``replen serve``'s app under uvicorn in its own process group; killed whatever happens."""
    import shutil

    from tests.conftest import AccessKit

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(_migrated_template, data / "replen.db")
    kit = AccessKit(f"sqlite:///{data / 'replen.db'}")
    headers = kit.headers(("pos_ingest",), ("S1",))
    port = _free_port()
    env = {
        **os.environ,
        "REPLEN_DATA_DIR": str(data),
        "REPLEN_MLFLOW_DIR": str(tmp_path / "mlflow"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "replen.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"server did not come up: {out[-2000:]}")
            time.sleep(0.2)
        yield proc, base, port, headers
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


class Watch:
    """Samples the server's RSS and polls /healthz in the background."""

    def __init__(self, pid: int, base: str) -> None:
        self.pid, self.base = pid, base
        self.peak = _rss(pid)
        self.health: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._sample, daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]

    def __enter__(self) -> Watch:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss(self.pid))
            time.sleep(0.01)

    def _poll(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    code = http.get(f"{self.base}/healthz").status_code
                except httpx.HTTPError:
                    code = 0
                self.health.append((code, time.monotonic() - started))
                time.sleep(0.05)


def _send_chunked(port: int, headers: dict[str, str], total: int) -> tuple[int, int]:
    """POST ``total`` bytes chunked, stopping as soon as the server answers; returns
    (status, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        "POST /v1/pos/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    )
    sock.sendall(head.encode())
    chunk = b"[" + b"{}," * (MB // 3)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    sock.settimeout(1.0)
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except TimeoutError:
                continue  # the server stopped reading: its answer is on the way
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(60)
    answer = b""
    try:
        while b"\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    status = int(answer.split(b" ")[1]) if answer.startswith(b"HTTP/1.1") else 0
    return status, sent


def test_hostile_bodies_are_refused_cheaply_while_health_answers(server) -> None:
    proc, base, port, headers = server
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
        # Warm up the paths used below (imports, first parse), then take the baseline.
        http.post("/v1/pos/events", json=[{"event_id": "w", "store_id": "S1"}])
        http.post(
            "/v1/pos/events",
            content=b"[" + b"{}," * 200_000 + b"{}]",
            headers={"content-type": "application/json"},
        )
        baseline = _rss(proc.pid)
        with Watch(proc.pid, base) as watch:
            status, sent = _send_chunked(port, headers, 200 * MB)
            assert status == 413, status
            assert sent < 60 * MB, f"kept sending {sent / MB:.0f} MB before the 413"
            empties = b"[" + b",".join([b"{}"] * 5_800_000) + b"]"
            assert 16 * MB < len(empties) < 18 * MB
            started = time.monotonic()
            r = http.post(
                "/v1/pos/events", content=empties, headers={"content-type": "application/json"}
            )
            seconds = time.monotonic() - started
            del empties
            assert r.status_code == 413 and r.json()["rule"] == "body.lines", r.text
            assert http.get("/healthz").status_code == 200
        growth = watch.peak - baseline
        codes = [c for c, _ in watch.health]
        print(
            f"RSS baseline {baseline / MB:.0f} MB, peak +{growth / MB:.1f} MB; 17 MB of {{}} "
            f"refused in {seconds:.2f}s; {len(codes)} health checks, slowest "
            f"{max(s for _, s in watch.health):.2f}s"
        )
        assert growth < GROWTH_LIMIT, f"RSS grew by {growth / MB:.0f} MB"
        assert len(codes) >= 3 and set(codes) == {200}, codes
        assert max(s for _, s in watch.health) < 5.0
