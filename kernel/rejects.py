"""The identity of a rejected line, so that a line delivered again is quarantined once.

A rejected line is identified by what was received, not by where: the rule it broke, its
key (``event_id`` of a POS line, the feed's key of another feed's row) and the raw line as
received (the quarantine's ``payload``), hashed (SHA-256, stable across processes and
versions), then numbered by occurrence within one delivery (``<hash>:<n>``), the same way a
mapping derives event ids (:func:`features.mapping._derived_ids`). So:

- the same file (or HTTP body, or stream entry) sent again yields the same ids, whatever
  its batches, line numbers or file name: its rejected lines are recognised as already in
  quarantine and are not recorded twice;
- two identical bad lines in one delivery stay two records (occurrences 0 and 1), and a
  delivery repeating them is recognised line for line;
- the line number, the batch and the message (which may name a line) are not part of the
  identity: a resend with lines added in front is still recognised.
"""

from __future__ import annotations

import hashlib

import polars as pl

__all__ = ["REJECT_ID", "reject_ids"]

REJECT_ID = "reject_id"
_SEP = "\x1f"  # unit separator: cannot be confused with text inside a field


def reject_ids(frame: pl.DataFrame, key: str, seen: dict[str, int] | None = None) -> pl.Series:
    """``reject_id`` of each rejected row of ``frame`` (columns ``rule``, ``key``,
    ``payload``), in row order.

    ``seen`` counts the fingerprints met earlier in the same delivery (its earlier
    batches) and is updated: pass one dict per delivery so that occurrences run across
    its batches; None starts from zero.
    """
    counts = {} if seen is None else seen
    ids: list[str] = []
    cols = [frame[c] if c in frame.columns else None for c in ("rule", key, "payload")]
    n = frame.height
    values = [c.cast(pl.String).to_list() if c is not None else [None] * n for c in cols]
    for rule, k, payload in zip(*values, strict=True):
        text = _SEP.join("" if v is None else v for v in (rule, k, payload))
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        occurrence = counts.get(digest, 0)
        counts[digest] = occurrence + 1
        ids.append(f"{digest}:{occurrence}")
    return pl.Series(REJECT_ID, ids, dtype=pl.String)
