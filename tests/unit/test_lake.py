from datetime import UTC, datetime

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


def test_events_are_partitioned_by_day(tmp_path, chain) -> None:
    lake = Lake(tmp_path)
    lake.append_events(_batch(chain, 400))
    days = {p.parent.name for p in lake.events_dir.rglob("*.parquet")}
    sold = chain.pos.head(400)["sold_at"].dt.date().unique().to_list()
    assert days == {f"date={d}" for d in sold}


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
