"""Replenishment rules: suppliers, items and store×SKU overrides, validated as a whole.

Loaded from YAML or CSV (errors name the file and line), or from frames; a rules set is
either entirely valid or refused, so nothing is ever half-loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from kernel.errors import InvalidInput
from kernel.inputs import check_names, read_table

__all__ = ["WEEKDAYS", "Rules", "RulesError", "load_rules", "next_order_date"]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "suppliers": {
        "supplier_id": pl.String(),
        "lead_time_mean": pl.Float64(),
        "lead_time_std": pl.Float64(),
        "order_days": pl.String(),
        "review_period_days": pl.Float64(),
        "min_order_value": pl.Float64(),
        "min_order_action": pl.String(),
        "max_order_value": pl.Float64(),
        "currency": pl.String(),
        "name": pl.String(),
    },
    "items": {
        "sku_id": pl.String(),
        "supplier_id": pl.String(),
        "unit_cost": pl.Float64(),
        "pack_size": pl.Int64(),
        "moq_units": pl.Int64(),
        "shelf_life_days": pl.Float64(),
        "round_up_fraction": pl.Float64(),
    },
    "overrides": {
        "store_id": pl.String(),
        "sku_id": pl.String(),
        "service_level": pl.Float64(),
        "max_capacity": pl.Float64(),
        "min_presentation": pl.Float64(),
    },
}
_OPTIONAL: dict[str, dict[str, Any]] = {
    "suppliers": {
        "lead_time_std": 0.0,
        "review_period_days": None,
        "min_order_value": 0.0,
        "min_order_action": "hold",
        "max_order_value": None,
        "currency": "EUR",
        "name": None,
    },
    "items": {"moq_units": 0, "pack_size": 1, "shelf_life_days": None, "round_up_fraction": 0.0},
    "overrides": {"service_level": None, "max_capacity": None, "min_presentation": None},
}


class RulesError(InvalidInput):
    """A rule breaks its contract; the message names where (file:line or table row),
    the field, the value and the rule."""


@dataclass(frozen=True)
class Rules:
    """Validated suppliers, items (one supplier each) and optional store×SKU overrides."""

    suppliers: pl.DataFrame
    items: pl.DataFrame
    overrides: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=_SCHEMAS["overrides"])
    )

    @classmethod
    def from_frames(
        cls,
        suppliers: pl.DataFrame,
        items: pl.DataFrame,
        overrides: pl.DataFrame | None = None,
        origins: dict[str, list[str]] | None = None,
    ) -> Rules:
        """Validate and normalise; raises :class:`RulesError` on the first broken rule.

        ``origins[table][i]`` says where row ``i`` came from (e.g. ``rules.yaml:12``).
        """
        origins = origins or {}
        sup = _typed(suppliers, "suppliers", origins.get("suppliers")).with_columns(
            _normal_days(pl.col("order_days"))
        )
        itm = _typed(items, "items", origins.get("items"))
        ovr = _typed(
            overrides if overrides is not None else pl.DataFrame(schema=_SCHEMAS["overrides"]),
            "overrides",
            origins.get("overrides"),
        )
        checks: list[tuple[pl.DataFrame, str, str, pl.Expr, str]] = [
            (sup, "suppliers", "supplier_id", pl.col("supplier_id").is_null(), "is required"),
            (
                sup,
                "suppliers",
                "lead_time_mean",
                ~(pl.col("lead_time_mean") >= 0),
                "must be a number of days >= 0",
            ),
            (
                sup,
                "suppliers",
                "lead_time_std",
                ~(pl.col("lead_time_std") >= 0),
                "must be a number of days >= 0",
            ),
            (
                sup,
                "suppliers",
                "order_days",
                ~_valid_days(pl.col("order_days")),
                f"must list weekdays from {','.join(WEEKDAYS)}, comma-separated",
            ),
            (
                sup,
                "suppliers",
                "review_period_days",
                pl.col("review_period_days").is_not_null() & ~(pl.col("review_period_days") > 0),
                "must be > 0 days",
            ),
            (
                sup,
                "suppliers",
                "min_order_value",
                ~(pl.col("min_order_value") >= 0),
                "must be >= 0",
            ),
            (
                sup,
                "suppliers",
                "min_order_action",
                ~pl.col("min_order_action").is_in(["hold", "fill"]),
                "must be 'hold' or 'fill'",
            ),
            (
                sup,
                "suppliers",
                "max_order_value",
                pl.col("max_order_value").is_not_null() & ~(pl.col("max_order_value") > 0),
                "must be > 0 (a budget per PO; leave empty for none)",
            ),
            (
                sup,
                "suppliers",
                "currency",
                ~pl.col("currency").str.contains(r"^[A-Z]{3}$"),
                "must be a 3-letter ISO-4217 code",
            ),
            (itm, "items", "sku_id", pl.col("sku_id").is_null(), "is required"),
            (itm, "items", "unit_cost", ~(pl.col("unit_cost") >= 0), "must be a number >= 0"),
            (itm, "items", "pack_size", ~(pl.col("pack_size") >= 1), "must be an integer >= 1"),
            (itm, "items", "moq_units", ~(pl.col("moq_units") >= 0), "must be an integer >= 0"),
            (
                itm,
                "items",
                "shelf_life_days",
                pl.col("shelf_life_days").is_not_null() & ~(pl.col("shelf_life_days") > 0),
                "must be > 0 days (leave empty if the item does not expire)",
            ),
            (
                itm,
                "items",
                "round_up_fraction",
                ~pl.col("round_up_fraction").is_between(0, 1),
                "must lie in [0, 1]",
            ),
            (ovr, "overrides", "store_id", pl.col("store_id").is_null(), "is required"),
            (
                ovr,
                "overrides",
                "service_level",
                pl.col("service_level").is_not_null()
                & ~((pl.col("service_level") > 0.5) & (pl.col("service_level") < 1)),
                "must lie strictly between 0.5 and 1",
            ),
            (
                ovr,
                "overrides",
                "max_capacity",
                pl.col("max_capacity").is_not_null() & ~(pl.col("max_capacity") > 0),
                "must be > 0 units",
            ),
            (
                ovr,
                "overrides",
                "min_presentation",
                pl.col("min_presentation").is_not_null() & ~(pl.col("min_presentation") >= 0),
                "must be >= 0 units",
            ),
        ]
        for frame, table, column, failed, rule in checks:
            _check(frame, table, column, failed, rule)
        _unique(sup, "suppliers", ["supplier_id"])
        _unique(itm, "items", ["sku_id"])
        _unique(ovr, "overrides", ["store_id", "sku_id"])
        known = sup["supplier_id"].to_list()
        _check(
            itm,
            "items",
            "supplier_id",
            ~pl.col("supplier_id").is_in(known),
            "must name a supplier in the suppliers table",
        )
        _check(
            ovr,
            "overrides",
            "sku_id",
            ~pl.col("sku_id").is_in(itm["sku_id"].to_list()),
            "must name an item in the items table",
        )
        sup = sup.with_columns(
            pl.coalesce(
                pl.col("review_period_days"), _review_from_days(pl.col("order_days"))
            ).alias("review_period_days")
        )
        keep = lambda f, t: f.select(list(_SCHEMAS[t]))  # noqa: E731
        return cls(keep(sup, "suppliers"), keep(itm, "items"), keep(ovr, "overrides"))

    def summary(self) -> dict[str, int]:
        return {
            "suppliers": self.suppliers.height,
            "items": self.items.height,
            "overrides": self.overrides.height,
        }


def load_rules(paths: list[Path]) -> Rules:
    """Read rules from YAML files (keys ``suppliers``, ``items``, ``overrides``) and/or CSV
    files named ``suppliers.csv``, ``items.csv``, ``overrides.csv`` (or a folder of them).
    Errors name the file and line."""
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in _SCHEMAS}
    origins: dict[str, list[str]] = {t: [] for t in _SCHEMAS}
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".csv", ".yaml", ".yml"))
        elif path.exists():
            files.append(path)
        else:
            raise RulesError(f"{path}: no such file or folder")
    for path in files:
        if path.suffix in (".yaml", ".yml"):
            _read_yaml(path, rows, origins)
        elif path.suffix == ".csv":
            table = path.stem
            if table not in _SCHEMAS:
                raise RulesError(
                    f"{path}: a rules CSV must be named suppliers.csv, items.csv or overrides.csv"
                )
            frame = _strict(lambda p=path: read_table(p, strings=True))
            _strict(lambda t=table, f=frame, p=path: _check_columns(t, f.columns, str(p)))
            rows[table] += frame.to_dicts()
            origins[table] += [f"{path}:{i + 2}" for i in range(frame.height)]
        else:
            raise RulesError(f"{path}: rules files are .yaml, .yml or .csv")
    if not rows["suppliers"] or not rows["items"]:
        raise RulesError(
            "rules need at least one supplier and one item "
            f"(read {', '.join(str(f) for f in files) or 'no files'})"
        )
    frames = {t: pl.DataFrame(r, infer_schema_length=None) if r else None for t, r in rows.items()}
    suppliers, items = frames["suppliers"], frames["items"]
    assert suppliers is not None and items is not None  # checked above
    return Rules.from_frames(suppliers, items, frames["overrides"], origins)


def _read_yaml(
    path: Path, rows: dict[str, list[dict[str, Any]]], origins: dict[str, list[str]]
) -> None:
    import yaml

    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RulesError(
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x})",
            source=str(path),
            rule="file.encoding",
            hint="save the file as UTF-8",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RulesError(
            f"not valid YAML: {problem}",
            source=str(path),
            line=mark.line + 1 if mark is not None else None,
            rule="file.yaml",
        ) from None
    if node is None or not isinstance(node, yaml.MappingNode):
        raise RulesError(f"{path}:1: expected a mapping with keys suppliers, items, overrides")
    for key_node, value_node in node.value:
        table = key_node.value
        if table not in _SCHEMAS:
            raise RulesError(
                f"{path}:{key_node.start_mark.line + 1}: unknown section "
                f"{table!r}; expected {sorted(_SCHEMAS)}"
            )
        if not isinstance(value_node, yaml.SequenceNode):
            raise RulesError(f"{path}:{value_node.start_mark.line + 1}: {table} must be a list")
        for item in value_node.value:
            data = yaml.safe_load(yaml.serialize(item))
            if not isinstance(data, dict):
                raise RulesError(
                    f"{path}:{item.start_mark.line + 1}: each {table} entry must be a mapping"
                )
            lines = {"": item.start_mark.line + 1} | {
                k.value: k.start_mark.line + 1
                for k, _ in getattr(item, "value", [])
                if isinstance(k, yaml.ScalarNode)
            }
            _check_columns(table, [str(k) for k in data], str(path), lines, "field")
            rows[table].append({k: (None if v is None else str(v)) for k, v in data.items()})
            origins[table].append(f"{path}|" + json.dumps(lines))


def _check_columns(
    table: str,
    names: list[str],
    source: str,
    lines: dict[str, int] | None = None,
    what: str = "column",
) -> None:
    """Unknown names (a typo like ``pack_sise``) are errors naming the closest known one;
    a CSV must also have every required column."""
    schema = list(_SCHEMAS[table])
    required = [] if lines else [c for c in schema if c not in _OPTIONAL[table]]
    _strict(
        lambda: check_names(
            names,
            schema,
            required=required,
            source=source,
            what=f"{table} {what}",
            lines=lines,
            line=(lines or {}).get("", 1),
        )
    )


def _strict(read: Any) -> Any:
    """Run ``read`` and report any invalid input as a :class:`RulesError`."""
    try:
        return read()
    except RulesError:
        raise
    except InvalidInput as exc:
        raise RulesError(
            exc.reason,
            field=exc.field,
            value=exc.value,
            rule=exc.rule,
            source=exc.source,
            line=exc.line,
            hint=exc.hint,
        ) from None


def next_order_date(order_days: str, on_or_after: date) -> date:
    """The first of the supplier's order days on or after ``on_or_after``."""
    allowed = {WEEKDAYS.index(d.strip()) for d in order_days.split(",") if d.strip()}
    for offset in range(7):
        day = on_or_after + timedelta(days=offset)
        if day.weekday() in allowed:
            return day
    raise RulesError(f"order_days {order_days!r} names no weekday")


