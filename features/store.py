"""The Feast feature store of Replen: the only module that imports feast.

Feast is a cache in front of the POS lake (the truth): everything here can be rebuilt from
the lake with :func:`FeatureStoreClient.rebuild`. ``import feast`` costs seconds, so it is
imported lazily inside methods, never at module import.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import polars as pl

if TYPE_CHECKING:  # pragma: no cover
    from feast import FeatureStore

__all__ = ["VELOCITY_FEATURES", "FeatureStoreClient", "online_store_config", "registry_config"]

VELOCITY_FEATURES = ("units_1d", "units_7d", "units_28d", "days_since_last_sale")
_VIEW = "sku_velocity"
_PUSH = "sku_velocity_push"


@dataclass
class FeatureStoreClient:
    """A Feast store rooted at ``repo_path``: file offline store under it; online store
    ``"sqlite"`` (a file there) or a Redis URL; registry a file there (default) or a
    SQLAlchemy URL shared by every process."""

    repo_path: Path
    online_store: str = "sqlite"
    registry: str | None = None

    def __post_init__(self) -> None:
        self.repo_path = Path(self.repo_path).resolve()
        self._store: FeatureStore | None = None
        self._applied = False

    @property
    def offline_velocity_path(self) -> Path:
        from features.repo.definitions import VELOCITY_OFFLINE_PATH

        return self.repo_path / VELOCITY_OFFLINE_PATH

    @property
    def store(self) -> FeatureStore:
        if self._store is None:
            self._store = _open_store(self.repo_path, self.online_store, self.registry)
        return self._store

    def apply(self) -> list[str]:
        """Register the Replen entities, views and feature services; returns their names."""
        from features.repo import definitions

        if not self.offline_velocity_path.exists():
            # Feast validates the file source on apply; give it an empty, typed table.
            write_offline_velocity(self.offline_velocity_path, _empty_velocity())
        self.store.apply(definitions.OBJECTS)  # type: ignore[arg-type]
        self._applied = True
        return [getattr(o, "name", "?") for o in definitions.OBJECTS]

    def apply_once(self) -> None:
        """Apply the definitions unless this store's registry already holds them."""
        if not self._applied and _VIEW not in {v.name for v in self.store.list_feature_views()}:
            self.apply()
        self._applied = True

    def write_offline(self, velocity: pl.DataFrame) -> Path:
        """Replace the offline velocity table (a derived cache of the lake)."""
        write_offline_velocity(self.offline_velocity_path, velocity)
        return self.offline_velocity_path

    def materialize(self, start: datetime, end: datetime) -> None:
        """Load the offline velocity rows with timestamps in [start, end] into the online store."""
        with _quiet():
            self.store.materialize(start_date=start, end_date=end, feature_views=[_VIEW])

    def push_online(self, velocity: pl.DataFrame) -> int:
        """Push fresh velocity rows to the online store; returns the number of rows pushed."""
        if velocity.is_empty():
            return 0
        from feast.data_source import PushMode

        self.store.push(_PUSH, _to_feast_frame(velocity), to=PushMode.ONLINE)
        return velocity.height

    def online_velocity(self, keys: pl.DataFrame, service: str | None = None) -> pl.DataFrame:
        """Read velocity for ``keys`` (``store_id, sku_id``) from the online store.

        ``service`` names a FeatureService (``forecasting_v1``, ``replenishment_v1``); without
        it every velocity feature is read.
        """
        rows = keys.select("store_id", "sku_id").to_dict(as_series=False)
        features: Any
        if service is None:
            features = [f"{_VIEW}:{name}" for name in VELOCITY_FEATURES]
        else:
            features = self.store.get_feature_service(service)
        response = self.store.get_online_features(features=features, entity_rows=rows)
        return pl.DataFrame(response.to_dict())

    def rebuild(self, velocity_history: pl.DataFrame) -> int:
        """Recreate Feast from lake-derived velocity: wipe online store and registry, re-apply,
        rewrite the offline table and materialize everything. Returns rows materialized."""
        with contextlib.suppress(Exception):  # a registry that never existed: nothing to drop
            self.store.teardown()  # online rows (SQLite file or Redis keys) and the registry
        self._store = None
        for name in ("registry.db", "online_store.db"):
            (self.repo_path / name).unlink(missing_ok=True)
        self.offline_velocity_path.unlink(missing_ok=True)
        self.apply()
        if velocity_history.is_empty():
            return 0
        self.write_offline(velocity_history)
        start, end = _timestamp_span(velocity_history)
        self.materialize(start, end)
        return velocity_history.height


