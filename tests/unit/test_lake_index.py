"""The event-id index: hash matches name parts to read; ids decide, so collisions are safe."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

import features.lake as lake_module
import features.lake_index as index_module
from features.events import validate_events
from features.lake import Lake
from features.lake_index import EventIndex


def test_candidates_are_the_parts_holding_the_ids_across_merges() -> None:
    index = EventIndex()
    for part in range(30):  # 30 × 5,000 ids: several merges into the sorted base
        index.add(pl.Series([f"p{part}-{i}" for i in range(5000)]), f"part-{part}")
    assert len(index) == 150_000
    assert set(index.candidate_files(pl.Series(["p3-17", "p29-4999", "nope"]))) == {
        "part-29",
        "part-3",
    }
    assert index.candidate_files(pl.Series(["nope"])) == []


def test_colliding_hashes_cost_reads_never_wrong_answers(tmp_path, chain, monkeypatch) -> None:
    def collide(ids: pl.Series) -> np.ndarray:
        return np.zeros(len(ids), dtype=np.uint64)  # every id hashes alike

    monkeypatch.setattr(index_module, "id_hashes", collide)
    monkeypatch.setattr(lake_module, "id_hashes", collide)
    lake = Lake(tmp_path)
    first = lake.append_events(validate_events(chain.pos.head(100)))
    second = lake.append_events(validate_events(chain.pos.slice(50, 100)))
    assert (first.accepted, first.duplicates) == (100, 0)
    assert (second.accepted, second.duplicates, second.rejected) == (50, 50, 0)
    assert lake.scan_events().collect()["event_id"].is_unique().all()


def test_a_hash_collision_never_merges_distinct_lines_when_ids_are_derived(monkeypatch) -> None:
    """Derived ids (``key:n``) count occurrences among hash-repeated keys; a collision only
    adds a line to the exact count by key, so distinct keys still get occurrence 0."""
    import features.mapping as mapping_module

    raw = pl.DataFrame({"invoice": ["x", "y", "x", "z"], "line": ["1", "2", "1", "3"]})
    honest = mapping_module._derived_ids(raw, ("invoice", "line")).to_list()
    monkeypatch.setattr(  # every key's hash collides with every other's
        mapping_module, "repeated", lambda hashes: np.ones(len(hashes), dtype=bool)
    )
    forced = mapping_module._derived_ids(raw, ("invoice", "line")).to_list()
    assert forced == honest == ["x:1:0", "y:2:0", "x:1:1", "z:3:0"]


def test_runs_at_least_double_towards_the_big_one_and_answers_stay_exact() -> None:
    index = EventIndex()
    sizes = [5000, 120, 5000, 80_000, 3, 5000, 5000, 40_000, 1, 5000] * 3
    for part, size in enumerate(sizes):
        index.add(pl.Series([f"p{part}-{i}" for i in range(size)]), f"part-{part}")
        if part % 3 == 0:  # lookups settle the queued parts in between
            index.candidate_files(pl.Series(["nope"]))
    assert index.candidate_files(pl.Series(["p0-0", "p8-0", "p29-4999", "x"])) == [
        "part-0",
        "part-8",
        "part-29",
    ]
    runs = [len(r) for r in index._runs]
    assert sum(runs) == len(index) == sum(sizes)
    assert all(a > 2 * b for a, b in itertools.pairwise(runs)), runs
    assert all(bool((np.diff(r.astype(np.int64)) >= 0).all()) for r in index._runs)


def test_reserved_room_and_parts_beyond_it() -> None:
    index = EventIndex()
    index.reserve(12_000)
    for part in range(5):  # 15,000 ids: the last part does not fit, it is queued
        index.add(pl.Series([f"r{part}-{i}" for i in range(3000)]), f"part-{part}")
    assert len(index) == 15_000
    got = index.candidate_files(pl.Series(["r0-0", "r3-2999", "r4-5", "x"]))
    assert got == ["part-0", "part-3", "part-4"]


def test_a_reopened_lake_reserves_its_index_and_still_deduplicates(
    tmp_path, chain, monkeypatch
) -> None:
    monkeypatch.setattr(lake_module, "_RESERVE_LINES", 0)
    events = validate_events(chain.pos.head(3000))
    lake = Lake(tmp_path)
    for part in range(3):
        lake.append_events(validate_events(chain.pos.slice(1000 * part, 1000)))
    again = Lake(tmp_path)  # a fresh process: its index is built from the parts
    report = again.append_events(events)
    assert (report.accepted, report.duplicates) == (0, 3000)
    assert again._ids._runs and not again._ids._queued


def test_building_a_big_lakes_index_holds_its_keys_about_once() -> None:
    # At start-up every part is added at once: with room reserved, the keys are written
    # into one array and sorted in place (queued then concatenated, they were held twice:
    # 887 MB for 51M lines instead of 539 MB).
    import os
    from pathlib import Path

    status, clear = Path("/proc/self/status"), Path("/proc/self/clear_refs")
    if not status.exists() or not os.access(clear, os.W_OK):
        pytest.skip("needs Linux /proc to reset and read the peak resident memory")

    def kib(field: str) -> int:
        line = next(x for x in status.read_text().splitlines() if x.startswith(field))
        return int(line.split()[1])

    parts, per_part = 40, 250_000
    ids = pl.Series([f"e{i}" for i in range(per_part)])
    index = EventIndex()
    clear.write_text("5")  # the peak resident memory starts again from here
    before = kib("VmRSS")
    index.reserve(parts * per_part)
    for p in range(parts):
        index.add(ids, f"part-{p}")
    assert index.candidate_files(pl.Series(["e7"]))[:2] == ["part-0", "part-1"]
    grown = kib("VmHWM") - before
    keys_kib = parts * per_part * 8 / 1024
    assert grown < 1.5 * keys_kib, grown / keys_kib
