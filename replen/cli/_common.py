"""What every command module shares: the Typer app, consoles, options, and the error edge."""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kernel.errors import ReplenError
from replen.settings import Settings

__all__ = [
    "FreqOpt",
    "HistoryOpt",
    "JsonOpt",
    "app",
    "console",
    "emit",
    "errors",
    "history_frame",
    "kv_table",
    "load_settings",
    "out",
    "quiet_libraries",
    "render_explained",
    "sub_app",
]

app = typer.Typer(
    help="Replen: demand forecasting and auto-replenishment for retailers.\n\n"
    "Start with `replen demo`; configuration comes from REPLEN_* environment variables "
    "or replen.toml in the working directory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

console = Console(stderr=True)
out = Console()


def sub_app(name: str, help_text: str) -> typer.Typer:
    """A command group (``replen <name> …``) registered on the main app."""
    group = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
HistoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="Daily-sales file (CSV/Parquet: store_id, sku_id, date, units; optional "
        "stockout, on_hand, price) instead of the lake.",
        exists=True,
        dir_okay=False,
    ),
]
FreqOpt = Annotated[
    str,
    typer.Option(
        help="daily, weekly or monthly: what one row of --history covers (its date "
        "marks the period; weeks may start on any weekday)."
    ),
]


def load_settings() -> Settings:
    return Settings()


def quiet_libraries() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    for name in ("mlflow", "feast", "alembic", "statsforecast", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


@contextmanager
def errors() -> Iterator[None]:
    """Turn expected failures into one red line and the error's exit code (no traceback)."""
    try:
        yield
    except ReplenError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def emit(data: dict[str, Any], as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(data, default=str))
    else:
        render()


def kv_table(title: str, data: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        table.add_row(str(key), f"{value:,.3f}" if isinstance(value, float) else str(value))
    return table


def history_frame(rt: Any, history: Path | None, freq: str = "daily") -> Any:
    """Daily (or ``freq``) sales from ``history`` if given, else from the lake."""
    from replen.io import read_history

    if history is None and freq != "daily":
        raise ValueError(f"--freq {freq} needs --history: the POS lake holds daily sales")
    return read_history(history, freq) if history is not None else rt.history()


def render_explained(lines: Any) -> None:
    for row in lines.iter_rows(named=True):
        out.print(
            f"[bold]{row['store_id']} / {row['sku_id']}[/] ({row['supplier_id']}): "
            f"order [bold green]{row['quantity']}[/] = forecast over "
            f"{row['protection_days']:.1f} days {row['demand_mean']:.1f} + safety stock "
            f"{row['safety_stock']:.1f} → target {row['target_level']:.1f} − position "
            f"{row['position']:.0f} (on hand {row['on_hand']:.0f} + on order "
            f"{row['on_order']:.0f}) = need {row['raw_need']:.1f}; packs of "
            f"{row['pack_size']} → {row['after_pack']:.0f}; MOQ {row['moq_units']} → "
            f"{row['after_moq']:.0f}"
        )
