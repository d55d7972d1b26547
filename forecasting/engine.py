"""Where the forecasting stage computes: in this process (default) or on a Dask cluster.

Stage code calls :func:`cross_validation` and :func:`map_tasks` instead of running
statsforecast or a per-series loop itself; the orchestrator picks the engine with
:func:`engine_context`. On Dask, statsforecast's cross-validation runs on the workers, the
series dealt into a few partitions per worker (one task each, the same single-process
``StatsForecast`` the local engine runs); any other training is shipped to the workers as
tasks. Both engines return the same numbers: each series is computed by the same code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

import polars as pl

PARTS_PER_WORKER = 4  # tasks per worker per cross-validation: balance without overhead

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
        """statsforecast's own cross-validation on the workers: the series dealt into
        ``PARTS_PER_WORKER`` partitions per worker, each one task running the same
        ``StatsForecast`` single-process (what the local engine runs, so the same numbers).
        One task per partition, not per series: per-series calls cost more than the fits."""
        import copy

        if sf.freq != "1d":
            from kernel.errors import InvalidInput

            raise InvalidInput(
                f"the Dask engine trains daily series; freq {sf.freq!r} trains locally",
                field="freq",
                value=str(sf.freq),
                rule="engine.daily",
            )
        if df.is_empty():
            return LocalEngine().cross_validation(
                sf, df, h=h, n_windows=n_windows, step_size=step_size
            )
        single = copy.copy(sf)
        single.n_jobs = 1
        ids = df.select(pl.col("unique_id").unique().sort())
        n = max(1, min(ids.height, PARTS_PER_WORKER * max(1, self.workers)))
        dealt = ids.with_columns((pl.int_range(pl.len()) % n).alias("_part"))
        parts = df.join(dealt, on="unique_id", maintain_order="left").partition_by(
            "_part", include_key=False, maintain_order=True
        )
        model = self.client.scatter(single, broadcast=True)
        futures = [
            self.client.submit(_cv_part, model, part, h, n_windows, step_size, pure=False)
            for part in self.client.scatter(parts)
        ]
        frames = self.client.gather(futures)
        return pl.concat(frames, how="vertical_relaxed").sort("unique_id", "cutoff", "ds")

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        futures = [self.client.submit(fn, *a, pure=False) for a in args]
        return list(self.client.gather(futures))

    def close(self) -> None:
        self.client.close()


def _cv_part(sf: Any, df: pl.DataFrame, h: int, n_windows: int, step_size: int) -> pl.DataFrame:
    """One partition's cross-validation, on a worker."""
    return LocalEngine().cross_validation(sf, df, h=h, n_windows=n_windows, step_size=step_size)


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
