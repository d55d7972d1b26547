"""Reading a user's file strictly: one clear error per file-level problem, unknown names caught.

:func:`read_table` reads CSV (optionally gzipped), TSV, Parquet or NDJSON by extension; an
empty file, bytes that are not UTF-8, a broken CSV quote or row, a corrupt Parquet file or a
bad NDJSON line is one :class:`~kernel.errors.InvalidInput` naming the file and the 1-based
line, never a parser traceback. :func:`check_names` refuses unknown columns or keys, naming
the closest known one (``pack_sise`` → did you mean ``pack_size``?).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from kernel.errors import InvalidInput, NotFound

__all__ = ["check_names", "closest", "data_line", "read_table", "table_kind"]

_KINDS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
}


def table_kind(path: Path) -> str:
    """``csv``, ``tsv``, ``parquet`` or ``ndjson``, by the file's extension."""
    name = Path(path).name.lower()
    for suffix, kind in sorted(_KINDS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return kind
    raise InvalidInput(
        f"unknown file type {Path(path).name!r}",
        source=str(path),
        field="file",
        value=Path(path).name,
        rule="file.type",
        hint="use .csv, .csv.gz, .tsv, .parquet or .ndjson/.jsonl",
    )


def data_line(path: Path, row: int) -> int | None:
    """The 1-based file line of 0-based data row ``row`` (CSV: after the header; NDJSON: one
    object per line); None for Parquet, which has no lines."""
    kind = table_kind(path)
    if kind == "parquet":
        return None
    return row + (2 if kind in ("csv", "tsv") else 1)


def read_table(path: Path, *, strings: bool = False) -> pl.DataFrame:
    """Read a user's table file; every file-level problem is one :class:`InvalidInput`.

    ``strings`` reads every CSV column as text so that validation, not the CSV parser,
    judges each value.
    """
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path} does not exist", hint="check the path")
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; give a file", source=str(path), rule="file.type")
    kind = table_kind(path)
    if path.stat().st_size == 0:
        raise _empty(path, kind)
    try:
        if kind == "parquet":
            frame = pl.read_parquet(path)
        elif kind == "ndjson":
            frame = pl.read_ndjson(path, infer_schema_length=None)
        else:
            frame = pl.read_csv(
                path,
                separator="\t" if kind == "tsv" else ",",
                infer_schema=not strings,
                infer_schema_length=10_000,
                encoding="utf8",
            )
    except pl.exceptions.NoDataError:
        raise _empty(path, kind) from None
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # the disk, not the file's content: the edges report it
        raise _diagnose(path, kind, exc) from None
    if frame.width == 0:
        raise _empty(path, kind)
    return frame


def check_names(
    names: Iterable[str],
    known: Sequence[str],
    *,
    required: Sequence[str] = (),
    source: str,
    what: str = "column",
    lines: dict[str, int] | None = None,
    line: int | None = 1,
) -> None:
    """Refuse names (columns, keys) that are not ``known`` and ``required`` ones that are
    missing; each error names the source, the line and the closest known name.

    ``lines`` gives the line of each name (YAML keys); otherwise ``line`` (a CSV header).
    """
    names = list(names)
    for name in names:
        if name not in known:
            near = closest(name, known)
            guess = f" (did you mean {near!r}?)" if near else ""
            raise InvalidInput(
                f"unknown {what} {name!r}{guess}",
                field=name,
                value=name,
                rule=f"{what}.known",
                source=source,
                line=(lines or {}).get(name, line),
                hint=f"known {what}s: {', '.join(known)}",
            )
    for name in required:
        if name not in names:
            raise InvalidInput(
                f"missing {what} {name!r}",
                field=name,
                rule=f"{what}.required",
                source=source,
                line=line,
                hint=f"required {what}s: {', '.join(required)}",
            )


def closest(name: str, known: Sequence[str]) -> str | None:
    """The known name most like ``name`` (case and separators aside), if any is close."""

    def norm(text: str) -> str:
        return text.lower().replace("-", "_").replace(" ", "_")

    by_norm = {norm(k): k for k in known}
    if norm(name) in by_norm:
        return by_norm[norm(name)]
    found = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.6)
    return by_norm[found[0]] if found else None


# Diagnosis: runs only after the fast reader failed, to say where and why ----------------------
def _empty(path: Path, kind: str) -> InvalidInput:
    expect = "a header line and rows" if kind in ("csv", "tsv") else "rows"
    return InvalidInput(
        "the file is empty",
        source=str(path),
        line=1,
        rule="file.empty",
        hint=f"expected {expect}; was the export cut short?",
    )


def _diagnose(path: Path, kind: str, exc: Exception) -> InvalidInput:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if kind == "parquet":
        return InvalidInput(
            f"not a readable Parquet file ({reason})",
            source=str(path),
            rule="file.parquet",
            hint="export it again; a file cut short by a failed copy looks like this",
        )
    raw = _bytes(path)
    if raw is None:
        return InvalidInput(
            f"not a readable gzip file ({reason})", source=str(path), rule="file.gzip"
        )
    bad = _encoding_error(raw)
    if bad is not None:
        line, column, byte = bad
        return InvalidInput(
            f"not UTF-8 text (byte 0x{byte:02x} at column {column})",
            source=str(path),
            line=line,
            rule="file.encoding",
            hint="save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`",
        )
    text = raw.decode("utf-8")
    found = _ndjson_problem(text) if kind == "ndjson" else _csv_problem(text, kind)
    if found is not None:
        line, message, hint = found
        return InvalidInput(message, source=str(path), line=line, rule=f"file.{kind}", hint=hint)
    return InvalidInput(f"cannot be read as {kind.upper()}: {reason}", source=str(path))


def _bytes(path: Path) -> bytes | None:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return None
    return data


def _encoding_error(raw: bytes) -> tuple[int, int, int] | None:
    """(line, column, byte) of the first byte that is not UTF-8, all 1-based."""
    try:
        codecs.decode(raw, "utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        return raw.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1, raw[exc.start]
    return None


_QUOTE_HINT = 'close every quote; write a quote inside a quoted field as two ("")'


def _csv_problem(text: str, kind: str) -> tuple[int, str, str] | None:
    reader = csv.reader(io.StringIO(text), delimiter="\t" if kind == "tsv" else ",", strict=True)
    width: int | None = None
    start = 1
    try:
        for row in reader:
            end = reader.line_num
            if width is None:
                width = len(row)
            elif row and len(row) != width:
                if end > start and any("\n" in field for field in row):
                    return (
                        start,
                        f"a quoted field opened on this line runs to line {end}",
                        'close the quote, or double a quote inside a field ("")',
                    )
                return (
                    start,
                    f"{len(row)} fields where the header has {width}",
                    "quote fields that contain the separator",
                )
            start = end + 1
    except csv.Error as exc:
        if "end of data" in str(exc):
            return (start, "a quote opened on this line is never closed", _QUOTE_HINT)
        return (start, f"broken CSV: {exc}", _QUOTE_HINT)
    return None


def _ndjson_problem(text: str) -> tuple[int, str, str] | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            return (number, f"not JSON: {exc.msg}", "one JSON object per line")
        if not isinstance(value, dict):
            return (number, "not a JSON object", "one JSON object per line")
    return None
