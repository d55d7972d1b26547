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
