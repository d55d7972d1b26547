"""The Feast feature store of Replen: the only module that imports feast.

Feast is a cache in front of the POS lake (the truth): everything here can be rebuilt from
the lake with :func:`FeatureStoreClient.rebuild`. ``import feast`` costs seconds, so it is
imported lazily inside methods, never at module import.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import polars as pl

from features.sales import VELOCITY_SCHEMA
from kernel.errors import NotReady
from kernel.files import atomic_write_path, write_parquet

if TYPE_CHECKING:  # pragma: no cover
    from feast import FeatureStore

__all__ = [
    "INPUT_VIEWS",
    "VELOCITY_FEATURES",
    "FeatureStoreClient",
    "online_rows",
    "online_store_config",
    "registry_config",
]

VELOCITY_FEATURES = ("units_1d", "units_7d", "units_28d", "days_since_last_sale")
_VIEW = "sku_velocity"
_PUSH = "sku_velocity_push"
INPUT_VIEWS = ("daily_sales", "store_calendar", "item_attributes", "promo_plan")
_APPLIED = "applied_definitions.txt"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class FeatureStoreClient:
    """A Feast store rooted at ``repo_path``: DuckDB offline store over Parquet files under
    it; online store ``"sqlite"`` (a file there) or a Redis URL; registry a file there
    (default) or a SQLAlchemy URL shared by every process."""

    repo_path: Path
    online_store: str = "sqlite"
    registry: str | None = None

    def __post_init__(self) -> None:
        self.repo_path = Path(self.repo_path).resolve()
        self._store: FeatureStore | None = None
        self._applied = False
        self._views: tuple[list[Any], bool] | None = None  # the push's views, resolved once

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
        for view in INPUT_VIEWS:
            if not self.input_path(view).exists():
                _write_atomically(_INPUT_SCHEMAS[view].clear(), self.input_path(view))
        objects = _with_absolute_paths(definitions.OBJECTS, self.repo_path)
        self.store.apply(objects)  # type: ignore[arg-type]
        self._views = None
        (self.repo_path / _APPLIED).write_text(definitions.DEFINITIONS_VERSION)
        self._applied = True
        return [getattr(o, "name", "?") for o in objects]

    def apply_once(self) -> None:
        """Apply the definitions unless this store's registry already holds this version
        of them (a registry from an older Replen is brought up to date)."""
        from features.repo import definitions

        marker = self.repo_path / _APPLIED
        current = marker.exists() and marker.read_text().strip() == definitions.DEFINITIONS_VERSION
        if not self._applied and not (current and self._registry_holds_views()):
            self.apply()
        self._applied = True

    def _registry_holds_views(self) -> bool:
        """A file registry exists, or a SQL registry (shared by URL) lists the views."""
        if self.registry is None or "://" not in self.registry:
            return Path(registry_config(self.repo_path, self.registry)).exists()
        return _VIEW in {v.name for v in self.store.list_feature_views()}

    def write_offline(self, velocity: pl.DataFrame) -> Path:
        """Replace the offline velocity table (a derived cache of the lake)."""
        write_offline_velocity(self.offline_velocity_path, velocity)
        return self.offline_velocity_path

    def materialize(self, start: datetime, end: datetime) -> None:
        """Load the offline velocity rows with timestamps in [start, end] into the online store."""
        with _quiet():
            self.store.materialize(start_date=start, end_date=end, feature_views=[_VIEW])

    def push_online(self, velocity: pl.DataFrame) -> int:
        """Push fresh velocity rows to the online store; returns the number of rows pushed.

        Written through Feast's online store (``online_write_batch`` of the configured
        provider, as ``FeatureStore.push`` ends up doing), with the rows' protos built
        column by column from the frame and the push's feature views resolved once per
        store: ``push`` itself converts the registry's views and services from protos on
        every call and the rows cell by cell (on Redis 86–502 ms for 400 rows, most of a
        push). Rows read back with ``get_online_features`` are the same either way
        (tests/integration/test_feature_store.py). Should a feature service ever ask Feast
        to precompute vectors on push, the push goes through ``FeatureStore.push``."""
        if velocity.is_empty():
            return 0
        views = self._push_views()
        if views is None:
            from feast.data_source import PushMode

            self.store.push(_PUSH, _to_feast_frame(velocity), to=PushMode.ONLINE)
            return velocity.height
        provider = self.store._get_provider()
        for view in views:
            rows = online_rows(velocity, view)
            provider.online_write_batch(self.store.config, view, rows, progress=None)
        return velocity.height

    def _push_views(self) -> list[Any] | None:
        """The feature views fed by the velocity push source (resolved once per store), or
        None when a feature service precomputes vectors on push (Feast's path then)."""
        if self._views is None:
            from feast.data_source import PushSource

            views = [
                v
                for v in self.store.list_feature_views()
                if isinstance(v.stream_source, PushSource) and v.stream_source.name == _PUSH
            ]
            services = self.store.list_feature_services()
            precompute = any(getattr(s, "precompute_online", False) for s in services)
            self._views = (views, precompute)
        views, precompute = self._views
        if precompute or not views:
            return None
        return views

    def online_velocity(self, keys: pl.DataFrame, service: str | None = None) -> pl.DataFrame:
        """Read velocity for ``keys`` (``store_id, sku_id``) from the online store.

        ``service`` names a FeatureService (``forecasting_v1``, ``replenishment_v1``); without
        it every velocity feature is read.
        """
        if not (self.repo_path / "registry.db").exists():
            raise NotReady(
                f"no feature store yet at {self.repo_path}",
                hint="run `replen features refresh` after `replen ingest pos FILE`",
            )
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
        self._views = None
        for name in ("registry.db", "online_store.db"):
            (self.repo_path / name).unlink(missing_ok=True)
        self.offline_velocity_path.unlink(missing_ok=True)
        for view in INPUT_VIEWS:
            self.input_path(view).unlink(missing_ok=True)
        self.apply()
        if velocity_history.is_empty():
            return 0
        self.write_offline(velocity_history)
        start, end = _timestamp_span(velocity_history)
        self.materialize(start, end)
        return velocity_history.height

    # The models' inputs ------------------------------------------------------------------
    def input_path(self, view: str) -> Path:
        """Where the offline table of an input view lives."""
        from features.repo import definitions

        paths = {
            "daily_sales": definitions.DAILY_OFFLINE_PATH,
            "store_calendar": definitions.CALENDAR_OFFLINE_PATH,
            "item_attributes": definitions.ATTRIBUTES_OFFLINE_PATH,
            "promo_plan": definitions.PROMO_PLAN_OFFLINE_PATH,
        }
        return self.repo_path / paths[view]

    def write_inputs(
        self,
        *,
        daily: pl.DataFrame | None = None,
        calendar: pl.DataFrame | None = None,
        attributes: pl.DataFrame | None = None,
        promo_plan: pl.DataFrame | None = None,
        as_of: date | None = None,
    ) -> dict[str, int]:
        """Replace the offline tables of the given inputs (derived caches of the lake and
        the reference files); returns rows written per view.

        ``daily``: :data:`features.inputs.DAILY_INPUT_COLUMNS` (stamped at the end of each
        day); ``calendar``: ``store_id, date, event, event_type, payday`` (stamped at the
        start of each day); ``attributes``: ``sku_id, department, category`` (valid since
        ever); ``promo_plan``: ``store_id, sku_id, promo_dates`` as known at ``as_of``.
        """
        frames = {
            "daily_sales": _daily_frame(daily) if daily is not None else None,
            "store_calendar": _calendar_frame(calendar) if calendar is not None else None,
            "item_attributes": _attributes_frame(attributes) if attributes is not None else None,
            "promo_plan": _plan_frame(promo_plan, as_of or date.today())
            if promo_plan is not None
            else None,
        }
        written = {}
        for view, frame in frames.items():
            if frame is not None:
                _write_atomically(frame.select(_INPUT_SCHEMAS[view].columns), self.input_path(view))
                written[view] = frame.height
        return written

    def materialize_inputs(self, day: date, until: date | None = None) -> None:
        """Load the online store with the inputs the daily forecast reads: the ``day``'s
        sales row, item attributes, the promotion plan, and calendar days up to ``until``."""
        start = datetime.combine(day, time.min, tzinfo=UTC)
        with _quiet():
            self.store.materialize(
                start_date=start,
                end_date=start + timedelta(days=1),
                feature_views=["daily_sales", "promo_plan"],
            )
            self.store.materialize(
                start_date=_EPOCH,
                end_date=_EPOCH + timedelta(days=1),
                feature_views=["item_attributes"],
            )
            last = until or day + timedelta(days=400)
            self.store.materialize(
                start_date=start - timedelta(days=1),
                end_date=datetime.combine(last, time.max, tzinfo=UTC),
                feature_views=["store_calendar"],
            )

    def training_frame(self, rows: pl.DataFrame, service: str | None = None) -> pl.DataFrame:
        """Point-in-time training frame: the features of ``service`` (default: the
        forecasting service) as known at the end of each row's day.

        ``rows``: ``store_id, sku_id, date``. Returns the rows with every feature of the
        service (``date`` a Date, ``stockout`` a Boolean).
        """
        from features.repo import definitions

        name = service or definitions.FORECASTING_SERVICE
        entity = rows.select(
            pl.col("store_id").cast(pl.String),
            pl.col("sku_id").cast(pl.String),
            pl.col("date").cast(pl.String),
            (pl.col("date").cast(pl.Datetime("us")) + pl.duration(hours=23, minutes=59, seconds=59))
            .dt.replace_time_zone("UTC")
            .alias("event_timestamp"),
        )
        with _quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # ibis on DuckDB 2 deprecations
            job = self.store.get_historical_features(
                entity_df=entity.to_pandas(), features=self.store.get_feature_service(name)
            )
            table = job.to_arrow()
        out = pl.from_arrow(table)
        assert isinstance(out, pl.DataFrame)
        casts = [pl.col("date").str.to_date()]
        if "stockout" in out.columns:
            casts.append((pl.col("stockout").fill_null(0) > 0).alias("stockout"))
        return out.drop("event_timestamp").with_columns(casts).sort("store_id", "sku_id", "date")

    def online_state(self, keys: pl.DataFrame) -> pl.DataFrame:
        """What the daily forecast needs now per store×SKU, from the online store: price,
        relative price, promotion share of the last day, item attributes, planned
        promotion days and velocity (service ``forecasting_state_v1``)."""
        rows = keys.select("store_id", "sku_id").to_dict(as_series=False)
        service = self.store.get_feature_service("forecasting_state_v1")
        response = self.store.get_online_features(features=service, entity_rows=rows)
        return pl.DataFrame(response.to_dict())

    def online_calendar(self, stores: list[str], days: list[date]) -> pl.DataFrame:
        """The stores' calendar on ``days`` from the online store: ``store_id, date, event,
        event_type, payday`` (nulls where no calendar row was loaded)."""
        rows = {
            "store_id": [s for s in stores for _ in days],
            "date": [d.isoformat() for _ in stores for d in days],
        }
        names = ("event", "event_type", "payday")
        response = self.store.get_online_features(
            features=[f"store_calendar:{n}" for n in names], entity_rows=rows
        )
        return pl.DataFrame(response.to_dict()).with_columns(pl.col("date").str.to_date())


def _with_absolute_paths(objects: list[Any], repo_path: Path) -> list[Any]:
    """A copy of the definitions whose file sources point at absolute paths under the repo:
    the DuckDB offline store reads a relative path against the working directory."""
    import copy

    from feast import FileSource

    copied = copy.deepcopy(objects)
    seen: list[Any] = []
    for obj in copied:
        for source in (obj, getattr(obj, "batch_source", None)):
            if isinstance(source, FileSource) and source not in seen:
                seen.append(source)
                if not Path(source.path).is_absolute():
                    source.file_options.uri = str(repo_path / source.path)
    return copied


def _write_atomically(frame: pl.DataFrame, path: Path) -> None:
    write_parquet(frame, path)


_TS = pl.Datetime("us", "UTC")
_INPUT_SCHEMAS: dict[str, pl.DataFrame] = {
    "daily_sales": pl.DataFrame(
        schema={
            "store_id": pl.String,
            "sku_id": pl.String,
            "units": pl.Float64,
            "stockout": pl.Int64,
            "price": pl.Float64,
            "price_rel": pl.Float64,
            "promo": pl.Float64,
            "event_timestamp": _TS,
        }
    ),
    "store_calendar": pl.DataFrame(
        schema={
            "store_id": pl.String,
            "date": pl.String,
            "event": pl.Float64,
            "event_type": pl.String,
            "payday": pl.Float64,
            "event_timestamp": _TS,
        }
    ),
    "item_attributes": pl.DataFrame(
        schema={
            "sku_id": pl.String,
            "department": pl.String,
            "category": pl.String,
            "event_timestamp": _TS,
        }
    ),
    "promo_plan": pl.DataFrame(
        schema={
            "store_id": pl.String,
            "sku_id": pl.String,
            "promo_dates": pl.List(pl.String),
            "event_timestamp": _TS,
        }
    ),
}


def _day_end(col: str = "date") -> pl.Expr:
    return (
        pl.col(col).cast(pl.Datetime("us")) + pl.duration(hours=23, minutes=59)
    ).dt.replace_time_zone("UTC")


def _daily_frame(daily: pl.DataFrame) -> pl.DataFrame:
    return daily.select(
        pl.col("store_id").cast(pl.String),
        pl.col("sku_id").cast(pl.String),
        pl.col("units").cast(pl.Float64),
        pl.col("stockout").fill_null(False).cast(pl.Int64),
        pl.col("price").cast(pl.Float64),
        pl.col("price_rel").cast(pl.Float64),
        pl.col("promo").cast(pl.Float64),
        _day_end().alias("event_timestamp"),
    )


def _calendar_frame(calendar: pl.DataFrame) -> pl.DataFrame:
    return calendar.select(
        pl.col("store_id").cast(pl.String),
        pl.col("date").cast(pl.String),
        pl.col("event").cast(pl.Float64),
        pl.col("event_type").cast(pl.String),
        pl.col("payday").cast(pl.Float64),
        pl.col("date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("event_timestamp"),
    )


def _attributes_frame(attributes: pl.DataFrame) -> pl.DataFrame:
    return attributes.select(
        pl.col("sku_id").cast(pl.String),
        pl.col("department").cast(pl.String),
        pl.col("category").cast(pl.String),
        pl.lit(_EPOCH).cast(_TS).alias("event_timestamp"),
    )


def _plan_frame(plan: pl.DataFrame, as_of: date) -> pl.DataFrame:
    return plan.select(
        pl.col("store_id").cast(pl.String),
        pl.col("sku_id").cast(pl.String),
        pl.col("promo_dates").cast(pl.List(pl.String)),
        pl.lit(datetime.combine(as_of, time(23, 59), tzinfo=UTC))
        .cast(_TS)
        .alias("event_timestamp"),
    )


def write_offline_velocity(path: Path, velocity: pl.DataFrame) -> None:
    """Atomically write the offline velocity table in the layout the Feast file source reads."""
    frame = _to_feast_frame(velocity)
    atomic_write_path(path, lambda tmp: frame.to_parquet(tmp, index=False))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Feast prints materialization banners on stdout; keep the CLI output ours."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def _open_store(repo_path: Path, online_store: str, registry: str | None) -> FeatureStore:
    from feast import FeatureStore, RepoConfig

    # Feast's import sets DeprecationWarnings to "once"; ibis (its DuckDB offline store)
    # raises some on every materialization: not the user's business.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ibis(\.|$)")
    repo_path.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="replen",
        provider="local",
        registry=registry_config(repo_path, registry),
        online_store=online_store_config(repo_path, online_store),
        offline_store={"type": "duckdb"},  # point-in-time joins in SQL: ~100× the file store
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
    return _feast_columns(velocity).to_pandas()


def _feast_columns(velocity: pl.DataFrame) -> pl.DataFrame:
    return velocity.select(
        pl.col("store_id").cast(pl.String),
        pl.col("sku_id").cast(pl.String),
        pl.col("units_1d").cast(pl.Float64),
        pl.col("units_7d").cast(pl.Float64),
        pl.col("units_28d").cast(pl.Float64),
        pl.col("days_since_last_sale").cast(pl.Int64),
        _event_timestamp(velocity),
    )


def online_rows(velocity: pl.DataFrame, view: Any) -> list[Any]:
    """The rows Feast's ``online_write_batch`` takes (entity key, feature values, event
    time, created time) for ``view``, built column by column: the same protos Feast's own
    conversion makes from :func:`_to_feast_frame`'s frame, cell by cell."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import python_values_to_proto_values

    frame = _feast_columns(velocity)
    join_keys = [e.name for e in view.entity_columns]

    def protos(column: str, value_type: Any) -> list[Any]:
        attr = _PROTO_FIELDS.get(value_type.name)
        series = frame[column]
        if attr is None:  # a type the fast path does not know: Feast's conversion
            return python_values_to_proto_values(series.to_list(), value_type)
        # a null (or NaN, as Feast reads pandas' missing floats) is an empty Value
        cells = series.fill_nan(None).to_list() if series.dtype.is_float() else series.to_list()
        return [Value(**{attr: v}) if v is not None else Value() for v in cells]

    keys = [
        protos(k, e.dtype.to_value_type())
        for k, e in zip(join_keys, view.entity_columns, strict=True)
    ]
    entity_keys = [
        EntityKey(join_keys=join_keys, entity_values=list(vals)) for vals in zip(*keys, strict=True)
    ]
    names = [f.name for f in view.features]
    values = [protos(f.name, f.dtype.to_value_type()) for f in view.features]
    features = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
    # Feast hands its online stores naive UTC datetimes (from pandas' datetime64)
    stamps = frame[view.batch_source.timestamp_field].dt.replace_time_zone(None).to_list()
    return list(zip(entity_keys, features, stamps, [None] * frame.height, strict=True))


_PROTO_FIELDS = {
    "STRING": "string_val",
    "DOUBLE": "double_val",
    "FLOAT": "float_val",
    "INT64": "int64_val",
    "INT32": "int32_val",
    "BOOL": "bool_val",
}


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
    return pl.DataFrame(schema=VELOCITY_SCHEMA)


def _timestamp_span(velocity: pl.DataFrame) -> tuple[datetime, datetime]:
    ts = velocity.select(_event_timestamp(velocity))["event_timestamp"]
    start: datetime = ts.min()  # type: ignore[assignment]
    end: datetime = ts.max()  # type: ignore[assignment]
    return start - timedelta(seconds=1), end + timedelta(seconds=1)
