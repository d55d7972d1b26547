"""What the online velocity push needs, kept incrementally: last sale and recent daily units.

Folding a committed lake batch costs in proportion to the batch, never to the lake: the
state holds, per store×SKU, the day of its last positive sale and its units on the last
``KEEP_DAYS`` days. Folding every batch exactly once (``folded`` remembers which) gives
exactly the velocity :func:`features.sales.velocity` computes from the whole lake.

Each store×SKU has a row number (a dict from the key, in memory only); its last sale is a
cell of one array and its recent units a row of a ``keys × KEEP_DAYS`` array whose columns
are days modulo ``KEEP_DAYS`` (a ring: the columns of the days that leave the window are
zeroed when the newest day moves). The velocity of the keys a batch touched reads their
rows only, so a push costs in proportion to the touched keys, not to the state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features.sales import VELOCITY_SCHEMA
from kernel.files import atomic_write_path

__all__ = ["KEEP_DAYS", "VelocityState"]

KEEP_DAYS = 40  # > the 28-day window, so late lines within it still land in a kept day
_KEYS = ("store_id", "sku_id")
_KEY_SCHEMA = {"store_id": pl.String, "sku_id": pl.String, "last_sale": pl.Date}
_RECENT_SCHEMA = {"store_id": pl.String, "sku_id": pl.String, "date": pl.Date, "units": pl.Float64}
_EPOCH = date(1970, 1, 1)
_NO_SALE = np.iinfo(np.int32).min  # last_sale of a key that only had returns


class VelocityState:
    """Per store×SKU last sale and recent daily units, folded from lake batches."""

    def __init__(self) -> None:
        self.newest: date | None = None  # newest sales day folded so far: velocity as of it
        self.pushed_as_of: date | None = None  # as-of day of the last full push (the pusher)
        self.folded: set[str] = set()
        self._rows: dict[tuple[str, str], int] = {}  # store×SKU → row of the arrays below
        self._stores: list[str] = []
        self._skus: list[str] = []
        self._last = np.full(0, _NO_SALE, dtype=np.int32)  # day number of the last sale
        self._units = np.zeros((0, KEEP_DAYS), dtype=np.float64)  # [row, day % KEEP_DAYS]

    def __len__(self) -> int:
        """Store×SKUs ever seen."""
        return len(self._stores)

    def fold(self, events: pl.DataFrame, batch_ids: Iterable[str]) -> pl.DataFrame:
        """Add the events of ``batch_ids`` (``store_id, sku_id, sold_at, quantity``);
        returns the store×SKUs they touched. Batches already folded must not be passed."""
        ids = set(batch_ids)
        again = ids & self.folded
        if again:
            raise ValueError(f"batches {sorted(again)[:3]} are already folded")
        self.folded |= ids
        if events.is_empty():
            return pl.DataFrame(schema={k: pl.String for k in _KEYS})
        q = pl.col("quantity")
        days = events.group_by(*_KEYS, pl.col("sold_at").dt.date().alias("date")).agg(
            q.filter(q > 0).sum().cast(pl.Float64).alias("units")
        )
        newest = days["date"].max()
        assert isinstance(newest, date)
        self._advance(newest)
        touched = days.group_by(*_KEYS).agg(
            pl.col("date").filter(pl.col("units") > 0).max().alias("last_sale")
        )
        rows = self._rows_of(touched["store_id"].to_list(), touched["sku_id"].to_list(), add=True)
        last = touched["last_sale"].cast(pl.Int32).fill_null(_NO_SALE).to_numpy()
        np.maximum.at(self._last, rows, last)
        self._add_units(days.join(touched.with_columns(_row=pl.Series(rows)), on=list(_KEYS)))
        return touched.select(*_KEYS)

    def velocity(self, keys: pl.DataFrame | None = None) -> pl.DataFrame:
        """Velocity as of ``newest`` for ``keys`` (default: every store×SKU ever seen; keys
        never seen are left out), in the columns of :func:`features.sales.velocity`."""
        if self.newest is None:
            return pl.DataFrame(schema=VELOCITY_SCHEMA)
        if keys is None:
            rows = np.arange(len(self._stores), dtype=np.int64)
        else:
            wanted = keys.select(*_KEYS).unique()
            found = self._rows_of(wanted["store_id"].to_list(), wanted["sku_id"].to_list())
            rows = np.array([r for r in found if r >= 0], dtype=np.int64)
        today = _day(self.newest)
        # columns of the window's days, newest first: age 0, 1, … 27
        window = np.arange(today, today - 28, -1) % KEEP_DAYS
        units = self._units[rows][:, window]
        last = self._last[rows]
        return (
            pl.DataFrame(
                {
                    "store_id": pl.Series(
                        [self._stores[r] for r in rows.tolist()], dtype=pl.String
                    ),
                    "sku_id": pl.Series([self._skus[r] for r in rows.tolist()], dtype=pl.String),
                    "as_of": pl.Series([self.newest] * len(rows), dtype=pl.Date),
                    "units_1d": units[:, 0],
                    "units_7d": units[:, :7].sum(axis=1),
                    "units_28d": units.sum(axis=1),
                    "days_since_last_sale": _nulls_where_no_sale(
                        today - last.astype(np.int64), last
                    ),
                }
            )
            .sort(*_KEYS)
            .cast(VELOCITY_SCHEMA)  # type: ignore[arg-type]
        )

    # Inside ------------------------------------------------------------------------------
    def _rows_of(self, stores: list[str], skus: list[str], *, add: bool = False) -> np.ndarray:
        """Row numbers of the keys (-1 for an unknown one, or a new row with ``add``)."""
        table = self._rows
        out = np.empty(len(stores), dtype=np.int64)
        for i, key in enumerate(zip(stores, skus, strict=True)):
            row = table.get(key, -1)
            if row < 0 and add:
                row = table[key] = len(self._stores)
                self._stores.append(key[0])
                self._skus.append(key[1])
            out[i] = row
        if len(self._stores) > len(self._last):  # grow the arrays (doubling: amortised)
            size = max(1024, 2 * len(self._stores))
            last = np.full(size, _NO_SALE, dtype=np.int32)
            last[: len(self._last)] = self._last
            units = np.zeros((size, KEEP_DAYS), dtype=np.float64)
            units[: len(self._units)] = self._units
            self._last, self._units = last, units
        return out

    def _advance(self, newest: date) -> None:
        """Move the newest day forward: the days leaving the window free their columns."""
        if self.newest is not None and newest <= self.newest:
            return
        if self.newest is not None:
            gone = range(_day(self.newest) + 1, _day(newest) + 1)
            if len(gone) >= KEEP_DAYS:
                self._units[:] = 0.0
            else:
                self._units[:, [d % KEEP_DAYS for d in gone]] = 0.0
        self.newest = newest

    def _add_units(self, days: pl.DataFrame) -> None:
        """Add ``_row, date, units`` rows whose day is still in the window."""
        assert self.newest is not None
        cut = self.newest - timedelta(days=KEEP_DAYS)
        fresh = days.filter(pl.col("date") > cut)
        if fresh.is_empty():
            return
        columns = fresh["date"].cast(pl.Int32).to_numpy().astype(np.int64) % KEEP_DAYS
        np.add.at(self._units, (fresh["_row"].to_numpy(), columns), fresh["units"].to_numpy())

    # Checkpoint ----------------------------------------------------------------------------
    def snapshot(self) -> VelocityState:
        """A copy to checkpoint while folding goes on (the arrays are updated in place, so
        they are copied: a few MB for 20,000 keys)."""
        copy = VelocityState()
        copy.newest, copy.pushed_as_of, copy.folded = (
            self.newest,
            self.pushed_as_of,
            set(self.folded),
        )
        n = len(self._stores)
        copy._stores, copy._skus = self._stores[:n], self._skus[:n]
        copy._rows = dict(self._rows)
        copy._last, copy._units = self._last[:n].copy(), self._units[:n].copy()
        return copy

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The state as frames: ``store_id, sku_id, last_sale`` per key and ``store_id,
        sku_id, date, units`` per key and kept day with units."""
        n = len(self._stores)
        stores = pl.Series(self._stores[:n], dtype=pl.String)
        skus = pl.Series(self._skus[:n], dtype=pl.String)
        last = self._last[:n]
        keys = pl.DataFrame(
            {
                "store_id": stores,
                "sku_id": skus,
                "last_sale": _nulls_where_no_sale(last, last).cast(pl.Int32).cast(pl.Date),
            }
        )
        if self.newest is None:
            return keys, pl.DataFrame(schema=_RECENT_SCHEMA)
        rows, cols = np.nonzero(self._units[:n])
        today = _day(self.newest)
        days = today - (today - cols) % KEEP_DAYS  # the kept day each column holds
        recent = pl.DataFrame(
            {
                "store_id": stores.gather(rows),
                "sku_id": skus.gather(rows),
                "date": pl.Series(days, dtype=pl.Int32).cast(pl.Date),
                "units": self._units[rows, cols],
            }
        )
        return keys, recent

    def save(self, path: Path) -> None:
        """Write the state atomically (one Parquet file; folded batch ids in its metadata):
        rows of keys (``is_key``, their last sale) and rows of recent days' units."""
        path.parent.mkdir(parents=True, exist_ok=True)
        keys, recent = self.frames()
        frame = pl.concat(
            [
                keys.with_columns(
                    pl.lit(None, pl.Date).alias("date"), pl.lit(None, pl.Float64).alias("units")
                ),
                recent.with_columns(pl.lit(None, pl.Date).alias("last_sale")),
            ],
            how="diagonal",
        ).with_columns(pl.col("date").is_null().alias("is_key"))
        meta = {
            "newest": self.newest.isoformat() if self.newest else "",
            "pushed_as_of": self.pushed_as_of.isoformat() if self.pushed_as_of else "",
            "folded": json.dumps(sorted(self.folded)),
        }
        metadata = {f"replen.{k}": v for k, v in meta.items()}
        atomic_write_path(path, lambda tmp: frame.write_parquet(tmp, metadata=metadata))

    @classmethod
    def load(cls, path: Path) -> VelocityState:
        """The state saved at ``path``, or an empty one when there is none yet. Reads the
        files earlier versions wrote too (rows appended, not yet aggregated)."""
        state = cls()
        if not path.exists():
            return state
        meta = pl.read_parquet_metadata(path)
        frame = pl.read_parquet(path)

        def day(name: str) -> date | None:
            text = meta.get(f"replen.{name}", "")
            return date.fromisoformat(text) if text else None

        state.pushed_as_of = day("pushed_as_of")
        state.folded = set(json.loads(meta.get("replen.folded", "[]")))
        newest = day("newest")
        if newest is None:
            return state
        state._advance(newest)
        keys = (
            frame.filter(pl.col("is_key"))
            .group_by(*_KEYS, maintain_order=True)
            .agg(pl.col("last_sale").max())
        )
        rows = state._rows_of(keys["store_id"].to_list(), keys["sku_id"].to_list(), add=True)
        last = keys["last_sale"].cast(pl.Int32).fill_null(_NO_SALE).to_numpy()
        np.maximum.at(state._last, rows, last)
        recent = frame.filter(~pl.col("is_key")).select(list(_RECENT_SCHEMA))
        numbered = keys.select(*_KEYS).with_columns(_row=pl.Series(rows))
        state._add_units(recent.join(numbered, on=list(_KEYS)))
        return state


def _nulls_where_no_sale(values: np.ndarray, last: np.ndarray) -> pl.Series:
    """``values`` as an Int64 series, null where ``last`` is no sale."""
    return pl.Series(values, dtype=pl.Int64).scatter(np.flatnonzero(last == _NO_SALE), None)


def _day(d: date) -> int:
    """Days since 1970-01-01 (polars' physical Date)."""
    return (d - _EPOCH).days
