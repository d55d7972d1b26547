"""Where the forecasting stage computes: in this process (default) or on a Dask cluster.

Stage code calls :func:`cross_validation` and :func:`map_tasks` instead of running
statsforecast or a per-series loop itself; the orchestrator picks the engine with
:func:`engine_context` (as fugue's own ``engine_context`` does). On Dask, statsforecast
runs through its fugue backend, partitioned by series; any other training is shipped to the
workers as tasks. Both engines return the same numbers: the fugue backend's float32 output
schema is widened to float64, so nothing is rounded on the way back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

import polars as pl

__all__ = [
    "DaskEngine",
    "Engine",
    "LocalEngine",
    "cross_validation",
    "current_engine",
    "engine_context",
    "map_tasks",
]


class Engine(Protocol):
    """Runs the statsforecast cross-validation and independent training tasks."""

    name: str

    def cross_validation(
        self, sf: Any, df: pl.DataFrame, *, h: int, n_windows: int, step_size: int
    ) -> pl.DataFrame: ...

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]: ...


class LocalEngine:
    """This process (statsforecast's own ``n_jobs`` parallelism)."""

    name = "local"

    def cross_validation(
        self, sf: Any, df: pl.DataFrame, *, h: int, n_windows: int, step_size: int
    ) -> pl.DataFrame:
        return pl.DataFrame(
            sf.cross_validation(df=df, h=h, n_windows=n_windows, step_size=step_size)
        )

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return [fn(*a) for a in args]


class DaskEngine:
    """A Dask cluster at ``address`` (``tcp://host:port``); its workers need Replen
    installed (the same version) to unpickle the models and tasks."""

    name = "dask"

    def __init__(self, address: str, *, timeout: float = 20.0) -> None:
        from distributed import Client

        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except OSError as exc:
            from kernel.errors import NotReady

            raise NotReady(
                f"no Dask scheduler answers at {address}: {exc}",
                hint="start one (`dask scheduler`, then `dask worker ADDRESS`) or use "
                "--engine local",
            ) from None
        self.address = address

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def cross_validation(
        self, sf: Any, df: pl.DataFrame, *, h: int, n_windows: int, step_size: int
    ) -> pl.DataFrame:
        if sf.freq != "1d":
            from kernel.errors import InvalidInput

            raise InvalidInput(
                f"the Dask engine trains daily series; freq {sf.freq!r} trains locally",
                field="freq",
                value=str(sf.freq),
                rule="engine.daily",
            )
        backend = _float64_backend()(self.client, as_local=True)
        out = backend.cross_validation(
            df=df.to_pandas(),
            freq="D",
            models=sf.models,
            fallback_model=sf.fallback_model,
            h=h,
            n_windows=n_windows,
            step_size=step_size,
            test_size=None,
            input_size=None,
            level=None,
            refit=True,
            fitted=False,
            prediction_intervals=None,
            id_col="unique_id",
            time_col="ds",
            target_col="y",
        )
        frame = pl.from_pandas(out)
        return frame.with_columns(pl.col("ds", "cutoff").cast(pl.Date)).sort(
            "unique_id", "cutoff", "ds"
        )

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        futures = [self.client.submit(fn, *a, pure=False) for a in args]
        return list(self.client.gather(futures))

    def close(self) -> None:
        self.client.close()


def _float64_backend() -> type:
    """statsforecast's fugue backend with float64 output columns (it declares float32)."""
    import pyarrow as pa
    from statsforecast.distributed.fugue import FugueBackend
    from triad import Schema

    class Float64FugueBackend(FugueBackend):  # type: ignore[misc]
        def _get_output_schema(self, **kwargs: Any) -> Schema:
            schema = super()._get_output_schema(**kwargs)
            return Schema(
                [
                    pa.field(f.name, pa.float64()) if pa.types.is_float32(f.type) else f
                    for f in schema.fields
                ]
            )

    return Float64FugueBackend


_LOCAL = LocalEngine()
_ENGINE: ContextVar[Engine | None] = ContextVar("replen_forecasting_engine", default=None)


def current_engine() -> Engine:
    return _ENGINE.get() or _LOCAL


@contextlib.contextmanager
def engine_context(engine: Engine) -> Iterator[Engine]:
    """Run the forecasting stage's computations on ``engine`` inside the block."""
    token = _ENGINE.set(engine)
    try:
        yield engine
    finally:
        _ENGINE.reset(token)


def cross_validation(
    sf: Any, df: pl.DataFrame, *, h: int, n_windows: int, step_size: int
) -> pl.DataFrame:
    """``sf.cross_validation`` on the current engine; a polars frame either way."""
    return current_engine().cross_validation(sf, df, h=h, n_windows=n_windows, step_size=step_size)


def map_tasks(fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``[fn(*a) for a in args]`` on the current engine (Dask: one task each, in order)."""
    return current_engine().map(fn, args)
