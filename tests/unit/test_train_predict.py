from datetime import date, timedelta

import polars as pl
import pytest

from forecasting.history import to_training_frame
from forecasting.predict import forecast
from forecasting.train import train


def test_every_series_gets_a_champion_from_its_class(daily) -> None:
    result = train(daily, horizon=7, n_windows=2)
    assert result.champions.height == daily.select("store_id", "sku_id").n_unique()
    assert result.champions["model"].null_count() == 0
    assert result.metrics["series"] == result.champions.height
    assert {"loss", "wape", "rmsse"} <= set(result.metrics)


def _picks(result) -> dict[str, str]:
    return dict(
        result.champions.select(
            pl.concat_str(["store_id", "sku_id"], separator="\x1f"), "model"
        ).iter_rows()
    )


def test_pooled_selection_gives_each_class_one_model(daily) -> None:
    result = train(daily, horizon=7, n_windows=2, switch=1.0)
    per_class = result.champions.group_by("demand_class").agg(pl.col("model").n_unique())
    assert per_class["model"].max() == 1


def test_combinations_are_backtested_and_forecast_as_means(daily) -> None:
    result = train(
        daily,
        horizon=7,
        n_windows=2,
        candidates={
            c: ("ses", "historic_avg", "ses+historic_avg")
            for c in ("smooth", "erratic", "intermittent", "lumpy")
        },
    )
    cv = result.cv.pivot(on="model", index=["unique_id", "cutoff", "ds"], values="yhat")
    assert ((cv["ses+historic_avg"] - (cv["ses"] + cv["historic_avg"]) / 2).abs() < 1e-9).all()
    champions = result.champions.with_columns(pl.lit("ses+historic_avg").alias("model"))
    both = forecast(daily, champions, horizon=3, quantiles=[0.5], model_version="1")
    ses = forecast(
        daily,
        champions.with_columns(pl.lit("ses").alias("model")),
        horizon=3,
        quantiles=[0.5],
        model_version="1",
    )
    ha = forecast(
        daily,
        champions.with_columns(pl.lit("historic_avg").alias("model")),
        horizon=3,
        quantiles=[0.5],
        model_version="1",
    )
    assert ((both["mean"] - (ses["mean"] + ha["mean"]) / 2).abs() < 1e-9).all()


def test_short_series_fall_back_instead_of_failing(daily) -> None:
    last = daily["date"].max()
    short = pl.DataFrame(
        {
            "store_id": "S9",
            "sku_id": "NEW",
            "units": [1.0, 0.0, 2.0] * 5,
            "date": [last - timedelta(days=14 - i) for i in range(15)],
        }
    )
    history = pl.concat(
        [
            daily.select("store_id", "sku_id", "date", "units"),
            short.select("store_id", "sku_id", "date", "units"),
        ]
    )
    result = train(history, horizon=7, n_windows=2)
    row = result.champions.filter(pl.col("sku_id") == "NEW").row(0, named=True)
    assert row["demand_class"] == "new" and row["model"] == "historic_avg"


def test_stockout_days_are_not_fitted_as_zero_demand() -> None:
    d0 = date(2024, 1, 1)
    history = pl.DataFrame(
        {
            "store_id": "S1",
            "sku_id": "A",
            "date": [d0 + timedelta(days=i) for i in range(6)],
            "units": [4.0, 4.0, 0.0, 0.0, 4.0, 4.0],
            "stockout": [False, False, True, True, False, False],
        }
    )
    assert to_training_frame(history)["y"].to_list() == [4.0] * 6


def test_forecast_follows_the_contract(daily) -> None:
    result = train(daily, horizon=7, n_windows=2)
    fc = forecast(
        daily, result.champions, horizon=10, quantiles=[0.5, 0.9, 0.99], model_version="7"
    )
    n = daily.select("store_id", "sku_id").n_unique()
    assert fc.height == n * 10
    assert fc.columns[:7] == ["store_id", "sku_id", "date", "mean", "q50", "q90", "q99"]
    assert set(fc["model_version"]) == {"7"}
    assert fc["date"].min() == daily["date"].max() + timedelta(days=1)
    assert (fc["mean"] >= 0).all()
    assert (fc["q50"] <= fc["q90"]).all() and (fc["q90"] <= fc["q99"]).all()


def test_series_unknown_to_the_champions_still_get_a_forecast(daily) -> None:
    result = train(daily, horizon=7, n_windows=2)
    some = result.champions.head(3)
    fc = forecast(daily, some, horizon=5, quantiles=[0.9], model_version="1")
    assert (
        fc.select("store_id", "sku_id").n_unique() == daily.select("store_id", "sku_id").n_unique()
    )


