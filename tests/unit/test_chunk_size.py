"""The retrain's chunk size: sized from the memory available unless set."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.chunks import auto_chunk_series, available_memory
from jobs.retrain import chunk_size

GB = 1_000_000_000


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        (None, 5_000),  # unknown: the fallback
        (0, 1_000),  # nothing free: the floor, never zero
        (-1, 1_000),
        (1 * GB, 1_000),  # 0.5 GB budget fits < 1,000: the floor
        (2_400_000_000, 2_000),  # 1.2 GB budget / 0.6 GB per 1,000
        (5 * GB, 4_000),  # 2.5 GB budget → 4,166, rounded down to a thousand
        (6 * GB, 5_000),  # 3 GB budget
        (7 * GB, 5_000),  # 3.5 GB budget → 5,833: clamped to the measured ceiling
        (24 * GB, 5_000),  # this machine: the size that held 100,000 series under 8 GB
        (10**15, 5_000),
    ],
)
def test_chunk_series_is_half_the_available_memory_clamped(
    available: int | None, expected: int
) -> None:
    assert auto_chunk_series(available) == expected


def test_chunk_series_grows_with_memory_and_stays_in_bounds() -> None:
    sizes = [auto_chunk_series(n * GB // 4) for n in range(0, 200)]
    assert sizes == sorted(sizes)
    assert min(sizes) == 1_000 and max(sizes) == 5_000
    assert all(s % 1_000 == 0 for s in sizes)


def test_available_memory_reads_meminfo_and_the_cgroup_room(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   8000000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    assert available_memory(meminfo, cgroup) == 8_000_000 * 1024
    (cgroup / "memory.max").write_text("max\n")
    assert available_memory(meminfo, cgroup) == 8_000_000 * 1024
    (cgroup / "memory.max").write_text(f"{4 * GB}\n")
    (cgroup / "memory.current").write_text(f"{1 * GB}\n")
    assert available_memory(meminfo, cgroup) == 3 * GB  # the tighter of the two
    assert available_memory(tmp_path / "absent", tmp_path / "absent") is None


def test_an_explicit_size_wins_over_the_setting_and_the_memory() -> None:
    assert chunk_size(2_500, 7_000) == (2_500, "option")
    assert chunk_size(None, 7_000) == (7_000, "setting")
    size, source = chunk_size(None, None)
    assert 1_000 <= size <= 5_000 and source.startswith("memory")
