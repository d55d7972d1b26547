"""Writes that cannot half-happen: atomic output files, a full or read-only disk as one clear
error, lake parts of a failed or dead writer cleaned while the process keeps running."""

from __future__ import annotations

import errno

import polars as pl
import pytest

from features.events import validate_events
from features.lake import Lake
from kernel.errors import StorageError, storage_error
from kernel.files import atomic_write, write_table


def _full(handle) -> None:
    handle.write(b"half of it")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path) -> None:
    path = tmp_path / "out" / "forecast.parquet"
    write_table(pl.DataFrame({"a": [1, 2]}), path)
    with pytest.raises(StorageError, match=r"could not write .*forecast\.parquet") as raised:
        atomic_write(path, _full)
    assert raised.value.full and raised.value.http_status() == 507
    assert pl.read_parquet(path)["a"].to_list() == [1, 2]
    assert sorted(p.name for p in path.parent.iterdir()) == ["forecast.parquet"]


def test_a_bug_in_the_writer_stays_a_bug(tmp_path) -> None:
    def broken(handle) -> None:
        raise KeyError("column")

    with pytest.raises(KeyError):
        atomic_write(tmp_path / "x.csv", broken)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), 507),
        (OSError(errno.EROFS, "Read-only file system"), 503),
        (pl.exceptions.ComputeError("parquet: underlying IO error: No space left on device"), 507),
        (RuntimeError("(sqlite3.OperationalError) attempt to write a readonly database"), 503),
        (RuntimeError("(sqlite3.OperationalError) database or disk is full"), 507),
    ],
)
def test_storage_failures_are_recognised_wherever_they_surface(exc, status) -> None:
    found = storage_error(exc)
    assert found is not None and found.http_status() == status and found.hint


def test_other_failures_are_not_storage_errors() -> None:
    assert storage_error(ValueError("bad value")) is None
    assert storage_error(OSError(errno.ECONNREFUSED, "refused")) is None


def test_a_lake_batch_that_hits_a_full_disk_leaves_nothing_behind(
    tmp_path, chain, monkeypatch
) -> None:
    lake = Lake(tmp_path)
    lake.append_events(validate_events(chain.pos.head(50)))
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    # Parts are staged and moved into place; the disk fills up as the manifest is written.
    monkeypatch.setattr("features.lake._atomic_bytes", full)
    with pytest.raises(StorageError, match="could not write to the lake") as raised:
        lake.append_events(validate_events(chain.pos.slice(50, 200)))
    assert raised.value.full
    after = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock")
    assert after == before
    monkeypatch.undo()
    assert lake.append_events(validate_events(chain.pos.slice(50, 200))).accepted == 200
    assert lake.scan_events().collect().height == 250


def test_a_running_writer_sweeps_what_a_dead_writer_left(tmp_path, chain, monkeypatch) -> None:
    lake = Lake(tmp_path)
    lake.append_events(validate_events(chain.pos.head(20)))  # the first sweep happened here
    # A writer in another process died mid-batch: staged and moved parts, no manifest.
    orphan = tmp_path / "pos" / "date=2024-01-01" / "part-dead.parquet"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"partial")
    staging = tmp_path / "_staging" / "dead" / "date=2024-01-01"
    staging.mkdir(parents=True)
    (staging / "0.parquet").write_bytes(b"partial")
    lake.append_events(validate_events(chain.pos.slice(20, 20)))
    assert orphan.exists(), "swept before its interval: fine, but this test expects the timer"
    monkeypatch.setattr("features.lake.SWEEP_SECONDS", 0.0)
    lake.append_events(validate_events(chain.pos.slice(40, 20)))
    assert not orphan.exists() and not (tmp_path / "_staging" / "dead").exists()
    assert lake.scan_events().collect().height == 60


def test_the_cli_reports_a_read_only_data_directory_in_one_line(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from replen.cli import app

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "data"))

    monkeypatch.setenv("REPLEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("replen.settings.Settings.ensure_dirs", read_only)
    result = CliRunner().invoke(app, ["jobs", "list"])
    assert result.exit_code == 6
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: storage is read-only or not accessible")
    assert "REPLEN_DATA_DIR" in line
