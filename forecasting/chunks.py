"""Retrain at any size: series in chunks of bounded memory, on the engine of choice.

Each chunk is trained (classify, backtest, select) and gated on its own, then the small
per-series results are merged; only one chunk's history and backtest are in memory at a
time. A chunk is also a selection pool: a class's champion model is the one that does best
over that class's series *in the chunk*. Chunks are dealt round-robin from the sorted keys,
so each is a sample of every store, and with one chunk (up to ``train_chunk_series``
series) nothing differs from a plain :func:`train`. Unset, the chunk size follows the
memory available (:func:`auto_chunk_series`). With several
chunks, the global boosted model kept for forecasting is the first chunk's (fitted on a
round-robin sample of every store; each chunk's backtest scored its own).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from forecasting.engine import Engine, LocalEngine, engine_context
from forecasting.gate import GateDecision, gate
from forecasting.history import keys_frame
from forecasting.select import summarise
from forecasting.train import TrainResult, _coverage_metrics, train

__all__ = [
    "ChunkedTrain",
    "auto_chunk_series",
    "available_memory",
    "combine_gates",
    "merge_results",
    "series_chunks",
    "train_chunked",
]

KEYS = ["store_id", "sku_id"]

# Measured (benchmarks/retrain_chunked.py, 100,000 series × 730 days): one chunk costs
# ~569 MB per 1,000 series; rounded up for the driver's state kept between chunks. The
# ceiling is the size measured to hold 100,000 series under 8 GB: 5,000 per chunk peaked at
# 5.63 GB (688 s), 10,000 at 8.85 GB (650 s) — what the driver keeps between chunks adds
# to the chunk's own, so larger chunks buy ~6% speed for 3 GB.
BYTES_PER_SERIES = 600_000
MIN_CHUNK_SERIES, MAX_CHUNK_SERIES, FALLBACK_CHUNK_SERIES = 1_000, 5_000, 5_000


def auto_chunk_series(available_bytes: int | None) -> int:
    """Series per retrain chunk for ``available_bytes`` of free memory: about half of it at
    ~0.6 GB per 1,000 series, rounded down to a thousand and clamped to 1,000–5,000;
    5,000 when the available memory is unknown (None)."""
    if available_bytes is None:
        return FALLBACK_CHUNK_SERIES
    fits = max(0, available_bytes) // 2 // BYTES_PER_SERIES
    return max(MIN_CHUNK_SERIES, min(MAX_CHUNK_SERIES, fits // 1_000 * 1_000))


def available_memory(
    meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Bytes of memory this process could still take: the kernel's MemAvailable, lowered to
    the room left under a cgroup (v2) limit when one is set. None when neither is readable."""
    found: list[int] = []
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


@dataclass
class ChunkedTrain:
    result: TrainResult
    decision: GateDecision | None  # None when no gate was asked for
    chunks: int
    engine: str


def series_chunks(keys: pl.DataFrame, chunk_series: int) -> list[pl.DataFrame]:
    """The store×SKUs of ``keys`` dealt round-robin into chunks of at most ``chunk_series``."""
    keys = keys.select(KEYS).unique().sort(KEYS)
    n = max(1, math.ceil(keys.height / chunk_series))
    if n == 1:
        return [keys]
    dealt = keys.with_columns((pl.int_range(pl.len()) % n).alias("_chunk"))
    return dealt.partition_by("_chunk", include_key=False, maintain_order=True)


