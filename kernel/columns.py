"""Column checks for user files: an unknown column is an error naming the closest known one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from kernel.errors import InvalidInput

__all__ = ["check_columns", "closest"]


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like ``name`` (case and separators ignored), if any is close."""
    norm = {k.lower().replace("-", "_").replace(" ", "_"): k for k in known}
    key = name.lower().replace("-", "_").replace(" ", "_").strip()
    if key in norm:
        return norm[key]
    match = difflib.get_close_matches(key, list(norm), n=1, cutoff=0.6)
    return norm[match[0]] if match else None


def check_columns(
    columns: Iterable[str],
    *,
    required: Iterable[str],
    optional: Iterable[str] = (),
    source: str | None = None,
    what: str = "file",
) -> None:
    """Refuse unknown and missing columns; internal columns (leading ``_``) are ignored."""
    required, optional = list(required), list(optional)
    known = [*required, *optional]
    have = [c for c in columns if not c.startswith("_")]
    for column in have:
        if column not in known:
            near = closest(column, known)
            hint = f"did you mean {near!r}?" if near else f"known columns: {', '.join(known)}"
            raise InvalidInput(
                f"unknown column {column!r} in the {what}",
                field=column,
                value=column,
                rule="column.unknown",
                source=source,
                line=1 if source else None,
                hint=hint,
            )
    missing = [c for c in required if c not in have]
    if missing:
        raise InvalidInput(
            f"the {what} lacks required column(s) {', '.join(missing)}",
            field=missing[0],
            rule="column.required",
            source=source,
            line=1 if source else None,
            hint=f"a {what} needs {', '.join(required)} (optional: {', '.join(optional) or '-'})",
        )