def test_weekly_history_with_wednesday_weeks(daily) -> None:
    weekly = (
        daily.with_columns(
            (pl.col("date") - pl.duration(days=(pl.col("date").dt.weekday() - 3) % 7)).alias("week")
        )
        .group_by("store_id", "sku_id", "week")
        .agg(pl.col("units").sum())
        .rename({"week": "date"})
    )
    result = train(weekly, horizon=4, n_windows=2, freq="weekly")
    fc = forecast(
        weekly, result.champions, horizon=3, quantiles=[0.9], model_version="w", freq="weekly"
    )
    first = fc.group_by("store_id", "sku_id").agg(pl.col("date").sort())
    for dates in first["date"]:
        assert [d.weekday() for d in dates] == [2, 2, 2]  # Wednesdays, a week apart
        assert (dates[1] - dates[0]).days == 7
    assert result.params["freq"] == "weekly"


def test_history_file_checks_and_zero_fills(tmp_path) -> None:
    import pytest

    from kernel.errors import InvalidInput
    from replen.io import read_history

    path = tmp_path / "h.csv"
    path.write_text("store_id,sku_id,date,units\nS,A,2024-01-01,3\nS,A,2024-01-15,1\n")
    weekly = read_history(path, "weekly")
    assert weekly["units"].to_list() == [3.0, 0.0, 1.0]
    path.write_text("store_id,sku_id,date,units\nS,A,2024-01-01,three\n")
    with pytest.raises(InvalidInput, match=r"h\.csv:2: units='three' must be a number") as bad:
        read_history(path)
    assert (bad.value.line, bad.value.field, bad.value.rule) == (2, "units", "units.number")
    path.write_text("store_id,sku_id,day,units\nS,A,2024-01-01,3\n")
    with pytest.raises(InvalidInput, match=r"h\.csv:1: missing column 'date'"):
        read_history(path)
    path.write_text("store_id,sku_id,date,unit\nS,A,2024-01-01,3\n")
    with pytest.raises(InvalidInput, match="missing column 'units' \\(the file has 'unit'"):
        read_history(path)


def test_costly_champions_go_forward_with_weekly_parameters(daily) -> None:

    smooth = {"smooth": ("auto_ets",), "erratic": ("auto_ets",)}
    some = daily.filter(pl.col("store_id") == "S001")
    result = train(some, horizon=7, n_windows=2, costly=True, candidates=smooth)
    ets = result.champions.filter(pl.col("model") == "auto_ets")
    assert ets.height and len(result.fitted) == ets.height
    # A day later: same parameters, state moved on by the new sale.
    later = pl.concat(
        [
            some,
            some.filter(pl.col("date") == pl.col("date").max()).with_columns(
                pl.col("date") + pl.duration(days=1), pl.lit(50.0).alias("units")
            ),
        ],
        how="diagonal",
    )
    ahead = forecast(
        later, result.champions, horizon=3, quantiles=[0.5], model_version="1", fitted=result.fitted
    )
    refit = forecast(later, result.champions, horizon=3, quantiles=[0.5], model_version="1")
    uid = next(iter(result.fitted))
    store, sku = uid.split("\x1f")
    pick = lambda f: f.filter((pl.col("store_id") == store) & (pl.col("sku_id") == sku))  # noqa: E731
    assert pick(ahead)["date"].to_list() == pick(refit)["date"].to_list()
    model = result.fitted[uid]["auto_ets"]
    y = later.filter((pl.col("store_id") == store) & (pl.col("sku_id") == sku)).sort("date")
    expected = model.forward(y=y["units"].to_numpy().astype(float), h=3)["mean"]
    assert pick(ahead)["mean"].to_list() == pytest.approx(list(expected.clip(0)))


def test_a_placeholder_block_at_the_end_is_masked_not_learnt() -> None:
    """The last four weeks hold half the usual units and no weekly cycle (a broken extract):
    the retrain reports the block and forecasts the level from before it."""
    from replen.synthetic import generate

    chain = generate(stores=3, skus=10, days=300, seed=4)
    history = chain.demand.select("store_id", "sku_id", "date", "units").with_columns(
        pl.col("units").cast(pl.Float64)
    )
    end = history["date"].max()
    start = end - timedelta(days=27)
    block = pl.col("date") >= start
    level = pl.col("units").filter(~block & (pl.col("date") >= start - timedelta(days=56)))
    broken = history.with_columns(
        pl.when(block)
        .then((level.mean().over("store_id", "sku_id") * 0.5).round(0))
        .otherwise(pl.col("units"))
        .alias("units")
    )
    result = train(broken, horizon=14, n_windows=2, pooled=False)
    chain_blocks = result.checks.filter(pl.col("scope") == "chain")
    assert chain_blocks.select("start", "end").rows() == [(start, end)]
    assert result.metrics["suspect_blocks"] >= 1
    fc = forecast(broken, result.champions, horizon=14, quantiles=[0.5], model_version="1")
    before = history.filter(~block & (pl.col("date") >= start - timedelta(days=56)))["units"]
    per_day = fc["mean"].sum() / 14
    assert per_day > 0.8 * before.sum() / 56  # the usual level, not half of it
