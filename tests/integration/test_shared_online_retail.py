"""The real UCI Online Retail file through `replen ingest pos` (skipped without ../shared)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from support import replen_exe

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def test_every_line_is_accounted_for_and_rejects_are_quarantined(shared_data, tmp_path):
    path = shared_data / "online_retail" / "online_retail_transactions.csv.gz"
    exe = replen_exe()
    env = {**os.environ, "REPLEN_DATA_DIR": str(tmp_path / "data")}

    def replen(*args: str) -> str:
        return subprocess.run(
            [exe, *args], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
        ).stdout

    def ingest() -> dict:
        out = replen(
            "ingest", "pos", str(path), "--mapping", "uci-online-retail", "--no-push", "--json"
        )
        return json.loads(out.strip().splitlines()[-1])

    s = ingest()
    assert s["received"] == 541_909
    assert s["received"] == s["accepted"] + s["duplicates"] + s["rejected"]
    assert s["rejected"] == sum(s["rejected_by_rule"].values()) > 0

    quarantine = json.loads(replen("quarantine", "list", "--json", "--limit", "1000"))
    assert quarantine["total"] == s["rejected"]
    assert all(line["rule"] and line["message"] and line["payload"] for line in quarantine["lines"])

    s2 = ingest()
    assert (s2["accepted"], s2["duplicates"]) == (0, s["accepted"])
    # The same rejected lines, recognised: counted, not quarantined a second time.
    assert (s2["rejected"], s2["already_quarantined"]) == (s["rejected"], s["rejected"])
    again = json.loads(replen("quarantine", "list", "--json", "--limit", "1000"))
    assert again["total"] == s["rejected"]
    # Lines are numbered across the whole file, not restarted in each batch.
    assert len({line["line"] for line in quarantine["lines"]}) == s["rejected"]
    assert max(line["line"] for line in quarantine["lines"]) > 250_000
