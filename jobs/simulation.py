"""What-if on the retailer's own history: replay current and candidate rules through the
shipped planner, with forecasts made as the daily plan would have made them (no peeking).

Champions are trained on the history before the replayed period; every ``forecast_every``
days they forecast again from the sales known that day (cheap models refit in
milliseconds), and each order day takes the demand over every reviewed line's protection
period from the latest of those forecasts (:func:`forecasting.quantiles.lead_time_demand`,
the daily plan's own code). Forecasts do not depend on the rules, so the current and the
candidate rules replay the same forecasts, the same demand and the same lead-time draws.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from features.sales import last_date
from forecasting.candidates import CANDIDATES, freq_of
from forecasting.history import split_uid, to_training_frame
from forecasting.predict import forecast
from forecasting.train import train
from kernel.errors import InvalidInput, NotFound
from kernel.files import write_bytes
from replenishment.leadtime import lead_time_demand
from replenishment.rules import Rules
from replenishment.simulate import Replay, replay

if TYPE_CHECKING:
    from jobs.runtime import Runtime

__all__ = [
    "Forecaster",
    "WhatIf",
    "as_days",
    "check_freq",
    "initial_stock",
    "latest_what_if",
    "replay_days",
    "replay_rules",
    "replayed_demand",
    "save_what_if",
    "what_if",
]

Progress = Callable[[str, int, int], None]  # (what, done, total)


class Forecaster:
    """Demand over protection periods as the daily plan would have forecast it each day.

    Trains champions on ``history`` before ``start`` and forecasts again every ``every``
    days from the sales known that day; ``horizon`` must cover the longest protection
    period. Callable as a :data:`replenishment.simulate.DemandFn`.
    """

    def __init__(
        self,
        history: pl.DataFrame,
        start: date,
        days: int,
        *,
        horizon: int,
        every: int = 7,
        backtest_horizon: int = 28,
    ) -> None:
        if every < 1:
            raise InvalidInput(
                f"forecast_every={every} must be >= 1 day", field="forecast_every", value=every
            )
        self.history = history
        self.start = start
        self.every = every
        self.horizon = horizon + every
        self.backtest_horizon = backtest_horizon
        self.refreshes = [start + timedelta(days=k) for k in range(0, days, every)]
        self._forecasts: dict[date, pl.DataFrame] = {}
        self.champions: pl.DataFrame | None = None
        self.booster: Any = None  # the global model trained with the champions

    def prepare(self, on_progress: Progress | None = None) -> None:
        """Train, then make every forecast of the replay (reported as steps)."""
        total = len(self.refreshes) + 1
        if on_progress:
            on_progress("training champions on the history before the replay", 0, total)
        before = self.history.filter(pl.col("date") < self.start)
        trained = train(before, horizon=self.backtest_horizon, n_windows=3)
        self.champions, self.booster = trained.champions, trained.booster
        for k, day in enumerate(self.refreshes):
            if on_progress:
                on_progress(f"forecasting as of {day}", k + 1, total)
            self._forecast(day)
        if on_progress:
            on_progress("forecasts ready", total, total)

    def frame(self) -> pl.DataFrame:
        """Every forecast of the replay with ``as_of``, the day it was made: keep it to
        replay other rules later without forecasting again (:meth:`from_frame`)."""
        if len(self._forecasts) < len(self.refreshes):
            self.prepare()
        return pl.concat(
            [f.with_columns(pl.lit(d).alias("as_of")) for d, f in sorted(self._forecasts.items())]
        )

    @classmethod
    def from_frame(
        cls, frame: pl.DataFrame, history: pl.DataFrame, start: date, days: int, every: int = 7
    ) -> Forecaster:
        """A forecaster over forecasts kept by :meth:`frame` (same start, days, cadence)."""
        made = {
            d: part.drop("as_of")
            for (d,), part in frame.partition_by("as_of", as_dict=True).items()
        }
        self = cls(history, start, days, horizon=0, every=every)
        missing = [d for d in self.refreshes if d not in made]
        if missing:
            raise InvalidInput(
                f"the kept forecasts lack the ones made on {missing[:3]}",
                field="forecasts",
                rule=f"one forecast every {every} days from {start}",
                hint="replay the same period and cadence, or forecast again",
            )
        self._forecasts = {d: made[d] for d in self.refreshes}
        self.horizon = min(
            f.select((pl.col("date").max() - pl.lit(d)).dt.total_days() + 1).item()
            for d, f in self._forecasts.items()
        )
        self.champions = pl.DataFrame()
        return self

    def __call__(self, day: date, spans: pl.DataFrame) -> pl.DataFrame:
        refresh = self.refreshes[
            min((day - self.start).days // self.every, len(self.refreshes) - 1)
        ]
        ahead = self._forecast(refresh).filter(pl.col("date") >= day)
        return lead_time_demand(ahead, spans)

    def _forecast(self, day: date) -> pl.DataFrame:
        if day not in self._forecasts:
            if self.champions is None:
                self.prepare()
            assert self.champions is not None
            known = self.history.filter(pl.col("date") < day)
            self._forecasts[day] = forecast(
                known,
                _revive(self.champions, known, day),
                horizon=self.horizon,
                quantiles=[0.5],
                model_version="simulation",
                booster=self.booster,
            )
        return self._forecasts[day]


def _revive(champions: pl.DataFrame, known: pl.DataFrame, day: date) -> pl.DataFrame:
    """Champions without the series that were inactive at training but sold since: the
    forecaster then gives them their demand class's first model, as the next weekly
    retrain would (champions are trained once, so they would forecast zero for ever)."""
    window = freq_of("daily").inactive
    asleep = champions.filter(pl.col("model").is_in(list(CANDIDATES["inactive"])))
    if asleep.is_empty():
        return champions
    woke = (
        known.filter((pl.col("date") >= day - timedelta(days=window)) & (pl.col("units") > 0))
        .select("store_id", "sku_id")
        .unique()
        .join(asleep.select("store_id", "sku_id"), on=["store_id", "sku_id"])
    )
    return champions.join(woke, on=["store_id", "sku_id"], how="anti")


@dataclass(frozen=True)
class WhatIf:
    """The replay of the current rules and, if given, of the candidate rules."""

    start: date
    days: int
    initial_stock: str
    current: Replay
    candidate: Replay | None
    seconds: float
    forecaster: Forecaster

    def to_dict(self) -> dict[str, Any]:
        runs = {"current": self.current, "candidate": self.candidate}
        out: dict[str, Any] = {
            "start": str(self.start),
            "end": str(self.start + timedelta(days=self.days - 1)),
            "days": self.days,
            "series": self.current.series.height,
            "unplanned_series": self.current.unplanned.height,
            "initial_stock": self.initial_stock,
            "seconds": round(self.seconds, 2),
        }
        for name, run in runs.items():
            if run is None:
                continue
            summary = _rounded(run.summary())
            out[name] = {
                "total": summary[-1],
                "suppliers": summary[:-1],
            }
        if self.candidate is not None:
            out["change"] = change(self.current.totals(), self.candidate.totals())
        return out


def change(current: dict[str, Any], candidate: dict[str, Any]) -> dict[str, float | None]:
    """Candidate against current: differences of rates, relative change of the rest."""
    out: dict[str, float | None] = {
        "fill_rate": round(candidate["fill_rate"] - current["fill_rate"], 5)
    }
    for key in ("avg_on_hand_value", "orders", "units_ordered", "stockout_days", "lost"):
        base = current[key]
        out[key] = round(candidate[key] / base - 1, 4) if base else None
    return out


def what_if(
    history: pl.DataFrame,
    rules: Rules,
    candidate: Rules | None = None,
    *,
    days: int = 182,
    end: date | None = None,
    service_level: float = 0.95,
    seed: int = 0,
    forecast_every: int = 7,
    backtest_horizon: int = 28,
    freq: str = "daily",
    forecaster: Forecaster | None = None,
    on_progress: Progress | None = None,
) -> WhatIf:
    """Replay the last ``days`` days of ``history`` up to ``end`` (default: its last day)
    under ``rules`` and, if given, ``candidate``.

    ``history``: sales ``store_id, sku_id, date, units`` (optional ``stockout``,
    ``on_hand``), one row per period of ``freq``; the replay walks days, so weekly and
    monthly periods are spread over their days (:func:`as_days`). ``forecaster``: one
    from an earlier call on the same history and period (the forecasts do not depend on
    the rules), so that trying more candidate rules costs only their replays.
    """
    started = time.perf_counter()
    history, start = _period(as_days(history, freq), days, end)
    rule_sets = [rules] if candidate is None else [rules, candidate]
    longest = max(_longest_protection(r) for r in rule_sets)
    if forecaster is None:
        forecaster = Forecaster(
            history,
            start,
            days,
            horizon=longest,
            every=forecast_every,
            backtest_horizon=backtest_horizon,
        )
        forecaster.prepare(on_progress)
    elif (
        forecaster.start != start
        or forecaster.refreshes
        != Forecaster(history, start, days, horizon=0, every=forecaster.every).refreshes
    ):
        raise InvalidInput(
            f"the forecaster was made for a replay from {forecaster.start}, not {start}",
            field="forecaster",
            rule="same history and period",
        )
    elif forecaster.horizon - forecaster.every < longest:
        raise InvalidInput(
            f"the kept forecasts look {forecaster.horizon} days ahead; these rules protect "
            f"up to {longest} days (lead time + review period) past each order day",
            field="forecaster",
            rule="forecasts must cover the longest protection period",
            hint="forecast again for these rules",
        )
    demand = replayed_demand(history, start, days)
    stock, source = initial_stock(history, rules, start)
    runs = []
    for name, rule_set in zip(("current", "candidate"), rule_sets, strict=False):

        def on_day(t: int, what: str = f"replaying {name} rules") -> None:
            if on_progress:
                on_progress(what, t + 1, days)

        runs.append(
            replay(
                demand,
                rule_set,
                forecaster,
                start=start,
                days=days,
                on_hand=stock,
                service_level=service_level,
                seed=seed,
                on_day=on_day,
            )
        )
    return WhatIf(
        start=start,
        days=days,
        initial_stock=source,
        current=runs[0],
        candidate=runs[1] if len(runs) > 1 else None,
        seconds=time.perf_counter() - started,
        forecaster=forecaster,
    )


_PERIOD = {"weekly": "1w", "monthly": "1mo"}
_DAYS_PER_PERIOD = {"daily": 1, "weekly": 7, "monthly": 30}


def check_freq(freq: str) -> None:
    """``freq`` names a known frequency (its error lists the known ones)."""
    freq_of(freq)


def replay_days(periods: int, freq: str) -> int:
    """Days to replay for ``periods`` of ``freq`` (a month counts 30 days)."""
    check_freq(freq)
    return periods * _DAYS_PER_PERIOD[freq]


def as_days(history: pl.DataFrame, freq: str) -> pl.DataFrame:
    """A weekly or monthly history as the days the replay walks: each row's date starts its
    period, its units are spread evenly over the period's days (totals kept; when in the
    week or month they sold is not known), a stockout flag holds for every day of it, an
    on-hand snapshot for its first day. Daily history is returned as is."""
    check_freq(freq)
    if freq == "daily":
        return history
    ends = pl.col("date").dt.offset_by(_PERIOD[freq])
    spread = (
        history.with_columns(
            pl.date_ranges("date", ends, closed="left").alias("_day"),
            (ends - pl.col("date")).dt.total_days().alias("_n"),
        )
        .explode("_day")
        .with_columns((pl.col("units").cast(pl.Float64) / pl.col("_n")).alias("units"))
    )
    if "on_hand" in spread.columns:
        first = pl.col("_day") == pl.col("date")
        spread = spread.with_columns(pl.when(first).then(pl.col("on_hand")).alias("on_hand"))
    return spread.with_columns(pl.col("_day").alias("date")).drop("_day", "_n")


def save_what_if(rt: Runtime, data: dict[str, Any]) -> Path:
    """Keep the latest what-if (``<out>/what_if.json``, written whole) for the planner's page."""
    import json
    from datetime import UTC, datetime

    path = rt.settings.out_dir / "what_if.json"
    stamped = {"saved_at": datetime.now(UTC).isoformat(timespec="seconds"), **data}
    write_bytes(json.dumps(stamped, default=str).encode(), path)
    return path


