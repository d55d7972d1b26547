"""Which lake parts may hold an event id: id hashes and part numbers, sorted, bisected.

The lake deduplicates every batch against every event it holds; scanning all ids per batch
would cost in proportion to the lake. This index packs, for each event, the top 42 bits of
its id hash and its part number (22 bits) into one 64-bit word: one sorted array, 8 bytes
per event, searched by bisection. Parts are queued when they commit and indexed at the next
lookup — small ones into a dict, large ones (or many) sorted and inserted into the array at
once (amortised). A match only names a part to read: the caller compares the ids
themselves, so a collision costs a read, never a wrong answer.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["MAX_PARTS", "EventIndex", "id_hashes", "repeated"]

_PART_BITS = 22
MAX_PARTS = 1 << _PART_BITS  # 4M parts: 20 billion lines at 5,000 per HTTP batch
_PART_MASK = np.uint64(MAX_PARTS - 1)
_SHIFT = np.uint64(_PART_BITS)


def id_hashes(ids: pl.Series) -> np.ndarray:
    """64-bit hashes of event ids (stable within one process, which is all the index needs)."""
    return ids.hash(seed=0).to_numpy()


def repeated(hashes: np.ndarray) -> np.ndarray | None:
    """Where a hash occurs more than once (None when none does): one sort finds the
    repeated values (few), a hash set of those marks their places (numpy's ``isin`` would
    sort everything again: five times slower)."""
    ordered = np.sort(hashes)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    if not twice.size:
        return None
    return pl.Series(hashes).is_in(pl.Series(np.unique(twice)).implode()).to_numpy()


class EventIndex:
    """Event-id hashes → part numbers, for one process's view of the lake."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self._base = np.empty(0, dtype=np.uint64)  # sorted (hash prefix << 22 | part)
        self._recent: dict[int, set[int]] = {}  # hash prefix → parts, for small additions
        self._recent_keys: list[np.ndarray] = []
        self._queued: list[np.ndarray] = []

    def __len__(self) -> int:
        pending = sum(len(k) for k in self._recent_keys) + sum(len(k) for k in self._queued)
        return len(self._base) + pending

    def add(self, ids: pl.Series, file: str) -> None:
        """Queue the event ids of one committed part (indexed at the next lookup)."""
        if ids.is_empty():
            return
        number = len(self.files)
        if number >= MAX_PARTS:
            raise OverflowError(f"the lake index holds at most {MAX_PARTS:,} parts")
        self.files.append(file)
        self._queued.append(_keys(id_hashes(ids), number))

    def candidate_files(self, ids: pl.Series) -> list[str]:
        """Parts that may hold any of ``ids`` (their id hash prefixes match)."""
        if ids.is_empty() or len(self) == 0:
            return []
        self._settle()
        prefixes = id_hashes(ids) >> _SHIFT
        found: set[int] = set()
        if len(self._base):
            lo = np.searchsorted(self._base, prefixes << _SHIFT, side="left")
            hi = np.searchsorted(self._base, (prefixes + np.uint64(1)) << _SHIFT, side="left")
            hit = hi > lo
            for a, b in zip(lo[hit].tolist(), hi[hit].tolist(), strict=True):
                found.update((self._base[a:b] & _PART_MASK).tolist())
        if self._recent:
            for p in prefixes.tolist():
                found.update(self._recent.get(p, ()))
        return [self.files[i] for i in sorted(found)]

    def _settle(self) -> None:
        """Index the queued parts: into the dict while few, else into the sorted array."""
        if not self._queued:
            return
        queued, self._queued = self._queued, []
        self._recent_keys.extend(queued)
        pending = sum(len(k) for k in self._recent_keys)
        if pending > min(200_000, max(50_000, len(self._base) // 8)):
            self._merge()
            return
        for keys in queued:
            for prefix, part in zip(
                (keys >> _SHIFT).tolist(), (keys & _PART_MASK).tolist(), strict=True
            ):
                self._recent.setdefault(prefix, set()).add(part)

    def _merge(self) -> None:
        """Sort the pending keys and insert them into the array: O(n + k log k)."""
        new = np.concatenate(self._recent_keys)
        self._recent_keys, self._recent = [], {}
        new.sort()
        if not len(self._base):
            self._base = new
            return
        self._base = np.insert(self._base, np.searchsorted(self._base, new), new)


def _keys(hashes: np.ndarray, part: int) -> np.ndarray:
    return ((hashes >> _SHIFT) << _SHIFT) | np.uint64(part)