def write_offline_velocity(path: Path, velocity: pl.DataFrame) -> None:
    """Atomically write the offline velocity table in the layout the Feast file source reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = _to_feast_frame(velocity)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Feast prints materialization banners on stdout; keep the CLI output ours."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def _open_store(repo_path: Path, online_store: str, registry: str | None) -> FeatureStore:
    from feast import FeatureStore, RepoConfig

    repo_path.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="replen",
        provider="local",
        registry=registry_config(repo_path, registry),
        online_store=online_store_config(repo_path, online_store),
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        repo_path=repo_path,
    )
    return FeatureStore(config=config)


def online_store_config(repo_path: Path, online_store: str) -> dict[str, Any]:
    """Feast's online store config for ``"sqlite"`` or a ``redis://`` / ``rediss://`` URL.

    Redis writes skip Feast's event-time check (``skip_dedup``): velocity pushed twice on
    the same day carries the same event time, and Feast would keep the first, stale
    value. Every writer recomputes from the lake (the truth), so the last write is right.
    """
    if online_store == "sqlite":
        return {"type": "sqlite", "path": str(repo_path / "online_store.db")}
    url = urlsplit(online_store)
    if url.scheme not in ("redis", "rediss") or not url.hostname:
        raise ValueError(
            f"online_store={online_store!r}: expected 'sqlite' or redis://host:port/db"
        )
    parts = [f"{url.hostname}:{url.port or 6379}"]
    db = url.path.strip("/")
    if db:
        parts.append(f"db={int(db)}")
    if url.password:
        parts.append(f"password={unquote(url.password)}")
    if url.scheme == "rediss":
        parts.append("ssl=true")
    return {"type": "redis", "connection_string": ",".join(parts), "skip_dedup": True}


def registry_config(repo_path: Path, registry: str | None) -> Any:
    """A registry file under the repo (default), another path, or a SQL registry by URL."""
    if registry is None:
        return str(repo_path / "registry.db")
    if "://" in registry:
        return {"registry_type": "sql", "path": registry, "cache_ttl_seconds": 60}
    return str(Path(registry).resolve())


def _to_feast_frame(velocity: pl.DataFrame) -> Any:
    """Feast wants pandas with a tz-aware ``event_timestamp`` column."""
    frame = velocity.select(
        pl.col("store_id").cast(pl.String),
        pl.col("sku_id").cast(pl.String),
        pl.col("units_1d").cast(pl.Float64),
        pl.col("units_7d").cast(pl.Float64),
        pl.col("units_28d").cast(pl.Float64),
        pl.col("days_since_last_sale").cast(pl.Int64),
        _event_timestamp(velocity),
    )
    return frame.to_pandas()


def _event_timestamp(velocity: pl.DataFrame) -> pl.Expr:
    if "event_timestamp" in velocity.columns:
        col = pl.col("event_timestamp")
    else:
        # Velocity "as of" a day describes the end of that day.
        col = pl.col("as_of").cast(pl.Datetime("us")) + pl.duration(hours=23, minutes=59)
    dtype = velocity.schema.get("event_timestamp")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return col.dt.convert_time_zone("UTC").alias("event_timestamp")
    return col.dt.replace_time_zone("UTC").alias("event_timestamp")


def _empty_velocity() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "store_id": pl.String,
            "sku_id": pl.String,
            "as_of": pl.Date,
            "units_1d": pl.Float64,
            "units_7d": pl.Float64,
            "units_28d": pl.Float64,
            "days_since_last_sale": pl.Int64,
        }
    )


def _timestamp_span(velocity: pl.DataFrame) -> tuple[datetime, datetime]:
    ts = velocity.select(_event_timestamp(velocity))["event_timestamp"]
    start: datetime = ts.min()  # type: ignore[assignment]
    end: datetime = ts.max()  # type: ignore[assignment]
    return start - timedelta(seconds=1), end + timedelta(seconds=1)
