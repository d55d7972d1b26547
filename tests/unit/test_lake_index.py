"""The event-id index: hash matches name parts to read; ids decide, so collisions are safe."""

from __future__ import annotations

import numpy as np
import polars as pl

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
