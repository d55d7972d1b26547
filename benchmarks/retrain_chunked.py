"""Retrain at scale, in chunks: time and peak memory of the weekly retrain of N synthetic
series (default 100,000 × 730 days) in one process, reading a Parquet history chunk by
chunk. Baseline in the same run: unchunked retrains of chunk/4 and chunk series of the same
file, whose memory slope projects what one unchunked retrain of all N would need.
Aim: peak < 8 GB for 100,000 series. The history is generated once under --data (not in
the repository): ~73 M rows, ~0.5 GB of Parquet for 100,000 series.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, emit, synthetic_history

_CHILD = """
import json, time, polars as pl
from pathlib import Path
from forecasting.chunks import train_chunked
from forecasting.engine import LocalEngine
from jobs.retrain import HistorySource
source = HistorySource.of_file(Path({path!r}))
keys = source.keys.sort("store_id", "sku_id").head({series})
times = []
t = time.perf_counter()
out = train_chunked(keys, source.load, chunk_series={chunk}, engine=LocalEngine(),
    gated=False, horizon=28, n_windows=3, n_jobs={jobs},
    on_chunk=lambda done, total, n: times.append(time.perf_counter() - t))
seconds = time.perf_counter() - t
hwm = [int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')][0] / 1024
classes = dict(out.result.champions.group_by('demand_class').len().iter_rows())
print(json.dumps({{"seconds": seconds, "peak_mb": hwm, "series": out.result.champions.height,
    "chunks": out.chunks, "chunk_times": times, "classes": classes}}))
"""


def run(path: Path, series: int, chunk: int, jobs: int) -> dict:
    """One retrain in a fresh process, so that its peak memory (VmHWM) is its own."""
    code = _CHILD.format(path=str(path), series=series, chunk=chunk, jobs=jobs)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000, help="series per chunk")
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--jobs", type=int, default=2, help="statsforecast processes")
    parser.add_argument("--data", type=Path, default=Path("/tmp/replen-bench"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    path = synthetic_history(
        args.data / f"history-{args.series}x{args.days}.parquet", args.series, args.days
    )
    small = run(path, max(1, args.chunk // 4), args.chunk, args.jobs)
    one = run(path, min(args.chunk, args.series), args.chunk, args.jobs)
    full = run(path, args.series, args.chunk, args.jobs)
    slope = (one["peak_mb"] - small["peak_mb"]) / max(one["series"] - small["series"], 1)
    unchunked = one["peak_mb"] + slope * (args.series - one["series"])
    figures = {
        "benchmark": "retrain_chunked",
        "series": full["series"],
        "days": args.days,
        "chunk_series": args.chunk,
        "chunks": full["chunks"],
        "seconds": round(full["seconds"], 1),
        "series_per_s": round(full["series"] / full["seconds"], 1),
        "peak_rss_mb": round(full["peak_mb"]),
        "one_chunk_peak_mb": round(one["peak_mb"]),
        "mb_per_1000_series_unchunked": round(slope * 1000, 1),
        "projected_unchunked_peak_gb": round(unchunked / 1024, 1),
        "peak_ratio_chunked_vs_unchunked": round(full["peak_mb"] / unchunked, 3),
        "slowest_chunk_s": round(
            max(
                b - a
                for a, b in zip([0.0, *full["chunk_times"]], full["chunk_times"], strict=False)
            ),
            1,
        ),
        "classes": full["classes"],
        "jobs": args.jobs,
    }
    if not args.json:
        print(
            f"{figures['series']:,} series in {figures['chunks']} chunks: "
            f"{figures['seconds']}s ({figures['series_per_s']} series/s), peak "
            f"{figures['peak_rss_mb']:,} MB (aim < 8,192); unchunked would need "
            f"~{figures['projected_unchunked_peak_gb']} GB"
        )
    emit(figures)


if __name__ == "__main__":
    main()
