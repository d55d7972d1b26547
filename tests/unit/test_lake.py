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


# A rejected line delivered again is recognised, not quarantined twice --------------------------
def _with_bad_prices(chain, n: int = 100, bad: int = 4) -> pl.DataFrame:
    return chain.pos.head(n).with_columns(
        pl.when(pl.int_range(pl.len()) < bad)
        .then(-5.0)
        .otherwise(pl.col("unit_price"))
        .alias("unit_price")
    )


def test_resending_a_file_leaves_the_quarantine_as_it_was(tmp_path, chain) -> None:
    """The user's report: the same file twice showed every rejected line twice."""
    raw = _with_bad_prices(chain)
    lake = Lake(tmp_path)
    lake.append_events(validate_events(raw))
    before = lake.quarantine().drop("batch_id")
    lake.append_events(validate_events(raw))
    assert lake.quarantine().drop("batch_id").equals(before) and before.height == 4


def test_a_resent_rejected_line_is_recognised_and_quarantined_once(tmp_path, chain) -> None:
    raw = _with_bad_prices(chain)
    lake = Lake(tmp_path)
    first = lake.append_events(validate_events(raw))
    again = lake.append_events(validate_events(raw))
    assert (first.rejected, first.already_quarantined) == (4, 0)
    # Still counted as rejected (every line is accounted for), but not recorded twice.
    assert (again.received, again.accepted, again.duplicates, again.rejected) == (100, 0, 96, 4)
    assert again.already_quarantined == 4
    assert again.rejected_by_rule == {"unit_price.nonnegative": 4}
    assert lake.quarantine().height == 4
    assert sorted(p.name for p in lake.quarantine_dir.iterdir()) == [
        f"part-{first.batch_id}.parquet"
    ]
    # Another process (a fresh Lake on the same folder) knows them too.
    third = Lake(tmp_path).append_events(validate_events(raw))
    assert third.already_quarantined == 4 and Lake(tmp_path).quarantine().height == 4


def test_a_resend_with_lines_added_in_front_is_still_recognised(tmp_path, chain) -> None:
    raw = _with_bad_prices(chain)
    lake = Lake(tmp_path)
    lake.append_events(validate_events(raw))
    more = pl.concat([chain.pos.slice(200, 10), raw])  # every line number moves by 10
    report = lake.append_events(validate_events(more))
    assert (report.accepted, report.rejected, report.already_quarantined) == (10, 4, 4)
    assert lake.quarantine().height == 4


def test_a_new_bad_line_is_quarantined_beside_the_known_ones(tmp_path, chain) -> None:
    lake = Lake(tmp_path)
    lake.append_events(validate_events(_with_bad_prices(chain, bad=4)))
    report = lake.append_events(validate_events(_with_bad_prices(chain, bad=5)))
    assert (report.rejected, report.already_quarantined) == (5, 4)
    assert lake.quarantine().height == 5


def test_identical_bad_lines_of_one_delivery_stay_two_records(tmp_path, chain) -> None:
    bad = _with_bad_prices(chain, n=1, bad=1)
    raw = pl.concat([bad, chain.pos.slice(5, 3), bad])  # the same bad line twice
    lake = Lake(tmp_path)
    first = lake.append_events(validate_events(raw))
    assert (first.rejected, first.already_quarantined) == (2, 0)
    assert lake.quarantine().height == 2
    again = lake.append_events(validate_events(raw))
    assert (again.rejected, again.already_quarantined) == (2, 2)
    assert lake.quarantine().height == 2
    # A delivery with it three times adds the third occurrence only.
    thrice = lake.append_events(validate_events(pl.concat([raw, bad])))
    assert (thrice.rejected, thrice.already_quarantined) == (3, 2)
    assert lake.quarantine().height == 3


def test_occurrences_run_across_the_batches_of_one_delivery(tmp_path, chain) -> None:
    """The same input split into other batches is recognised line for line."""
    bad = _with_bad_prices(chain, n=1, bad=1)
    raw = pl.concat([bad, chain.pos.slice(5, 3), bad])
    lake = Lake(tmp_path)
    lake.append_events(validate_events(raw))  # one batch
    seen: dict[str, int] = {}
    halves = [
        lake.append_events(validate_events(part), seen_rejects=seen)
        for part in (raw.head(2), raw.tail(2))
    ]
    assert [(h.rejected, h.already_quarantined) for h in halves] == [(1, 1), (1, 1)]
    assert lake.quarantine().height == 2


def test_a_resent_conflict_is_recognised(tmp_path, chain) -> None:
    lake = Lake(tmp_path)
    lake.append_events(_batch(chain, 10))
    changed = validate_events(chain.pos.head(10).with_columns(pl.col("quantity") + 1))
    first = lake.append_events(changed)
    again = lake.append_events(changed)
    assert (first.rejected, first.already_quarantined) == (10, 0)
    assert (again.rejected, again.already_quarantined) == (10, 10)
    assert lake.quarantine().height == 10


def test_quarantine_parts_from_before_reject_ids_are_read_and_recognised(
    tmp_path, chain, monkeypatch
) -> None:
    """Parts written by older versions have no reject_id, and the same lines may have been
    quarantined twice back then: they are listed once, and a resend now matches them."""
    raw = _with_bad_prices(chain)
    lake = Lake(tmp_path)
    with monkeypatch.context() as m:  # as older versions did: no look at what is known
        m.setattr(Lake, "_quarantined_ids", lambda self: set())
        for _ in range(2):
            report = lake.append_events(validate_events(raw))
            part = lake.quarantine_dir / f"part-{report.batch_id}.parquet"
            pl.read_parquet(part).drop("reject_id").write_parquet(part)
    assert len(list(lake.quarantine_dir.iterdir())) == 2
    old = Lake(tmp_path)
    assert old.quarantine().height == 4  # 8 records on disk, 4 lines
    report = old.append_events(validate_events(raw))
    assert report.already_quarantined == 4 and old.quarantine().height == 4


def test_a_file_ingest_numbers_lines_across_batches_and_matches_a_resend(rt, chain) -> None:
    """Batches of a file ingest: lines keep their place in the file, identical bad lines
    in two batches stay two records, and the file sent again in other batches is known."""
    from jobs.refresh import ingest_pos

    bad = _with_bad_prices(chain, n=1, bad=1)
    raw = pl.concat([bad, chain.pos.slice(10, 4), bad, chain.pos.slice(20, 1)])
    first = ingest_pos(rt, raw, push=False, chunk_rows=5)
    assert (first.batches, first.rejected, first.already_quarantined) == (2, 2, 0)
    assert sorted(rt.lake.quarantine()["line"].to_list()) == [0, 5]
    again = ingest_pos(rt, raw, push=False, chunk_rows=3, keep_rejected=True)
    assert (again.batches, again.rejected, again.already_quarantined) == (3, 2, 2)
    assert again.rejected_frame()["line"].to_list() == [0, 5]
    assert rt.lake.quarantine().height == 2
    assert "rejected_lines" not in again.to_dict()
