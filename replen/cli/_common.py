"""What every command module shares: the Typer app, consoles, options, and the error edge."""

from __future__ import annotations

import functools
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
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernel.errors import InvalidInput, ReplenError, storage_error
from replen.settings import Settings

__all__ = [
    "FreqOpt",
    "HistoryOpt",
    "JsonOpt",
    "app",
    "cell",
    "console",
    "emit",
    "errors",
    "history_frame",
    "kv_table",
    "load_settings",
    "out",
    "quiet_libraries",
    "render_explained",
    "signed_in",
    "sub_app",
]


class _Typer(typer.Typer):
    """A Typer app whose every command runs inside the error edge :func:`errors`."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        register = super().command(*args, **kwargs)

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(fn)
            def guarded(*a: Any, **kw: Any) -> Any:
                with errors():
                    return fn(*a, **kw)

            register(guarded)
            return fn

        return decorator


app = _Typer(
    help="Replen: demand forecasting and auto-replenishment for retailers.\n\n"
    "Start with `replen demo`; configuration comes from REPLEN_* environment variables "
    "or replen.toml in the working directory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    add_completion=False,
)

console = Console(stderr=True)
out = Console()


def sub_app(name: str, help_text: str) -> typer.Typer:
    """A command group (``replen <name> …``) registered on the main app."""
    group = _Typer(help=help_text, no_args_is_help=True, rich_markup_mode="markdown")
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
    """Settings from REPLEN_* variables and replen.toml; a bad value is one clear error."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        raise InvalidInput(
            f"setting {name} = {first.get('input')!r}: {first['msg']}",
            field=f"REPLEN_{name.upper()}",
            value=first.get("input"),
            rule=str(first["type"]),
            hint=f"fix REPLEN_{name.upper()} in the environment or {name} in replen.toml",
        ) from None


def quiet_libraries() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    for name in ("mlflow", "feast", "alembic", "statsforecast", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


@contextmanager
def errors() -> Iterator[None]:
    """The CLI's error edge: a domain error (or a full or read-only disk) becomes one red line
    saying what to do, and its exit code (2 invalid input, 3 not found, 4 conflict, 5 not
    ready, 6 storage, 7 access). Anything else is a bug and keeps its traceback."""
    try:
        yield
    except ReplenError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        console.print("interrupted", highlight=False)
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:
        storage = storage_error(exc)
        if storage is None:
            raise
        _fail(storage)


def _fail(exc: ReplenError) -> None:
    text = escape(" ".join(str(exc).split()))  # one line, however the message was built
    console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code) from None


def signed_in(
    rt: Any, permission: str, *, store: str | None = None, value: float | None = None
) -> Any:
    """The identity this command acts as, checked against the one policy table.

    In order: ``REPLEN_CLIENT_ID``/``REPLEN_CLIENT_SECRET`` (a machine, e.g. a cron job),
    ``REPLEN_USERNAME``/``REPLEN_PASSWORD`` (a person, non-interactive), else the session
    saved by ``replen login`` (a refresh token in a file only its owner may read).
    """
    from kernel.errors import Unauthorized
    from replen.auth.policy import authorize
    from replen.auth.session import cli_principal

    principal = cli_principal(rt.settings, os.environ)
    if principal is None:
        raise Unauthorized(
            "this command acts for a signed-in identity and none is signed in",
            hint="run `replen login` (or set REPLEN_USERNAME/REPLEN_PASSWORD or "
            "REPLEN_CLIENT_ID/REPLEN_CLIENT_SECRET)",
        )
    authorize(principal, permission, store=store, value=value)
    return principal


def progress_bar(
    *,
    label: str = "{task.description}",
    count: str | None = None,
    spinner: bool = True,
    disable: bool,
    transient: bool,
) -> Progress:
    """A progress bar on stderr: [spinner] label, bar, [count], time elapsed.

    ``disable`` hides it (--json); ``transient`` clears it when done.
    """
    columns = [
        *([SpinnerColumn()] if spinner else []),
        TextColumn(label),
        BarColumn(),
        *([TextColumn(count)] if count is not None else []),
        TimeElapsedColumn(),
    ]
    return Progress(*columns, console=console, disable=disable, transient=transient)


def emit(data: dict[str, Any], as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(data, default=str))
    else:
        render()


def cell(value: Any) -> str:
    """A value as a table shows it: whole numbers as integers (with thousands separators),
    other numbers to 3 decimals, times to the second, nothing for None."""
    from datetime import datetime

    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str) if value else ""
    return str(value)


def kv_table(title: str, data: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in data.items():
        table.add_row(str(key), cell(value))
    return table


def history_frame(rt: Any, history: Path | None, freq: str = "daily") -> Any:
    """Daily (or ``freq``) sales from ``history`` if given, else from the lake."""
    from forecasting.candidates import freq_of
    from replen.io import read_history

    freq_of(freq)  # an unknown frequency is refused before any work
    if history is None and freq != "daily":
        raise InvalidInput(
            f"--freq {freq} needs --history",
            field="freq",
            value=freq,
            rule="freq.needs_history",
            hint="the POS lake holds daily sales; give a weekly or monthly file with --history",
        )
    return read_history(history, freq) if history is not None else rt.history()


def render_explained(lines: Any) -> None:
    """Each line's quantity in words, every adjustment included (the API's sentence)."""
    from replenishment.explain import explain

    for row in lines.iter_rows(named=True):
        name = f" {row['item_name']}" if row.get("item_name") else ""
        out.print(
            f"[bold]{row['store_id']} / {row['sku_id']}[/]{name} ({row['supplier_id']}): "
            + explain(row, row["quantity"], row.get("suggested_quantity")),
            highlight=False,
        )
