"""A real small disk (tmpfs) that fills up, then turns read-only: the CLI says so in one line
with exit 6, the HTTP service answers 507 / 503 problem+json, and the lake keeps nothing
half-written."""

from __future__ import annotations

import json
import os
import subprocess

import polars as pl
import pytest
from support import replen_exe, small_disk

from replen.synthetic import generate

pytestmark = pytest.mark.slow


@pytest.fixture()
def pos_file(tmp_path):
    # 163k lines: ~1.5 MB in the lake (one sorted zstd part per batch packs ~9 bytes a line).
    pos = generate(stores=5, skus=40, days=400, seed=2).pos
    path = tmp_path / "pos.csv"
    pos.with_columns(pl.col("sold_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")).write_csv(path)
    return path, pos.height


def _lake_files(root) -> list[str]:
    lake = root / "lake"
    return sorted(
        str(p.relative_to(lake)) for p in lake.rglob("*") if p.is_file() and p.name != ".lock"
    )


def test_the_cli_on_a_full_then_read_only_disk(tmp_path, pos_file) -> None:
    path, _ = pos_file
    data = tmp_path / "disk"
    env = {**os.environ, "REPLEN_DATA_DIR": str(data), "REPLEN_MLFLOW_DIR": str(tmp_path)}
    cmd = [replen_exe(), "ingest", "pos", str(path), "--no-push", "--chunk-rows", "20000"]
    with small_disk(data, "1m") as read_only:
        full = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert full.returncode == 6, full.stderr
        (line,) = full.stderr.strip().splitlines()
        assert line.startswith("error: ") and "no space left" in line and "free some space" in line
        files = _lake_files(data)
        assert not [f for f in files if f.startswith("_staging") or f.endswith(".tmp")]
        # What is on disk is exactly what the manifests committed, nothing half-written.
        named = {
            name
            for f in files
            if f.startswith("_manifests/")
            for name in json.loads((data / "lake" / f).read_text())["files"]
        }
        assert {f for f in files if f.startswith(("pos/", "quarantine/"))} <= named

        read_only(True)
        ro = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert ro.returncode == 6, ro.stderr
        (line,) = ro.stderr.strip().splitlines()
        assert "read-only" in line and "Traceback" not in ro.stderr
        read_only(False)


def test_the_http_service_answers_507_then_503(settings, tmp_path, pos_file) -> None:
    from fastapi.testclient import TestClient

    from replen.app import create_app
    from tests.conftest import AccessKit

    path, _ = pos_file
    events = pl.read_csv(path, infer_schema=False).to_dicts()
    till = AccessKit(settings.db_url).headers(("pos_ingest",))  # every store
    # The lake on a small disk of its own (the database stays on the big one).
    with small_disk(settings.lake_dir, "256k"):
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            client.headers.update(till)
            r = client.post("/v1/pos/events", json=events[:60000])
            # Nothing of the refused batch stays: a small batch (quarantined, so that no
            # velocity push is waited for) fits and commits.
            small = client.post(
                "/v1/pos/events", json=[e | {"quantity": "0"} for e in events[:100]]
            )
        assert r.status_code == 507, r.text
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["type"] == "/problems/storage" and "no space left" in body["detail"]
        assert "REPLEN_DATA_DIR" in body["hint"]
        assert small.status_code == 200 and small.json()["rejected"] == 100, small.text
        files = _lake_files(settings.data_dir)
        assert not [f for f in files if "_staging" in f or f.endswith(".tmp")]

    other = settings.model_copy(update={"data_dir": tmp_path / "other"})
    with small_disk(other.lake_dir, "1m") as read_only:
        read_only(True)
        with TestClient(create_app(other), raise_server_exceptions=False) as client:
            client.headers.update(AccessKit(other.db_url).headers(("pos_ingest",)))
            r = client.post("/v1/pos/events", json=events[:10])
        assert r.status_code == 503, r.text
        assert "read-only" in r.json()["detail"]