def latest_what_if(rt: Runtime) -> dict[str, Any]:
    """The what-if kept by the last `replen simulate`; :class:`NotFound` before the first."""
    import json

    path = rt.settings.out_dir / "what_if.json"
    if not path.exists():
        raise NotFound(
            "no what-if has been run yet",
            hint="run `replen simulate --rules CURRENT --candidate-rules CANDIDATE` on your "
            "history; the page shows the latest",
        )
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def replay_rules(
    rt: Runtime, files: list[Path] | None, candidate_files: list[Path] | None = None
) -> tuple[Rules, Rules | None]:
    """The current rules (``files``, else the rules loaded into the database) and the
    candidate rules (``candidate_files``, or None)."""
    from jobs.runtime import MasterDataMissing
    from replenishment.rules import load_rules

    current = load_rules(files) if files else rt.rules_store.load()
    if current is None:
        raise MasterDataMissing(
            "no rules to replay",
            hint="pass the current rules with --rules FILE (repeatable) or load them "
            "with `replen rules load FILE`",
        )
    return current, load_rules(candidate_files) if candidate_files else None


def replayed_demand(history: pl.DataFrame, start: date, days: int) -> pl.DataFrame:
    """What customers asked for each day of the replay: sales, except on days flagged as
    stockouts, where sales under-count demand and the series' recent level stands in (as
    the forecaster treats them)."""
    end = start + timedelta(days=days - 1)
    frame = split_uid(to_training_frame(history)).rename({"ds": "date", "y": "units"})
    sold = history.select("store_id", "sku_id", "date", pl.col("units").alias("_sold"))
    return (
        frame.filter(pl.col("date").is_between(start, end))
        .join(sold, on=["store_id", "sku_id", "date"], how="left")
        .select(
            "store_id",
            "sku_id",
            "date",
            pl.max_horizontal("units", pl.col("_sold").fill_null(0.0)).alias("units"),
        )
    )


