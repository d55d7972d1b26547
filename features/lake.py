"""Append-only, idempotent POS lake: one Parquet part per batch, committed by manifest.

A batch is visible only once its manifest exists. Its POS lines are one part sorted by
``sold_at`` (row-group statistics and the manifest's time span let readers skip it), under
a folder per commit day; older lakes' ``date=`` day partitions stay readable. Parts are
written to a temporary name, fsynced and renamed; the manifest is written the same way,
last. A crash at any point leaves either a committed batch or orphan parts that no reader
sees; a batch that fails in this process removes its own parts at once, and a long-running
writer (the server) sweeps what dead writers left every few minutes, so a resend of the
same input after a crash neither loses nor double counts events, and nothing half-written
piles up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from features.events import EVENT_SCHEMA, REJECT_SCHEMA, ValidationResult, same_body
from features.lake_index import EventIndex, id_hashes, repeated
from kernel.errors import InvalidInput, NotFound, StorageError, storage_error
from kernel.files import write_bytes, write_parquet
from kernel.rejects import REJECT_ID, reject_ids

__all__ = ["BatchReport", "Lake", "VoidReport", "write_parquet_atomically"]

_RESERVE_LINES = 100_000  # unindexed lines from which the index reserves room for them

_EVENT_COLUMNS = [*EVENT_SCHEMA, "batch_id"]
# How often a long-running writer sweeps parts that dead writers left uncommitted.
SWEEP_SECONDS = 600.0


@dataclass
class BatchReport:
    """Outcome of one ingest batch; ``received == accepted + duplicates + rejected`` always.

    ``rejected`` counts every line of the batch that failed (``rejected_by_rule`` by rule);
    ``already_quarantined`` of them were in the quarantine already (the same line delivered
    before: :mod:`kernel.rejects`) and were not recorded again. ``rejected_lines`` holds
    the batch's rejected lines (each with its ``reject_id``) in memory, for a reply to the
    sender; it is not part of :meth:`to_dict`."""

    batch_id: str
    received: int
    accepted: int
    duplicates: int
    rejected: int
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    unknown_stores: list[str] = field(default_factory=list)
    unknown_skus: list[str] = field(default_factory=list)
    first_sold_at: str | None = None
    last_sold_at: str | None = None
    already_quarantined: int = 0
    rejected_lines: pl.DataFrame | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {
            f.name: _copy(getattr(self, f.name)) for f in fields(self) if f.name != "rejected_lines"
        }


@dataclass
class VoidReport:
    """A correction: events voided (never deleted); the record names who and why."""

    batch_id: str
    actor: str
    reason: str
    voided: int
    already_void: int
    not_found: list[str]
    batches: list[str]
    keys: list[tuple[str, str]] = field(default_factory=list)  # store×SKUs touched

    def to_dict(self) -> dict[str, object]:
        data = {f.name: _copy(getattr(self, f.name)) for f in fields(self)}
        data["keys"] = len(self.keys)
        return data


class Lake:
    """The POS lake rooted at ``root``; one writer at a time (an exclusive file lock).

    History is never edited: a correction commits a *void* batch listing event ids, and
    every reader of events (:meth:`scan_events`) leaves voided events out. A voided id
    stays known, so resending it is a duplicate, not a new sale.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.events_dir = self.root / "pos"
        self.inventory_dir = self.root / "inventory"
        self.quarantine_dir = self.root / "quarantine"
        self.manifest_dir = self.root / "_manifests"
        self.voids_dir = self.root / "voids"
        for d in (
            self.events_dir,
            self.inventory_dir,
            self.quarantine_dir,
            self.manifest_dir,
            self.voids_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        # Caches of committed state, extended as new manifests appear (any process may
        # commit; manifests are immutable once written).
        self._manifests: dict[str, dict[str, Any]] = {}
        self._ids = EventIndex()  # event id hash → part file, for deduplication
        self._indexed: set[str] = set()
        self._swept_at: float | None = None
        self._listed_mtime, self._listed_at = -1, 0.0
        self._arrivals: list[str] = []  # POS batch ids in the order this process saw them
        self._rejects: set[str] = set()  # reject ids of every quarantined line
        self._rejects_indexed: set[str] = set()  # batches whose quarantine part is in it

    # Writing -------------------------------------------------------------------------------
    def append_events(
        self,
        validated: ValidationResult,
        known_stores: set[str] | None = None,
        known_skus: set[str] | None = None,
        actor: str | None = None,
        seen_rejects: dict[str, int] | None = None,
    ) -> BatchReport:
        """Commit the valid, new events of a batch and quarantine the rest, atomically;
        ``actor`` (who sent it) is kept in the batch's manifest.

        A rejected line already in the quarantine (same rule, event id and raw line: its
        ``reject_id``, :mod:`kernel.rejects`) is counted as rejected again but not
        recorded twice (``already_quarantined``). ``seen_rejects`` numbers identical
        rejected lines across the batches of one delivery: pass the same dict to each."""
        batch_id = _new_batch_id()
        accepted = validated.accepted
        received = accepted.height + validated.rejected.height
        with self._lock():
            self._remove_orphans()
            self._refresh()
            new, duplicates, conflicts = self._split_known(accepted)
            rejected = pl.concat([validated.rejected, conflicts], how="vertical_relaxed")
            rejected = rejected.with_columns(reject_ids(rejected, "event_id", seen_rejects))
            known = self._quarantined_ids()
            fresh = rejected.filter(
                pl.Series([i not in known for i in rejected[REJECT_ID]], dtype=pl.Boolean)
            )
            with self._or_discard(batch_id):
                files = self._write_event_parts(new, batch_id)
                if fresh.height:
                    files.append(self._write_quarantine(fresh, batch_id))
            report = BatchReport(
                batch_id=batch_id,
                received=received,
                accepted=new.height,
                duplicates=duplicates,
                rejected=rejected.height,
                already_quarantined=rejected.height - fresh.height,
                rejected_lines=rejected,
                rejected_by_rule=dict(rejected.group_by("rule").len().sort("rule").iter_rows())
                if rejected.height
                else {},
                unknown_stores=_unknown(new, "store_id", known_stores),
                unknown_skus=_unknown(new, "sku_id", known_skus),
                first_sold_at=_iso(new["sold_at"].min()) if new.height else None,
                last_sold_at=_iso(new["sold_at"].max()) if new.height else None,
            )
            with self._or_discard(batch_id):
                self._commit(batch_id, "pos", files, report.to_dict(), actor)
            self._index_new(batch_id, new)
            self._rejects.update(fresh[REJECT_ID].to_list())
            self._rejects_indexed.add(batch_id)
        assert report.received == report.accepted + report.duplicates + report.rejected
        return report

    def append_inventory(self, snapshots: pl.DataFrame) -> int:
        """Commit stock snapshots (``store_id, sku_id, as_of, on_hand``); returns rows written."""
        batch_id = _new_batch_id()
        frame = snapshots.select(
            pl.col("store_id").cast(pl.String),
            pl.col("sku_id").cast(pl.String),
            pl.col("as_of").cast(pl.Datetime("us", "UTC")),
            pl.col("on_hand").cast(pl.Float64),
        )
        with self._lock():
            self._remove_orphans()
            path = self.inventory_dir / f"part-{batch_id}.parquet"
            with self._or_discard(batch_id):
                _atomic_parquet(frame, path)
                self._commit(batch_id, "inventory", [path], {"rows": frame.height})
        return frame.height

    def void(
        self,
        *,
        actor: str,
        reason: str,
        event_ids: list[str] | None = None,
        batch_ids: list[str] | None = None,
    ) -> VoidReport:
        """Void events by id and/or every event of whole batches: commits a void batch (its
        manifest names ``actor`` and ``reason``); readers leave those events out from then on.
        """
        event_ids, batch_ids = list(event_ids or []), list(batch_ids or [])
        if not reason.strip():
            raise InvalidInput(
                "a correction needs a reason", field="reason", rule="reason.required"
            )
        if not event_ids and not batch_ids:
            raise InvalidInput(
                "name the events to void (event ids or batch ids)",
                field="event_ids",
                rule="event_ids.required",
            )
        batch_id = _new_batch_id()
        with self._lock():
            self._remove_orphans()
            self._refresh()
            unknown = [b for b in batch_ids if self._manifests.get(b, {}).get("kind") != "pos"]
            if unknown:
                raise NotFound(
                    f"no POS batch {unknown[0]!r}",
                    hint="batch ids are in each ingest's answer and in `replen quarantine list`",
                )
            wanted = pl.DataFrame({"event_id": event_ids}, schema={"event_id": pl.String})
            by_batch = (
                self.scan_events(apply_voids=False)
                .filter(pl.col("batch_id").is_in(batch_ids))
                .select("event_id")
                .collect()
                if batch_ids
                else wanted.clear()
            )
            targets = pl.concat([wanted, by_batch]).unique(maintain_order=True)
            found = (
                self.scan_events(apply_voids=False)
                .join(targets.lazy(), on="event_id", how="semi")
                .select("event_id", "store_id", "sku_id")
                .collect()
            )
            missing = targets.join(found, on="event_id", how="anti")["event_id"].to_list()
            before = self._voided_ids()
            fresh = found.join(before, on="event_id", how="anti")
            files: list[Path] = []
            report = VoidReport(
                batch_id=batch_id,
                actor=actor,
                reason=reason,
                voided=fresh.height,
                already_void=found.height - fresh.height,
                not_found=missing[:1000],
                batches=batch_ids,
                keys=sorted(set(fresh.select("store_id", "sku_id").iter_rows())),
            )
            summary = report.to_dict() | {"not_found_count": len(missing)}
            with self._or_discard(batch_id):
                if fresh.height:
                    path = self.voids_dir / f"part-{batch_id}.parquet"
                    _atomic_parquet(fresh.select("event_id"), path)
                    files.append(path)
                self._commit(batch_id, "void", files, summary, actor)
        return report

    def voids(self) -> list[dict[str, Any]]:
        """Every correction record (void batch manifests), oldest first."""
        return [m for m in self.batches() if m["kind"] == "void"]

    # Reading -------------------------------------------------------------------------------
    def scan_events(self, since: date | None = None, *, apply_voids: bool = True) -> pl.LazyFrame:
        """Committed POS events (lazy), voided ones left out; ``since`` prunes day
        partitions before that date."""
        files = [
            path
            for path, last_day in self._event_files()
            if since is None or last_day is None or last_day >= since
        ]
        if not files:
            return pl.LazyFrame(schema={**EVENT_SCHEMA, "batch_id": pl.String})
        events = pl.scan_parquet(files, hive_partitioning=False)
        voids = self._committed_files(self.voids_dir) if apply_voids else []
        if voids:
            events = events.join(pl.scan_parquet(voids), on="event_id", how="anti")
        return events

    def voided_ids(self) -> pl.DataFrame:
        """Every voided event id (``event_id``)."""
        return self._voided_ids()

    def _voided_ids(self) -> pl.DataFrame:
        files = self._committed_files(self.voids_dir)
        if not files:
            return pl.DataFrame(schema={"event_id": pl.String})
        return pl.read_parquet(files, columns=["event_id"])

    def pos_arrivals(self, start: int = 0, *, cheap: bool = False) -> list[dict[str, Any]]:
        """Manifests of the POS and void batches this process saw commit, from the
        ``start``-th on (a follower passes how many it has already seen: the cost is the new
        ones only)."""
        self._refresh(cheap=cheap)
        return [self._manifests[b] for b in self._arrivals[start:]]

    def pos_batches(self, *, cheap: bool = False) -> list[dict[str, Any]]:
        """Committed POS batches' manifests, oldest first.

        ``cheap`` skips listing the manifests when their folder has not changed (its
        mtime) in the last second: a poller's fast path. Writers always list."""
        self._refresh(cheap=cheap)
        return [
            self._manifests[k]
            for k in sorted(self._manifests)
            if self._manifests[k]["kind"] == "pos"
        ]

    def read_batches(self, batch_ids: list[str], columns: list[str] | None = None) -> pl.DataFrame:
        """The POS lines committed by ``batch_ids`` (all of them, or ``columns``)."""
        files = [
            self.root / str(name)
            for b in batch_ids
            for name in self._manifests[b]["files"]
            if (self.root / str(name)).is_relative_to(self.events_dir)
        ]
        cols = columns or _EVENT_COLUMNS
        if not files:
            return pl.DataFrame(
                schema={c: ({**EVENT_SCHEMA, "batch_id": pl.String()})[c] for c in cols}
            )
        return pl.read_parquet(files, columns=cols, hive_partitioning=False)

    def scan_inventory(self) -> pl.LazyFrame:
        files = self._committed_files(self.inventory_dir)
        if not files:
            return pl.LazyFrame(
                schema={
                    "store_id": pl.String,
                    "sku_id": pl.String,
                    "as_of": pl.Datetime("us", "UTC"),
                    "on_hand": pl.Float64,
                }
            )
        return pl.scan_parquet(files)

    def quarantine(self) -> pl.DataFrame:
        """Every quarantined line once, oldest first (``reject_id``, ``batch_id``: the batch
        that first recorded it)."""
        files = self._committed_files(self.quarantine_dir)
        if not files:
            return pl.DataFrame(
                schema={**REJECT_SCHEMA, REJECT_ID: pl.String, "batch_id": pl.String}
            )
        # Older parts may lack newer columns: align by name. Parts written before rejects
        # had an identity may repeat a line an earlier part holds: it is shown once.
        return pl.concat(
            [_with_reject_ids(pl.read_parquet(f)) for f in files], how="diagonal_relaxed"
        ).unique(REJECT_ID, keep="first", maintain_order=True)

    def newest_sold_at(self) -> datetime | None:
        """The latest sold_at of any committed event, from the batch manifests (no scan)."""
        batches = self.batches()
        voided = {b for m in batches if m["kind"] == "void" for b in m["summary"]["batches"]}
        times = [
            datetime.fromisoformat(str(m["summary"]["last_sold_at"]))
            for m in batches
            if m["kind"] == "pos"
            and m["summary"].get("last_sold_at")
            and m["batch_id"] not in voided
        ]
        return max(times, default=None)

    def quarantine_of(self, batch_ids: list[str]) -> pl.DataFrame:
        """Rejected lines of the given batches only."""
        files = [self.quarantine_dir / f"part-{b}.parquet" for b in batch_ids]
        found = [f for f in files if f.exists()]
        if not found:
            return pl.DataFrame(
                schema={**REJECT_SCHEMA, REJECT_ID: pl.String, "batch_id": pl.String}
            )
        return pl.concat(
            [_with_reject_ids(pl.read_parquet(f)) for f in found], how="diagonal_relaxed"
        )

    def batches(self) -> list[dict[str, Any]]:
        """Every committed batch's manifest, oldest first."""
        self._refresh()
        return [self._manifests[k] for k in sorted(self._manifests)]

    # Internals -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _committed_files(self, under: Path) -> list[Path]:
        files: list[Path] = []
        for manifest in self.batches():
            for name in manifest["files"]:
                path = self.root / str(name)
                if path.is_relative_to(under):
                    files.append(path)
        return files

    def _event_files(self) -> list[tuple[Path, date | None]]:
        """Committed POS parts with the last sales day each may hold (None: unknown)."""
        out: list[tuple[Path, date | None]] = []
        for manifest in self.batches():
            if manifest["kind"] != "pos":
                continue
            last = manifest["summary"].get("last_sold_at")
            last_day = datetime.fromisoformat(str(last)).date() if last else None
            for name in manifest["files"]:
                path = self.root / str(name)
                if not path.is_relative_to(self.events_dir):
                    continue
                folder = path.parent.name
                if folder.startswith("date="):  # a day partition of an older lake
                    out.append((path, date.fromisoformat(folder[5:])))
                else:
                    out.append((path, last_day))
        return out

    def _split_known(self, accepted: pl.DataFrame) -> tuple[pl.DataFrame, int, pl.DataFrame]:
        """Split into (new events, number of duplicates, conflicts as rejects).

        Within the batch the first occurrence of an id wins; a repeat with the same body is
        a duplicate, with another body a conflict. Against the lake likewise. Repeats are
        found by id hash first, then compared by id: exact, and cheap when there are none.
        """
        same = same_body("", "_other")
        maybe = repeated(id_hashes(accepted["event_id"]))
        if maybe is not None:
            rows = pl.Series(maybe).arg_true()
            later = rows.filter(~accepted["event_id"].gather(rows).is_first_distinct())
            is_first = pl.Series([True] * accepted.height).scatter(later, False)
            first = accepted.filter(is_first)
            repeats = accepted.filter(~is_first).join(first, on="event_id", suffix="_other")
        else:
            first, repeats = accepted, None
        files = self._index().candidate_files(first["event_id"])
        if files:
            seen = (
                pl.scan_parquet(files, hive_partitioning=False)
                .select(list(EVENT_SCHEMA))
                .join(first.select("event_id").lazy(), on="event_id", how="semi")
                .collect()
            )
            new = first.join(seen.select("event_id"), on="event_id", how="anti")
            hits = first.join(seen, on="event_id", suffix="_other")
        else:
            new, hits = first, None
        conflicts = pl.concat(
            [
                pl.DataFrame(schema=REJECT_SCHEMA),
                *[
                    _conflict_rejects(part.filter(~same), against)
                    for part, against in (
                        (repeats, "an earlier line of this batch"),
                        (hits, "an event already in the lake"),
                    )
                    if part is not None
                ],
            ],
            how="vertical_relaxed",
        )
        duplicates = sum(part.filter(same).height for part in (repeats, hits) if part is not None)
        return new, duplicates, conflicts

    def _write_event_parts(self, events: pl.DataFrame, batch_id: str) -> list[Path]:
        """One part per batch, sorted by ``sold_at``: one fsync however many days it spans."""
        if events.is_empty():
            return []
        path = self.events_dir / _commit_day(batch_id) / f"part-{batch_id}.parquet"
        # Lazily: an eager step would first copy every column into aligned chunks.
        part = events.lazy().select(*EVENT_SCHEMA, pl.lit(batch_id).alias("batch_id")).collect()
        if not part["sold_at"].is_sorted():  # files mostly come in time order: no gather
            part = part.sort("sold_at")
        # zstd level 1: twice as fast as the default level for ~10% larger parts.
        _atomic_parquet(part, path, level=1)
        return [path]

    def _write_quarantine(self, rejected: pl.DataFrame, batch_id: str) -> Path:
        path = self.quarantine_dir / f"part-{batch_id}.parquet"
        frame = rejected.select(
            *[pl.col(c).cast(t) for c, t in REJECT_SCHEMA.items()],
            pl.col(REJECT_ID),
            pl.lit(batch_id).alias("batch_id"),
        )
        _atomic_parquet(frame, path)
        return path

    def _quarantined_ids(self) -> set[str]:
        """Reject ids of every committed quarantine part, extended with unindexed batches
        (committed by other processes since the last look); call under the writer lock."""
        self._refresh()
        pending = [
            b
            for b, m in self._manifests.items()
            if m["kind"] == "pos" and b not in self._rejects_indexed
        ]
        for b in sorted(pending):
            for name in self._manifests[b]["files"]:
                path = self.root / str(name)
                if path.is_relative_to(self.quarantine_dir):
                    part = _with_reject_ids(pl.read_parquet(path))
                    self._rejects.update(part[REJECT_ID].to_list())
            self._rejects_indexed.add(b)
        return self._rejects

    def _commit(
        self, batch_id: str, kind: str, files: list[Path], summary: dict, actor: str | None = None
    ) -> None:
        """Write the manifest last: from this moment on, the batch exists."""
        manifest = {
            "batch_id": batch_id,
            "kind": kind,
            "actor": actor,
            "committed_at": datetime.now(UTC).isoformat(),
            "files": [str(p.relative_to(self.root)) for p in files],
            "summary": summary,
        }
        path = self.manifest_dir / f"{batch_id}.json"
        _atomic_bytes(json.dumps(manifest, indent=1).encode(), path)
        self._manifests[batch_id] = manifest
        if kind in ("pos", "void"):
            self._arrivals.append(batch_id)

    def _refresh(self, *, cheap: bool = False) -> None:
        """Load manifests committed since the last look (by this or another process).

        ``cheap``: trust an unchanged folder mtime for up to a second (mtimes are coarse:
        two commits within one clock tick leave one mtime), else list the folder."""
        now = time.monotonic()
        mtime = os.stat(self.manifest_dir).st_mtime_ns
        if cheap and mtime == self._listed_mtime and now - self._listed_at < 1.0:
            return
        self._listed_mtime, self._listed_at = mtime, now
        for name in sorted(os.listdir(self.manifest_dir)):
            if name.endswith(".json") and name[:-5] not in self._manifests:
                manifest = json.loads((self.manifest_dir / name).read_text())
                self._manifests[name[:-5]] = manifest
                if manifest["kind"] in ("pos", "void"):
                    self._arrivals.append(name[:-5])

    def _index(self) -> EventIndex:
        """The event-id index over committed POS parts, extended with unindexed batches."""
        self._refresh()
        pending = [
            b for b, m in self._manifests.items() if m["kind"] == "pos" and b not in self._indexed
        ]
        lines = sum(int(self._manifests[b]["summary"].get("accepted", 0)) for b in pending)
        if lines > _RESERVE_LINES:  # a big lake at start-up: its keys written once, not queued
            self._ids.reserve(lines)
        for b in sorted(pending):
            for name in self._manifests[b]["files"]:
                path = self.root / str(name)
                if path.is_relative_to(self.events_dir):
                    ids = pl.read_parquet(path, columns=["event_id"], hive_partitioning=False)
                    self._ids.add(ids["event_id"], str(path))
            self._indexed.add(b)
        return self._ids

    def _index_new(self, batch_id: str, events: pl.DataFrame) -> None:
        """Add a just-committed batch to the id index from memory (no re-read)."""
        self._indexed.add(batch_id)  # so that _index() does not read it back from disk
        self._index()  # catch up with batches committed by other processes
        path = self.events_dir / _commit_day(batch_id) / f"part-{batch_id}.parquet"
        self._ids.add(events["event_id"], str(path))

    @contextlib.contextmanager
    def _or_discard(self, batch_id: str) -> Iterator[None]:
        """Remove the batch's own parts if the block fails before its manifest exists; a
        full or read-only disk becomes a :class:`StorageError`."""
        try:
            yield
        except BaseException as exc:
            if not (self.manifest_dir / f"{batch_id}.json").exists():
                # A parallel writer may still finish a file after the error: the next
                # write sweeps everything no manifest names, whatever remains now.
                self._swept_at = None
                shutil.rmtree(self.root / "_staging" / batch_id, ignore_errors=True)
                for under in (
                    self.events_dir,
                    self.inventory_dir,
                    self.quarantine_dir,
                    self.voids_dir,
                ):
                    for part in under.rglob(f"part-{batch_id}.parquet"):
                        part.unlink(missing_ok=True)
            found = storage_error(exc) if isinstance(exc, Exception) else None
            if found is not None and found is not exc:
                raise StorageError(
                    f"could not write to the lake at {self.root}: {found.message}",
                    full=found.full,
                    hint=found.hint,
                ) from exc
            raise

    def _remove_orphans(self) -> None:
        """Delete parts and temp files left by a writer that died before its manifest.

        Done under the writer lock, by each process at its first write and then every
        ``SWEEP_SECONDS``: no writer is active meanwhile, so whatever no manifest names is
        an orphan, and no reader ever saw it.
        """
        now = time.monotonic()
        if self._swept_at is not None and now - self._swept_at < SWEEP_SECONDS:
            return
        self._swept_at = now
        self._refresh()
        committed = {self.root / str(n) for m in self._manifests.values() for n in m["files"]}
        for under in (self.events_dir, self.inventory_dir, self.quarantine_dir, self.voids_dir):
            for path in under.rglob("*"):
                if path.is_file() and path not in committed:
                    path.unlink(missing_ok=True)
        shutil.rmtree(self.root / "_staging", ignore_errors=True)
        for tmp in self.manifest_dir.glob("*.tmp"):
            tmp.unlink(missing_ok=True)


def _with_reject_ids(part: pl.DataFrame) -> pl.DataFrame:
    """A quarantine part with its lines' ``reject_id`` (computed for parts written before
    lines had one: numbered within the part, as its delivery would have numbered them)."""
    if REJECT_ID in part.columns:
        return part
    return part.with_columns(reject_ids(part, "event_id"))


def _copy(value: object) -> object:
    """A shallow copy of a report field (lists and dicts of plain values)."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _conflict_rejects(frame: pl.DataFrame, against: str) -> pl.DataFrame:
    return frame.select(
        pl.lit(None, dtype=pl.Int64).alias("line"),
        pl.col("event_id"),
        pl.lit("event_id.conflict").alias("rule"),
        pl.lit("event_id").alias("field"),
        pl.col("event_id").alias("value"),
        pl.lit(f"event_id reused with a different body than {against}").alias("message"),
        pl.struct(list(EVENT_SCHEMA)).struct.json_encode().alias("payload"),
    )


def _unknown(frame: pl.DataFrame, column: str, known: set[str] | None) -> list[str]:
    if known is None or frame.is_empty():
        return []
    return sorted(set(frame[column].unique().to_list()) - known)


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _commit_day(batch_id: str) -> str:
    """The folder of a batch's part: its commit day (batch ids start with the UTC time)."""
    return f"{batch_id[:4]}-{batch_id[4:6]}-{batch_id[6:8]}"


def _new_batch_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


def _atomic_parquet(frame: pl.DataFrame, path: Path, level: int | None = None) -> None:
    write_parquet(frame, path, level=level)


def write_parquet_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Replace ``path`` by ``frame`` all at once (temp file, fsync, rename, fsync folder)."""
    _atomic_parquet(frame, path)


def _atomic_bytes(data: bytes, path: Path) -> None:
    write_bytes(data, path)
