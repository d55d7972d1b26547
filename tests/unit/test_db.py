"""The Alembic migrations build exactly the schema the code declares."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from replen.db import current, head, include_object, metadata, upgrade


def test_upgrade_builds_the_schema_and_is_idempotent(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert upgrade(url) == head()
    assert upgrade(url) == head()
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {
        "purchase_orders",
        "po_lines",
        "po_audit",
        "rules_items",
        "job_runs",
        "alerts",
        "scheduler_locks",
    } <= tables


def test_models_and_migrations_do_not_drift(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    with create_engine(url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object})
        assert compare_metadata(ctx, metadata()) == [], "a model changed without a migration"


def test_a_database_made_before_migrations_is_stamped(tmp_path) -> None:
    from replenishment.models import Base

    url = f"sqlite:///{tmp_path / 'old.db'}"
    Base.metadata.create_all(create_engine(url))  # as before migrations existed
    assert current(url) is None
    assert upgrade(url) == head()


def test_a_database_partly_made_by_a_store_is_adopted(tmp_path) -> None:
    from jobs.ledger import Alert

    url = f"sqlite:///{tmp_path / 'partial.db'}"
    Alert.__table__.create(create_engine(url))  # only one ledger table exists
    assert upgrade(url) == head()
    assert "purchase_orders" in set(inspect(create_engine(url)).get_table_names())


def test_an_older_database_is_migrated_forward(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert upgrade(url, "0001") == "0001"
    columns = {c["name"] for c in inspect(create_engine(url)).get_columns("rules_suppliers")}
    assert "max_order_value" not in columns
    assert upgrade(url) == head() != "0001"
    columns = {c["name"] for c in inspect(create_engine(url)).get_columns("rules_suppliers")}
    assert "max_order_value" in columns


def test_a_database_made_with_the_old_schema_gets_the_new_columns(tmp_path) -> None:
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:  # as if made by create_all before migrations existed
        conn.execute(text("DROP TABLE alembic_version"))
    assert current(url) is None
    assert upgrade(url) == head()
    columns = {c["name"] for c in inspect(engine).get_columns("rules_suppliers")}
    assert "max_order_value" in columns


def test_feed_rejects_kept_twice_before_0007_get_one_identity(tmp_path) -> None:
    """Rows stored twice by older versions: the first keeps an identity, the copy none (it
    stays listed), and a new delivery of the same rows matches the first."""
    from datetime import UTC, datetime

    import polars as pl
    from sqlalchemy import text

    from replenishment.positions import PositionStore

    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert upgrade(url, "0006") == "0006"
    row = "(:feed, :batch, 's.csv', :line, :key, 'on_hand.number', 'on_hand', 'x', 'm', :p, :at)"
    with create_engine(url).begin() as conn:
        for batch in ("b1", "b2"):  # the same file delivered twice
            for line, key in ((2, "S1|a"), (3, "S1|b")):
                conn.execute(
                    text(
                        "INSERT INTO feed_rejects (feed, batch_id, source, line, key, rule, "
                        f"field, value, message, payload, at) VALUES {row}"
                    ),
                    {
                        "feed": "stock",
                        "batch": batch,
                        "line": line,
                        "key": key,
                        "p": f'{{"k":"{key}"}}',
                        "at": datetime.now(UTC),
                    },
                )
    assert upgrade(url) == head()
    with create_engine(url).connect() as conn:
        ids = conn.execute(text("SELECT batch_id, reject_id FROM feed_rejects ORDER BY id")).all()
    assert [b for b, r in ids if r is not None] == ["b1", "b1"]
    assert [r for b, r in ids if b == "b2"] == [None, None]
    assert "ux_feed_rejects_feed_reject_id" in {
        i["name"] for i in inspect(create_engine(url)).get_indexes("feed_rejects")
    }
    resent = pl.DataFrame(
        {
            "line": [2, 3],
            "key": ["S1|a", "S1|b"],
            "rule": ["on_hand.number"] * 2,
            "field": ["on_hand"] * 2,
            "value": ["x"] * 2,
            "message": ["m"] * 2,
            "payload": ['{"k":"S1|a"}', '{"k":"S1|b"}'],
        }
    )
    assert PositionStore(url).save_rejects("stock", "b3", "s.csv", resent) == 2