def train_chunked(
    keys: pl.DataFrame,
    load: Callable[[pl.DataFrame], pl.DataFrame],
    *,
    chunk_series: int,
    engine: Engine | None = None,
    incumbent: pl.DataFrame | None = None,
    gated: bool = True,
    margin: float = 0.0,
    on_chunk: Callable[[int, int, int], None] | None = None,
    sample_series: int = 24,
    **train_kwargs: object,
) -> ChunkedTrain:
    """Train the series of ``keys`` chunk by chunk: ``load(chunk_keys)`` returns their
    daily-sales history. With ``gated``, each chunk is scored against ``incumbent`` (the
    champion table) on its own windows and the verdicts combined (:func:`combine_gates`).
    ``on_chunk(done, total, series)`` reports progress. The merged result keeps the backtest
    predictions (``cv``) of ``sample_series`` series of the first chunk only, for plots.
    """
    engine = engine or LocalEngine()
    chunks = series_chunks(keys, chunk_series)
    results: list[TrainResult] = []
    decisions: list[GateDecision] = []
    started = time.perf_counter()
    with engine_context(engine):
        for i, part in enumerate(chunks):
            history = load(part)
            result = train(history, **train_kwargs)  # type: ignore[arg-type]
            if gated:
                decisions.append(gate(history, result, incumbent, margin=margin))
            if len(chunks) > 1:  # keep what the merge needs, free the rest
                sample = (
                    result.cv.select("unique_id").unique(maintain_order=True).head(sample_series)
                )
                result.cv = result.cv.join(sample, on="unique_id") if i == 0 else result.cv.clear()
            results.append(result)
            del history
            if on_chunk is not None:
                on_chunk(i + 1, len(chunks), part.height)
    merged = merge_results(results)
    if len(chunks) > 1:
        merged.seconds = time.perf_counter() - started
    decision = combine_gates(decisions, margin) if gated else None
    return ChunkedTrain(merged, decision, len(chunks), engine.name)


def merge_results(results: list[TrainResult]) -> TrainResult:
    """One result from the chunks' results: per-series tables stacked, metrics recomputed
    over all series exactly as :func:`forecasting.train.train` computes them."""
    if len(results) == 1:
        return results[0]
    champions = pl.concat([r.champions for r in results], how="vertical_relaxed").sort(KEYS)
    errors = pl.concat([r.errors for r in results], how="vertical_relaxed")
    covered = pl.concat([r.coverage for r in results if r.coverage.height], how="diagonal_relaxed")
    chosen = keys_frame(champions).select("unique_id", "model")
    metrics = summarise(errors, chosen) if errors.height else {}
    metrics |= _coverage_metrics(covered)
    metrics["series"] = float(champions.height)
    for cls, n in champions.group_by("demand_class").len().iter_rows():
        metrics[f"{cls}.series"] = float(n)
    params = dict(results[0].params)
    params.update(
        series=champions.height,
        start=min(str(r.params["start"]) for r in results),
        end=max(str(r.params["end"]) for r in results),
        chunks=len(results),
    )
    fitted = {k: v for r in results for k, v in r.fitted.items()}
    metrics["suspect_blocks"] = float(sum(r.checks.height for r in results))

    def stacked(frames: list[pl.DataFrame]) -> pl.DataFrame:
        tagged = [f.with_columns(pl.lit(i).alias("chunk")) for i, f in enumerate(frames) if f.width]
        return pl.concat(tagged, how="diagonal_relaxed") if tagged else pl.DataFrame()

    return TrainResult(
        champions=champions,
        errors=errors,
        cv=pl.concat([r.cv for r in results], how="vertical_relaxed"),
        metrics=metrics,
        params=params,
        seconds=sum(r.seconds for r in results),
        coverage=covered,
        fitted=fitted,
        booster=next((r.booster for r in results if r.booster is not None), None),
        checks=pl.concat(
            [r.checks for r in results if r.checks.width], how="diagonal_relaxed"
        ).unique(maintain_order=True)
        if any(r.checks.width for r in results)
        else pl.DataFrame(),
        selection=stacked([r.selection for r in results]),
        window_scores=stacked([r.window_scores for r in results]),
    )


def combine_gates(decisions: list[GateDecision], margin: float) -> GateDecision:
    """The verdict over all chunks: mean losses weighted by each chunk's compared series,
    promoted on the same rule as :func:`forecasting.gate.gate`."""
    if len(decisions) == 1:
        return decisions[0]
    compared = [d for d in decisions if d.series and d.champion_loss is not None]
    if not compared:
        first = decisions[0]
        return GateDecision(first.promote, None, None, 0, first.reason)
    n = sum(d.series for d in compared)
    old = sum(float(d.champion_loss or 0.0) * d.series for d in compared) / n
    new = sum(float(d.challenger_loss or 0.0) * d.series for d in compared) / n
    promote = new <= old * (1 - margin)
    verdict = "beats" if promote else "does not beat"
    reason = (
        f"challenger loss {new:.4f} {verdict} champion loss {old:.4f} "
        f"(margin {margin:.1%}) on {n} series in {len(decisions)} chunks"
    )
    return GateDecision(promote, old, new, n, reason)