def initial_stock(history: pl.DataFrame, rules: Rules, start: date) -> tuple[pl.DataFrame, str]:
    """Stock on hand when the replay starts, and where it came from: the history's
    ``on_hand`` on the day before (``"history"``) when it has one for every series, else
    the average daily sales of the 28 days before × each line's lead time + review period
    under ``rules`` (``"estimated"``)."""
    keys = history.select("store_id", "sku_id").unique()
    if "on_hand" in history.columns:
        eve = history.filter(pl.col("date") == start - timedelta(days=1)).select(
            "store_id", "sku_id", pl.col("on_hand").cast(pl.Float64)
        )
        known = keys.join(eve.drop_nulls("on_hand"), on=["store_id", "sku_id"], how="left")
        if known["on_hand"].null_count() == 0:
            return known.with_columns(pl.col("on_hand").clip(lower_bound=0.0)), "history"
    recent = history.filter(pl.col("date").is_between(start - timedelta(days=28), start, "left"))
    rate = recent.group_by("store_id", "sku_id").agg((pl.col("units").sum() / 28).alias("_rate"))
    cover = rules.items.join(rules.suppliers, on="supplier_id").select(
        "sku_id", (pl.col("lead_time_mean") + pl.col("review_period_days")).alias("_days")
    )
    return (
        keys.join(rate, on=["store_id", "sku_id"], how="left")
        .join(cover, on="sku_id", how="left")
        .select(
            "store_id",
            "sku_id",
            (pl.col("_rate").fill_null(0.0) * pl.col("_days").fill_null(0.0))
            .ceil()
            .alias("on_hand"),
        )
    ), "estimated"


