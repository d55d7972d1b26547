"""`replen serve` as a user starts it on an empty data directory: every failure is
problem+json with the right status, and a killed server leaves no process behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from support import free_port, replen_exe, wait_for, wait_for_port

pytestmark = pytest.mark.slow


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found |= {int(c) for c in text.split()}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


@pytest.fixture()
def server(tmp_path, procs):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REPLEN_", "MLFLOW_"))},
        "REPLEN_DATA_DIR": str(tmp_path / "fresh"),
        "REPLEN_MLFLOW_DIR": str(tmp_path / "mlflow"),
    }
    proc = procs.start([replen_exe(), "serve", "--port", str(port)], env=env, cwd=tmp_path)
    wait_for_port(port, proc=proc)
    return proc, f"http://127.0.0.1:{port}"


def test_every_failure_is_problem_json_with_its_status(server, tmp_path) -> None:
    from replen.settings import Settings
    from tests.conftest import AccessKit

    _, url = server
    # A real admin token for the server's database (signed by its keys, kept in it).
    db_url = Settings(data_dir=tmp_path / "fresh", mlflow_dir=tmp_path / "mlflow").db_url
    token = AccessKit(db_url).headers(("admin",))
    with httpx.Client(base_url=url, timeout=120, headers=token) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        cases = [
            (http.get("/no/such/route"), 404, "/problems/http-404"),
            (http.delete("/v1/pos/events"), 405, "/problems/http-405"),
            (http.post("/v1/inventory", json=[{"store_id": "S1"}]), 422, "/problems/invalid-input"),
            (
                http.post(
                    "/v1/inventory",
                    json=[{"store_id": "S1", "sku_id": "A", "as_of": "yesterday", "on_hand": 1}],
                ),
                422,
                "/problems/invalid-input",
            ),
            (
                http.post(
                    "/v1/pos/events",
                    content=b"[{broken",
                    headers={"Content-Type": "application/json"},
                ),
                400,
                "/problems/malformed-body",
            ),
            (http.get("/v1/orders", headers={"Authorization": "Bearer x"}), 401, None),
        ]
        for response, status, kind in cases:
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert (body["status"], body["type"]) == (status, kind or "/problems/unauthorized")
            assert body["detail"] and "Traceback" not in response.text
    missing = cases[2][0].json()
    assert (missing["field"], missing["rule"]) == ("sku_id", "sku_id.required")
    wrong = cases[3][0].json()
    assert (wrong["field"], wrong["rule"]) == ("as_of", "as_of.timestamp")


def test_a_killed_server_leaves_no_process_behind(server) -> None:
    proc, _ = server
    children = wait_for(lambda: _children(proc.pid), what="the velocity pusher to start")
    os.kill(proc.pid, signal.SIGKILL)  # the server alone: no cleanup runs in it
    proc.wait()
    wait_for(
        lambda: not any(_alive(c) for c in children),
        what=f"the server's children {sorted(children)} to exit by themselves",
        timeout=60,
    )
