"""Whole-or-nothing output files: write a temp file, fsync, rename over the target.

Every file Replen writes for a reader (forecast Parquet, PO CSVs, plots, exports, lake
parts and manifests) goes through :func:`atomic_write`, so a crash or a full disk leaves
the previous file or none, never half of one; a full or read-only disk is a
:class:`~kernel.errors.StorageError` naming the file.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from kernel.errors import StorageError, storage_error

__all__ = [
    "atomic_write",
    "atomic_write_path",
    "fsync_path",
    "write_bytes",
    "write_csv",
    "write_figure",
    "write_parquet",
    "write_table",
]

TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temp file beside ``path``, fsync it, rename it over
    ``path`` and fsync the folder. On any failure the temp file is removed and ``path`` is
    untouched; a full or read-only disk raises :class:`StorageError`."""

    def by_handle(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())

    return atomic_write_path(path, by_handle)


def atomic_write_path(path: Path, write: Callable[[Path], object]) -> Path:
    """As :func:`atomic_write`, but ``write(tmp)`` writes the temp file by its path (polars
    writes Parquet in parallel that way; a Python handle serialises it); it is fsynced
    after."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        found = storage_error(exc) if isinstance(exc, Exception) else None
        if found is not None and found is not exc:
            raise StorageError(
                f"could not write {path}: {found.message}", full=found.full, hint=found.hint
            ) from exc
        raise
    return path


def write_bytes(data: bytes, path: Path) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def write_table(frame: Any, path: Path) -> Path:
    """A polars frame as Parquet (``.parquet``/``.pq``) or else CSV, atomically."""
    name = Path(path).name.lower()
    if name.endswith((".parquet", ".pq")):
        return atomic_write(path, frame.write_parquet)
    return write_csv(frame, path)


def write_parquet(frame: Any, path: Path, *, level: int | None = None) -> Path:
    """A polars frame as Parquet (zstd at ``level``, polars' default if None), atomically,
    written by path so that polars compresses it in parallel."""
    try:
        return atomic_write_path(
            path, lambda tmp: frame.write_parquet(tmp, compression_level=level)
        )
    except StorageError:
        raise
    except Exception:
        # polars reports a write that hit a full or read-only disk as its own error
        # ("Invalid thrift: transport error"): encode in memory, then write the bytes, which
        # surfaces the OS error (a StorageError), or succeeds if the failure was transient.
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression_level=level)
        return write_bytes(buffer.getvalue(), path)


def write_csv(frame: Any, path: Path) -> Path:
    return atomic_write(path, frame.write_csv)


def write_figure(figure: Any, path: Path, **savefig: Any) -> Path:
    """A matplotlib figure, in the format of ``path``'s suffix (PNG by default)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda handle: figure.savefig(handle, format=fmt, **savefig))


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
