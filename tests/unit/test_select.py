"""Selection over backtest windows: the default yields only to a model that wins most of them."""

from datetime import date, timedelta

import polars as pl

from forecasting.select import pick_champions, sales_weights

CUTS = [date(2025, 1, 1) + timedelta(days=28 * i) for i in range(4)]
ORDER = {"smooth": ("default", "steady", "lucky")}


def _windows(losses: dict[str, dict[str, list[float]]], cls: str = "smooth") -> pl.DataFrame:
    """``losses[series][model]``: one loss per window."""
    return pl.DataFrame(
        [
            {
                "unique_id": uid,
                "demand_class": cls,
                "model": model,
                "cutoff": cut,
                "h": 28,
                "loss": value,
                "rmsse": value,
            }
            for uid, models in losses.items()
            for model, values in models.items()
            for cut, value in zip(CUTS, values, strict=True)
        ]
    )


def test_a_model_that_wins_one_window_big_does_not_replace_the_default() -> None:
    windows = _windows(
        {
            "a": {"default": [1.0, 1.0, 1.0, 1.0], "lucky": [0.1, 0.1, 1.2, 1.2]},
            "b": {"default": [1.0, 1.0, 1.0, 1.0], "lucky": [0.1, 0.1, 1.2, 1.2]},
        }
    )
    picked = pick_champions(windows, switch=1.0, candidates=ORDER)
    decision = picked.decisions.row(0, named=True)
    assert decision["default"] == "default" and decision["champion"] == "default"
    assert set(picked.chosen["model"]) == {"default"}


def test_a_model_better_on_most_windows_and_on_average_replaces_the_default() -> None:
    windows = _windows(
        {
            "a": {"default": [1.0] * 4, "steady": [0.9, 0.9, 0.9, 1.1], "lucky": [0.2, 2, 2, 2]},
            "b": {"default": [1.0] * 4, "steady": [0.9, 0.9, 0.9, 1.1], "lucky": [0.2, 2, 2, 2]},
        }
    )
    picked = pick_champions(windows, switch=1.0, candidates=ORDER)
    decision = picked.decisions.row(0, named=True)
    assert (decision["champion"], decision["wins"], decision["windows"]) == ("steady", 3, 4)
    assert set(picked.chosen["model"]) == {"steady"}


def test_sales_value_weights_let_the_big_sellers_decide() -> None:
    windows = _windows(
        {
            "big": {"default": [1.0] * 4, "steady": [0.5] * 4},
            "small": {"default": [1.0] * 4, "steady": [2.0] * 4},
        }
    )
    equal = pick_champions(windows, switch=1.0, candidates=ORDER)
    weights = pl.DataFrame(
        [
            {"unique_id": u, "cutoff": c, "weight": w}
            for u, w in (("big", 100.0), ("small", 1.0))
            for c in CUTS
        ]
    )
    weighted = pick_champions(windows, weights, switch=1.0, candidates=ORDER)
    assert equal.decisions["champion"][0] == "default"  # mean 1.25 vs 1.0 unweighted
    assert weighted.decisions["champion"][0] == "steady"


def test_a_series_keeps_its_own_model_only_when_clearly_better_on_most_windows() -> None:
    windows = _windows(
        {
            "anchor": {"default": [1.0] * 4, "lucky": [3.0] * 4},  # keeps the class default
            "clear": {"default": [1.0] * 4, "lucky": [0.4, 0.4, 0.4, 1.2]},  # mean 0.6 < 0.7
            "slight": {"default": [1.0] * 4, "lucky": [0.9] * 4},  # not 30% better
            "twice": {"default": [1.0] * 4, "lucky": [0.01, 1.05, 1.05, 0.5]},  # 2 of 4 windows
        }
    )
    chosen = dict(
        pick_champions(windows, switch=0.3, candidates=ORDER)
        .chosen.select("unique_id", "model")
        .iter_rows()
    )
    assert chosen == {
        "anchor": "default",
        "clear": "lucky",
        "slight": "default",
        "twice": "default",
    }


def test_sales_weights_are_units_times_price_before_each_cutoff() -> None:
    history = pl.DataFrame(
        {
            "store_id": "S",
            "sku_id": ["A"] * 3 + ["B"] * 3,
            "date": [date(2025, 1, 27), date(2025, 1, 28), date(2025, 1, 29)] * 2,
            "units": [1.0, 2.0, 50.0, 4.0, 0.0, 0.0],
            "price": [2.0, None, 2.0, 1.0, 1.0, 1.0],
        }
    )
    w = sales_weights(history, [date(2025, 1, 28)], days=28).sort("unique_id")
    assert w["weight"].to_list() == [6.0, 4.0]  # the price carries forward; later days do not count
