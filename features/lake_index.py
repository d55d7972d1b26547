"""Which lake parts may hold an event id: id hashes and part numbers, sorted, bisected.

The lake deduplicates every batch against every event it holds; scanning all ids per batch
would cost in proportion to the lake. This index packs, for each event, the top 42 bits of
its id hash and its part number (22 bits) into one 64-bit word, 8 bytes per event, kept in
a few sorted arrays (runs) searched by bisection. Parts are queued when they commit and
indexed at the next lookup: sorted into a new run, merged with the runs not more than
twice its size (a binary counter: amortised O(log n) per event, ~log2(n / batch) runs), so
a batch never copies the big run of a big lake; that copy (and its second, transient copy
of the index) comes only when the index has doubled. At start-up the lake reserves room
for every part it is about to read (:meth:`EventIndex.reserve`): their keys are written
into one array and sorted in place, never held twice. A match only names a part to read:
the caller compares the ids themselves, so a collision costs a read, never a wrong answer.
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
        self._runs: list[np.ndarray] = []  # sorted (hash prefix << 22 | part); larger first
        self._queued: list[np.ndarray] = []
        self._room = np.empty(0, dtype=np.uint64)  # reserved for parts about to be added
        self._used = 0

    def __len__(self) -> int:
        queued = sum(len(k) for k in self._queued)
        return sum(len(r) for r in self._runs) + self._used + queued

    def reserve(self, n: int) -> None:
        """Make room for about ``n`` more keys (a lake's parts read at start-up): added
        parts are written into one array (sorted in place at the next lookup) instead of
        being queued, then concatenated — which held every key twice."""
        if n > len(self._room) - self._used:
            self._settle()
            self._room, self._used = np.empty(n, dtype=np.uint64), 0

    def add(self, ids: pl.Series, file: str) -> None:
        """Queue the event ids of one committed part (indexed at the next lookup)."""
        if ids.is_empty():
            return
        number = len(self.files)
        if number >= MAX_PARTS:
            raise OverflowError(f"the lake index holds at most {MAX_PARTS:,} parts")
        self.files.append(file)
        keys = _keys(id_hashes(ids), number)
        if self._used + len(keys) <= len(self._room):
            self._room[self._used : self._used + len(keys)] = keys
            self._used += len(keys)
        else:
            self._queued.append(keys)

    def candidate_files(self, ids: pl.Series) -> list[str]:
        """Parts that may hold any of ``ids`` (their id hash prefixes match)."""
        if ids.is_empty() or len(self) == 0:
            return []
        self._settle()
        prefixes = id_hashes(ids) >> _SHIFT
        low, high = prefixes << _SHIFT, (prefixes + np.uint64(1)) << _SHIFT
        found: set[int] = set()
        for run in self._runs:
            lo = np.searchsorted(run, low, side="left")
            hi = np.searchsorted(run, high, side="left")
            hit = hi > lo
            for a, b in zip(lo[hit].tolist(), hi[hit].tolist(), strict=True):
                found.update((run[a:b] & _PART_MASK).tolist())
        return [self.files[i] for i in sorted(found)]

    def _settle(self) -> None:
        """Index the reserved and the queued keys: each a sorted run, merged down."""
        if self._used:
            run = self._room[: self._used]  # sorted in place: no second copy
            self._room, self._used = np.empty(0, dtype=np.uint64), 0
            run.sort()
            self._push(run)
        if self._queued:
            queued, self._queued = self._queued, []
            run = np.concatenate(queued) if len(queued) > 1 else queued[0]
            del queued
            run.sort()
            self._push(run)

    def _push(self, run: np.ndarray) -> None:
        """Add a sorted run, merging it with the last runs while they are at most twice
        its size: runs at least double towards the first (the big one), so a lookup
        bisects ~log2(n / batch) runs and the big run is copied only when it doubles."""
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            last = self._runs.pop()
            small, big = (run, last) if len(run) < len(last) else (last, run)
            run = np.insert(big, np.searchsorted(big, small), small)
        self._runs.append(run)


def _keys(hashes: np.ndarray, part: int) -> np.ndarray:
    return ((hashes >> _SHIFT) << _SHIFT) | np.uint64(part)
