"""A retailer's files through the CLI, from an empty data directory to a trained model."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support import replen_exe

pytestmark = pytest.mark.slow


def _replen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = replen_exe()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLEN_", "MLFLOW_"))}
    return subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_reference_files_feed_the_training_frame_and_bad_ones_change_nothing(tmp_path) -> None:
    gen = tmp_path / "files"
    _ok(
        _replen(
            "generate",
            "--out",
            str(gen),
            "--stores",
            "2",
            "--skus",
            "6",
            "--days",
            "240",
            "--json",
            cwd=tmp_path,
        )
    )
    _ok(_replen("ingest", "pos", str(gen / "pos.csv"), "--json", cwd=tmp_path))
    loaded = {
        kind: _ok(
            _replen("ingest", kind, str(gen / "reference" / f"{kind}.csv"), "--json", cwd=tmp_path)
        )
        for kind in ("calendar", "prices", "promotions", "attributes")
    }
    assert all(r["added"] == r["received"] > 0 for r in loaded.values()), loaded
    again = _ok(
        _replen(
            "ingest",
            "attributes",
            str(gen / "reference" / "attributes.csv"),
            "--json",
            cwd=tmp_path,
        )
    )
    assert again["unchanged"] == again["received"] and again["added"] == 0

    bad = tmp_path / "prices_bad.csv"
    bad.write_text("sku_id,valid_from,price\nSKU00001,2026-01-05,2.5\nSKU00002,05/01/2026,-3\n")
    proc = _replen("ingest", "prices", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert "prices_bad.csv:3: valid_from='05/01/2026' must be a date YYYY-MM-DD" in proc.stderr
    assert "(price.nonnegative)" in proc.stderr and "nothing loaded" in proc.stderr
    prices = _ok(
        _replen("ingest", "prices", str(gen / "reference" / "prices.csv"), "--json", cwd=tmp_path)
    )
    assert prices["rows"] == loaded["prices"]["rows"]  # the bad file added nothing

    checks = _ok(_replen("checks", "--json", cwd=tmp_path))
    assert checks == {"blocks": []}
    trained = _ok(_replen("train", "--json", cwd=tmp_path))
    assert trained["feature_service"] == "forecasting_v2" and trained["series"] == 12