def _typed(frame: pl.DataFrame, table: str, origin: list[str] | None) -> pl.DataFrame:
    schema, optional = _SCHEMAS[table], _OPTIONAL[table]
    missing = [c for c in schema if c not in frame.columns and c not in optional]
    if missing:
        raise RulesError(f"{table}: missing column(s) {missing}; have {frame.columns}")
    where = (
        origin
        if origin and len(origin) == frame.height
        else [f"{table} row {i + 1}" for i in range(frame.height)]
    )
    frame = frame.with_columns(
        [pl.lit(v).alias(c) for c, v in optional.items() if c not in frame.columns]
    ).with_columns(pl.Series("_where", where, dtype=pl.String))
    for name, dtype in schema.items():
        col = frame[name]
        if col.dtype == pl.String:
            col = col.str.strip_chars().replace("", None)
        cast = col.cast(dtype, strict=False)
        bad = frame.filter(cast.is_null() & col.is_not_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise RulesError(
                f"{_at(row['_where'], name)}: {name}={row[name]!r} is not a valid {_kind(dtype)}"
            )
        if name in optional and optional[name] is not None:
            cast = cast.fill_null(optional[name])
        frame = frame.with_columns(cast.alias(name))
    return frame


def _kind(dtype: pl.DataType) -> str:
    return {pl.Float64: "number", pl.Int64: "whole number", pl.String: "text"}.get(
        type(dtype), str(dtype)
    )


def _at(where: str, column: str) -> str:
    """``path:line`` of a field: YAML origins carry per-key lines, others the row's."""
    if "|{" not in where:
        return where
    path, lines = where.split("|", 1)
    found = json.loads(lines)
    return f"{path}:{found.get(column, found[''])}"


def _check(frame: pl.DataFrame, table: str, column: str, failed: pl.Expr, rule: str) -> None:
    bad = frame.filter(failed.fill_null(True))
    if bad.height:
        row = bad.row(0, named=True)
        more = f" (and {bad.height - 1} more rows)" if bad.height > 1 else ""
        raise RulesError(f"{_at(row['_where'], column)}: {column}={row[column]!r} {rule}{more}")


def _unique(frame: pl.DataFrame, table: str, keys: list[str]) -> None:
    dup = frame.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        row = dup.row(min(1, dup.height - 1), named=True)
        shown = ", ".join(f"{k}={row[k]!r}" for k in keys)
        raise RulesError(f"{_at(row['_where'], keys[0])}: {shown} appears twice in {table}")


def _normal_days(col: pl.Expr) -> pl.Expr:
    """``mon, WED,friday`` → ``Mon,Wed,Fri``: weekday names in any case, short or long."""
    full = {d.lower(): d[:3] for d in _FULL_DAYS}
    days = col.str.split(",").list.eval(
        pl.element().str.strip_chars().str.to_lowercase().replace(full).str.to_titlecase()
    )
    return pl.when(col.str.strip_chars() == "").then(col).otherwise(days.list.join(","))


def _valid_days(col: pl.Expr) -> pl.Expr:
    day = "(" + "|".join(WEEKDAYS) + ")"
    return col.str.contains(rf"^{day}(\s*,\s*{day})*$")


def _review_from_days(col: pl.Expr) -> pl.Expr:
    """Longest gap in days between consecutive order days (7 for one order day a week)."""

    def gap(days: str) -> float:
        idx = sorted({WEEKDAYS.index(d.strip()) for d in days.split(",")})
        return float(max(((idx[(k + 1) % len(idx)] - idx[k]) % 7) or 7 for k in range(len(idx))))

    return col.map_elements(gap, return_dtype=pl.Float64)