def _period(history: pl.DataFrame, days: int, end: date | None) -> tuple[pl.DataFrame, date]:
    missing = [c for c in ("store_id", "sku_id", "date", "units") if c not in history.columns]
    if missing:
        raise InvalidInput(
            f"history lacks column(s) {missing}; has {history.columns}",
            field="history",
            rule="needs store_id, sku_id, date, units",
        )
    if history.is_empty():
        raise InvalidInput("history is empty: nothing to replay", field="history")
    end = end or last_date(history)
    history = history.filter(pl.col("date") <= end)
    start = end - timedelta(days=days - 1)
    first = history["date"].min()
    if not isinstance(first, date) or (start - first).days < 56:
        raise InvalidInput(
            f"--days {days} leaves {(start - first).days if isinstance(first, date) else 0} "
            f"days of history before the replay starts on {start}; the forecaster needs at "
            "least 56 to train on",
            field="days",
            value=days,
            rule="history before the replay >= 56 days",
            hint="replay fewer days or give a longer history",
        )
    return history, start


def _longest_protection(rules: Rules) -> int:
    spans = rules.suppliers.select(
        (pl.col("lead_time_mean") + pl.col("review_period_days")).max()
    ).item()
    return math.ceil(float(spans or 1.0)) + 1


def _rounded(summary: pl.DataFrame) -> list[dict[str, Any]]:
    return summary.with_columns(
        pl.col("fill_rate").round(5), pl.col(pl.Float64).exclude("fill_rate").round(2)
    ).to_dicts()
