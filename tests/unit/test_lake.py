from datetime import UTC, datetime, timedelta

import polars as pl

from features.events import validate_events
from features.lake import Lake


def _batch(chain, n: int = 300):
    return validate_events(chain.pos.head(n))


def test_resent_batch_counts_as_duplicates_and_changes_nothing(tmp_path, chain) -> None:
    lake = Lake(tmp_path)
    first = lake.append_events(_batch(chain))
    again = lake.append_events(_batch(chain))
    assert (first.accepted, first.duplicates) == (300, 0)
    assert (again.received, again.accepted, again.duplicates, again.rejected) == (300, 0, 300, 0)
    assert lake.scan_events().collect().height == 300


def test_reused_id_with_another_body_is_a_conflict(tmp_path, chain) -> None:
    lake = Lake(tmp_path)
    lake.append_events(_batch(chain, 10))
    changed = chain.pos.head(10).with_columns(pl.col("quantity") + 1)
    report = lake.append_events(validate_events(changed))
    assert report.rejected == 10
    assert report.rejected_by_rule == {"event_id.conflict": 10}
    assert lake.scan_events().select(pl.col("quantity").sum()).collect().item() == (
        chain.pos.head(10)["quantity"].sum()
    )


def test_duplicates_within_one_batch(tmp_path, chain) -> None:
    rows = pl.concat(
        [
            chain.pos.head(5),
            chain.pos.head(2),
            chain.pos.slice(2, 1).with_columns(
                pl.col("event_id").replace_strict(
                    chain.pos["event_id"][2], chain.pos["event_id"][0]
                )
            ),
        ]
    )
    report = Lake(tmp_path).append_events(validate_events(rows))
    assert (report.received, report.accepted, report.duplicates, report.rejected) == (8, 5, 2, 1)


def test_counts_always_add_up_and_rejects_are_quarantined(tmp_path, chain) -> None:
    raw = chain.pos.head(100).with_columns(
        pl.when(pl.int_range(pl.len()) < 4)
        .then(-5.0)
        .otherwise(pl.col("unit_price"))
        .alias("unit_price")
    )
    lake = Lake(tmp_path)
    report = lake.append_events(validate_events(raw))
    assert report.received == report.accepted + report.duplicates + report.rejected == 100
    q = lake.quarantine()
    assert q.height == 4 and set(q["rule"]) == {"unit_price.nonnegative"}


def test_uncommitted_parts_are_invisible_and_cleaned(tmp_path, chain) -> None:
    lake = Lake(tmp_path)
    lake.append_events(_batch(chain, 50))
    orphan = lake.events_dir / "date=2020-01-01" / "part-crashed.parquet"
    orphan.parent.mkdir(parents=True)
    chain.pos.head(5).write_parquet(orphan)
    assert lake.scan_events().collect().height == 50
    restarted = Lake(tmp_path)  # the next writer process cleans up after a dead one
    restarted.append_events(_batch(chain, 60))
    assert not orphan.exists()
    assert lake.scan_events().collect().height == 60 == restarted.scan_events().collect().height


def test_a_batch_is_one_part_sorted_by_time_and_old_batches_are_pruned(tmp_path, chain) -> None:
    lake = Lake(tmp_path)
    pos = chain.pos.sort("sold_at")
    old, new = pos.head(300), pos.tail(300)
    lake.append_events(validate_events(new.sample(fraction=1.0, shuffle=True, seed=1)))
    lake.append_events(validate_events(old))
    parts = sorted(lake.events_dir.rglob("*.parquet"))
    assert len(parts) == 2  # however many days each batch spans: one fsynced file
    for part in parts:
        assert pl.read_parquet(part)["sold_at"].is_sorted()
    since = new["sold_at"].min().date()
    assert old["sold_at"].max().date() < since
    assert lake.scan_events(since=since).collect()["event_id"].sort().to_list() == (
        new["event_id"].sort().to_list()
    )


def test_day_partitions_of_an_older_lake_stay_readable(tmp_path, chain) -> None:
    import json

    lake = Lake(tmp_path)
    events = validate_events(chain.pos.head(20)).accepted.with_columns(
        pl.lit("b0").alias("batch_id")
    )
    day = events["sold_at"].min().date()
    part = lake.events_dir / f"date={day}" / "part-b0.parquet"
    part.parent.mkdir(parents=True)
    events.filter(pl.col("sold_at").dt.date() == day).write_parquet(part)
    manifest = {
        "batch_id": "b0",
        "kind": "pos",
        "committed_at": "2024-01-01T00:00:00+00:00",
        "files": [str(part.relative_to(tmp_path))],
        "summary": {"received": 1},
    }
    (lake.manifest_dir / "b0.json").write_text(json.dumps(manifest))
    reopened = Lake(tmp_path)
    assert reopened.scan_events().collect().height == pl.read_parquet(part).height
    assert reopened.scan_events(since=day).collect().height > 0
    assert reopened.scan_events(since=day + timedelta(days=1)).collect().height == 0


def test_unknown_stores_and_skus_are_accepted_and_reported(tmp_path, chain) -> None:
    report = Lake(tmp_path).append_events(
        _batch(chain, 50), known_stores={"S001"}, known_skus=set()
    )
    assert report.accepted == 50
    stores = set(chain.pos.head(50)["store_id"]) - {"S001"}
    assert report.unknown_stores == sorted(stores)
    assert len(report.unknown_skus) == chain.pos.head(50)["sku_id"].n_unique()


def test_inventory_snapshots_round_trip(tmp_path) -> None:
    lake = Lake(tmp_path)
    snaps = pl.DataFrame(
        {
            "store_id": ["S1"],
            "sku_id": ["A"],
            "as_of": [datetime(2024, 1, 1, tzinfo=UTC)],
            "on_hand": [0],
        }
    )
    assert lake.append_inventory(snaps) == 1
    assert lake.scan_inventory().collect()["on_hand"].to_list() == [0.0]
