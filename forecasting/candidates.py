"""Candidate statsforecast models per demand class, cheapest first; costly ones opt in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kernel.errors import InvalidInput

__all__ = [
    "CANDIDATES",
    "COSTLY",
    "FALLBACK",
    "FREQS",
    "GLOBAL",
    "Freq",
    "build",
    "candidates_for",
    "components",
    "freq_of",
]


@dataclass(frozen=True)
class Freq:
    """How a data frequency shapes the models: statsforecast alias, season, windows."""

    alias: str  # statsforecast/polars interval
    season: int  # periods per seasonal cycle
    window: int  # periods in the moving-average window
    inactive: int  # periods without sales that make a series inactive
    min_history: int  # periods below which a series is "new"
    backtest: int  # default backtest window, in periods
    days: float = 1.0  # days in one period (on average), to convert day-based settings


FREQS: dict[str, Freq] = {
    "daily": Freq("1d", 7, 28, 56, 56, 28, 1.0),
    "weekly": Freq("1w", 52, 8, 8, 16, 8, 7.0),
    "monthly": Freq("1mo", 12, 6, 3, 12, 3, 30.4375),
}


def freq_of(name: str) -> Freq:
    if name not in FREQS:
        raise InvalidInput(
            f"freq {name!r} unknown",
            field="freq",
            value=name,
            rule="freq.known",
            hint=f"choose {', '.join(FREQS)}",
        )
    return FREQS[name]


def _factories(freq: str = "daily") -> dict[str, Callable[[], Any]]:
    f = freq_of(freq)
    season, window = f.season, f.window
    from statsforecast.models import (
        ADIDA,
        IMAPA,
        TSB,
        AutoETS,
        CrostonSBA,
        DynamicOptimizedTheta,
        HistoricAverage,
        SeasonalExponentialSmoothingOptimized,
        SeasonalNaive,
        SeasonalWindowAverage,
        SimpleExponentialSmoothingOptimized,
        WindowAverage,
        ZeroModel,
    )

    return {
        "seasonal_naive": lambda: SeasonalNaive(season_length=season, alias="seasonal_naive"),
        "ses": lambda: SimpleExponentialSmoothingOptimized(alias="ses"),
        "seasonal_es": lambda: SeasonalExponentialSmoothingOptimized(
            season_length=season, alias="seasonal_es"
        ),
        "seasonal_window_avg": lambda: SeasonalWindowAverage(
            season_length=season, window_size=4, alias="seasonal_window_avg"
        ),
        "window_avg": lambda: WindowAverage(window_size=window, alias="window_avg"),
        "croston_sba": lambda: CrostonSBA(alias="croston_sba"),
        "tsb": lambda: TSB(alpha_d=0.2, alpha_p=0.2, alias="tsb"),
        "adida": lambda: ADIDA(alias="adida"),
        "imapa": lambda: IMAPA(alias="imapa"),
        "historic_avg": lambda: HistoricAverage(alias="historic_avg"),
        "zero": lambda: ZeroModel(alias="zero"),
        "auto_ets": lambda: AutoETS(season_length=season, alias="auto_ets"),
        "dyn_opt_theta": lambda: DynamicOptimizedTheta(season_length=season, alias="dyn_opt_theta"),
    }


# Cheap models: milliseconds per series. Costly ones (~0.2-0.5 s per series) are opt-in.
# ADIDA and iMAPA (temporal aggregation) left the lists once the global models came: on M5
# they were chosen for under 2% of series at a tenth of the backtest's cost.
# A name "a+b" is the mean of models a and b (a combination: usually steadier than either).
# "profile", "gbm" and "revival" are the global models (forecasting/profile.py,
# forecasting/boosting.py, forecasting/revival.py), daily data only. The first candidate of
# a class is its default: a challenger replaces it only when it wins on most backtest
# windows (forecasting/select.py).
GLOBAL = ("profile", "gbm", "revival")
# Zero forecasts: the median of an inactive item's demand, with no spread for its law; where
# the revival model is there (daily data), the inactive class does without them.
_ZERO = ("zero", "zero+historic_avg")
CANDIDATES: dict[str, tuple[str, ...]] = {
    "smooth": (
        "profile+gbm",
        "profile",
        "gbm",
        "seasonal_es",
        "ses",
        "seasonal_naive",
        "seasonal_window_avg",
        "window_avg",
        "profile+seasonal_es",
        "gbm+seasonal_es",
        "croston_sba+seasonal_es",
        "seasonal_es+historic_avg",
    ),
    "erratic": (
        "profile+gbm",
        "profile",
        "gbm",
        "seasonal_es",
        "ses",
        "seasonal_window_avg",
        "window_avg",
        "seasonal_naive",
        "profile+seasonal_es",
        "gbm+seasonal_es",
        "croston_sba+seasonal_es",
        "seasonal_es+historic_avg",
    ),
    "intermittent": (
        "profile+gbm",
        "profile",
        "gbm",
        "croston_sba",
        "tsb",
        "window_avg",
        "ses",
        "croston_sba+profile",
        "croston_sba+historic_avg",
        "window_avg+historic_avg",
    ),
    "lumpy": (
        "profile+gbm",
        "profile",
        "gbm",
        "croston_sba",
        "tsb",
        "window_avg",
        "croston_sba+profile",
        "croston_sba+historic_avg",
        "croston_sba+seasonal_es",
    ),
    "new": ("historic_avg", "ses"),
    "inactive": ("revival", "zero", "historic_avg", "zero+historic_avg"),
}
# Monthly histories are short (a few dozen points): DynamicOptimizedTheta costs what cheap
# models cost on days, and on M5 months the daily lists' choices (seasonal ES, Croston)
# won the backtest and lost the year after; the Theta family with SES did not.
MONTHLY: dict[str, tuple[str, ...]] = {
    c: ("dyn_opt_theta", "ses", "dyn_opt_theta+ses")
    for c in ("smooth", "erratic", "intermittent", "lumpy")
}
WEEKLY_EXTRA = ("ses+dyn_opt_theta",)
COSTLY: dict[str, tuple[str, ...]] = {
    "smooth": ("auto_ets", "dyn_opt_theta"),
    "erratic": ("auto_ets",),
}
FALLBACK = "historic_avg"


def candidates_for(
    demand_class: str, *, costly: bool = False, freq: str = "daily", pooled: bool = True
) -> tuple[str, ...]:
    """Names of the candidate models for a demand class, its default first.

    The global models (``pooled``) take part on daily data only; weekly data has SES as
    its default, monthly data the Theta family (:data:`MONTHLY`)."""
    if demand_class not in CANDIDATES:
        raise ValueError(
            f"unknown demand class {demand_class!r}; expected one of {sorted(CANDIDATES)}"
        )
    names = CANDIDATES[demand_class]
    if freq == "monthly" and demand_class in MONTHLY:
        return MONTHLY[demand_class]
    if freq != "daily" or not pooled:
        names = tuple(n for n in names if not set(n.split("+")) & set(GLOBAL))
    elif demand_class == "inactive":
        names = tuple(n for n in names if n not in _ZERO)
    if freq != "daily" and demand_class in ("smooth", "erratic", "intermittent", "lumpy"):
        # Weekly: SES by default (on M5 weeks it matched AutoETS + Theta, while
        # yearly-seasonal models won winter windows and lost spring ones), and its mean with
        # DynamicOptimizedTheta as the challenger (on M5 weeks it edged past the AutoETS +
        # Theta mean, 0.9443 against 0.9448 WRMSSE; Theta costs little on a few hundred
        # points).
        names = ("ses", *WEEKLY_EXTRA, *(n for n in names if n not in ("ses", *WEEKLY_EXTRA)))
    return names + COSTLY.get(demand_class, ()) if costly else names


# Names once registered keep working: champion tables in MLflow refer to them.
LEGACY = {"window_avg_28": "window_avg"}


def components(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The statsforecast models that the candidates need (combinations split into parts)."""
    out: list[str] = []
    for name in names:
        for part in name.split("+"):
            part = LEGACY.get(part, part)
            if part not in out:
                out.append(part)
    return tuple(out)


def build(names: tuple[str, ...] | list[str], freq: str = "daily") -> list[Any]:
    """Instantiate statsforecast models by name (each with its name as alias)."""
    factories = _factories(freq)
    names = [LEGACY.get(n, n) for n in names]
    if set(names) & set(GLOBAL):
        raise ValueError(f"{sorted(set(names) & set(GLOBAL))} are global models, not statsforecast")
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown model name(s) {unknown}; known: {sorted(factories)}")
    return [factories[n]() for n in names]
