"""Which lake parts may hold an event id: 64-bit hashes, sorted, searched in O(log n).

The lake deduplicates every batch against every event it holds; scanning all ids per batch
would cost in proportion to the lake. This index keeps each event's id hash (8 bytes) and
part number (4 bytes): a sorted base searched by bisection and a bounded dict of recent
small additions; additions are only queued when a part commits and indexed at the next
lookup, large ones straight into the base (one sort of the new, one insert: amortised). A hash
match only names a part to read: the caller compares the ids themselves, so a collision
costs a read, never a wrong answer.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["EventIndex", "id_hashes", "repeated"]


def id_hashes(ids: pl.Series) -> np.ndarray:
    """64-bit hashes of event ids (stable within one process, which is all the index needs)."""
    return ids.hash(seed=0).to_numpy()


def repeated(hashes: np.ndarray) -> np.ndarray | None:
    """Where a hash occurs more than once (None when none does): one sort, no hash table."""
    ordered = np.sort(hashes)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    return np.isin(hashes, twice) if twice.size else None


class EventIndex:
    """Event-id hashes → part numbers, for one process's view of the lake."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self._base_h = np.empty(0, dtype=np.uint64)
        self._base_f = np.empty(0, dtype=np.uint32)
        self._recent: dict[int, int] = {}
        self._recent_h: list[np.ndarray] = []
        self._recent_f: list[np.ndarray] = []
        self._queued: list[tuple[np.ndarray, int]] = []

    def __len__(self) -> int:
        queued = sum(len(h) for h, _ in self._queued)
        return len(self._base_h) + sum(len(h) for h in self._recent_h) + queued

    def add(self, ids: pl.Series, file: str) -> None:
        """Queue the event ids of one committed part (indexed at the next lookup)."""
        if ids.is_empty():
            return
        self.files.append(file)
        self._queued.append((id_hashes(ids), len(self.files) - 1))

    def _settle(self) -> None:
        """Index the queued parts: small ones into the dict, the rest into the base."""
        queued, self._queued = self._queued, []
        for hashes, number in queued:
            self._recent_h.append(hashes)
            self._recent_f.append(np.full(len(hashes), number, dtype=np.uint32))
        pending = sum(len(h) for h in self._recent_h)
        if pending > min(500_000, max(50_000, len(self._base_h) // 8)):
            self._merge()  # all at once: one sort of the new hashes, one insert
            return
        for hashes, number in queued:
            self._recent.update(dict.fromkeys(hashes.tolist(), number))

    def candidate_files(self, ids: pl.Series) -> list[str]:
        """Parts that may hold any of ``ids`` (their id hashes match)."""
        if ids.is_empty() or len(self) == 0:
            return []
        self._settle()
        hashes = id_hashes(ids)
        found: set[int] = set()
        if len(self._base_h):
            lo = np.searchsorted(self._base_h, hashes, side="left")
            hi = np.searchsorted(self._base_h, hashes, side="right")
            for a, b in zip(lo[hi > lo].tolist(), hi[hi > lo].tolist(), strict=True):
                found.update(self._base_f[a:b].tolist())
        if self._recent:
            recent = self._recent
            found.update(recent[h] for h in hashes.tolist() if h in recent)
            # a hash seen twice among recent parts keeps only the latest in the dict
            if len(recent) < sum(len(h) for h in self._recent_h):
                for h_arr, f_arr in zip(self._recent_h, self._recent_f, strict=True):
                    hit = np.isin(h_arr, hashes)
                    if hit.any():
                        found.update(np.unique(f_arr[hit]).tolist())
        return [self.files[i] for i in sorted(found)]

    def _merge(self) -> None:
        """Insert the recent hashes into the sorted base: O(base + recent log recent)."""
        h = np.concatenate(self._recent_h)
        f = np.concatenate(self._recent_f)
        order = np.argsort(h, kind="stable")
        h, f = h[order], f[order]
        at = np.searchsorted(self._base_h, h, side="right")
        self._base_h = np.insert(self._base_h, at, h)
        self._base_f = np.insert(self._base_f, at, f)
        self._recent, self._recent_h, self._recent_f = {}, [], []
