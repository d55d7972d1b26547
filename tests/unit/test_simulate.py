"""The replay: order days, lead times, supplier minimum, shelf life, caps, lost sales."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from kernel.errors import InvalidInput
from replenishment.planner import protection_spans, suggest
from replenishment.rules import Rules
from replenishment.simulate import lead_time_days, replay

MONDAY = date(2024, 1, 1)


def _rules(
    *,
    order_days: str = "Mon",
    lead: float = 2.0,
    lead_std: float = 0.0,
    pack: int = 1,
    moq: int = 0,
    shelf_life: float | None = None,
    min_value: float = 0.0,
    action: str = "hold",
    capacity: float | None = None,
    skus: tuple[str, ...] = ("x",),
) -> Rules:
    return Rules.from_frames(
        pl.DataFrame(
            {
                "supplier_id": ["A"],
                "lead_time_mean": [lead],
                "lead_time_std": [lead_std],
                "order_days": [order_days],
                "min_order_value": [min_value],
                "min_order_action": [action],
            }
        ),
        pl.DataFrame(
            {
                "sku_id": list(skus),
                "supplier_id": ["A"] * len(skus),
                "unit_cost": [2.0] * len(skus),
                "pack_size": [pack] * len(skus),
                "moq_units": [moq] * len(skus),
                "shelf_life_days": [shelf_life] * len(skus),
            }
        ),
        pl.DataFrame(
            {"store_id": ["S1"], "sku_id": [skus[0]], "max_capacity": [capacity]},
            schema={"store_id": pl.String, "sku_id": pl.String, "max_capacity": pl.Float64},
        )
        if capacity is not None
        else None,
    )


def _demand(per_day: float | list[float], days: int = 28, skus: tuple[str, ...] = ("x",)):
    values = per_day if isinstance(per_day, list) else [per_day] * days
    return pl.DataFrame(
        [
            {"store_id": "S1", "sku_id": s, "date": MONDAY + timedelta(days=t), "units": float(u)}
            for s in skus
            for t, u in enumerate(values)
        ]
    )


def _known_rate(rate: float, sd: float = 0.0):
    """A forecaster that knows the daily rate: the target is the mean over the span."""

    def forecast(day: date, spans: pl.DataFrame) -> pl.DataFrame:
        return spans.select(
            "store_id",
            "sku_id",
            (pl.col("protection_days") * rate).alias("demand_mean"),
            (pl.col("protection_days") * rate + sd).alias("demand_quantile"),
            pl.lit(sd).alias("demand_sd"),
            pl.lit(rate).alias("daily_mean"),
            pl.lit("test").alias("model_version"),
        )

    return forecast


def _run(rules: Rules, demand: pl.DataFrame, *, on_hand: float = 0.0, rate: float = 2.0, **kw):
    stock = demand.select("store_id", "sku_id").unique().with_columns(on_hand=pl.lit(on_hand))
    return replay(
        demand,
        rules,
        kw.pop("forecast", _known_rate(rate)),
        start=MONDAY,
        days=kw.pop("days", demand["date"].n_unique()),
        on_hand=stock,
        **kw,
    )


def test_a_simulated_day_never_orders_off_the_supplier_order_days() -> None:
    run = _run(_rules(order_days="Tue,Fri"), _demand(2.0, days=35))
    weekdays = {d.weekday() for d in run.purchase_orders["order_date"]}
    assert weekdays == {1, 4}  # every Tuesday and Friday ordered, no other day
    assert run.purchase_orders.height == 10


def test_orders_are_sized_by_the_shipped_planner() -> None:
    rules = _rules(pack=6, moq=12)
    run = _run(rules, _demand(2.0, days=1), on_hand=3.0)
    keys = pl.DataFrame({"store_id": ["S1"], "sku_id": ["x"]})
    spans = protection_spans(keys, rules, MONDAY, 0.95)
    stock = keys.with_columns(on_hand=pl.lit(3.0), on_order=pl.lit(0.0))
    planned = suggest(_known_rate(2.0)(MONDAY, spans), stock, rules, spans)
    assert run.purchase_orders["units"].to_list() == [float(planned.lines["quantity"][0])]
    assert planned.lines["quantity"][0] == 18  # 9 days × 2 − 3 on hand = 15 → 3 packs of 6


def test_a_po_under_the_supplier_minimum_with_hold_is_not_placed() -> None:
    run = _run(_rules(min_value=1_000.0, action="hold"), _demand(2.0, days=14), on_hand=0.0)
    assert run.purchase_orders.height == 0 and run.held.height == 2
    assert run.held["min_order_value"].to_list() == [1_000.0, 1_000.0]
    assert run.totals()["units_ordered"] == 0 and run.totals()["fill_rate"] == 0.0


def test_a_po_under_the_supplier_minimum_with_fill_is_raised_to_it() -> None:
    run = _run(_rules(min_value=100.0, action="fill"), _demand(2.0, days=14))
    assert run.held.height == 0 and (run.purchase_orders["value"] >= 100.0).all()


def test_expired_units_are_counted_as_waste_oldest_first() -> None:
    # 10 on the shelf on day 0 with a 3-day life, 1 sold a day, nothing ordered:
    # 3 sold, the other 7 expire on day 3 and the shelf is empty from then on.
    never = _known_rate(0.0)
    run = _run(_rules(shelf_life=3.0), _demand(1.0, days=6), on_hand=10.0, forecast=never)
    t = run.totals()
    assert (t["sold"], t["waste_units"], t["lost"]) == (3.0, 7.0, 3.0)
    assert t["waste_value"] == 14.0
    assert run.daily["waste"].to_list() == [0, 0, 0, 7, 0, 0]


def test_customers_take_the_oldest_units_so_fresh_ones_last() -> None:
    # 3 units on day 0, a 4-day life, 1 a day sells from day 2. The shelf-life cap lets
    # Monday's order bring 1 unit (4 days × 1 − 3 held), delivered on day 2. Customers take
    # the old units on days 2 and 3; the last old one expires on day 4 (not the fresh one).
    rules = _rules(shelf_life=4.0, lead=2.0)
    run = _run(rules, _demand([0.0, 0.0, 1.0, 1.0, 1.0, 1.0]), on_hand=3.0, rate=1.0)
    assert run.purchase_orders["delivery_date"].to_list() == [MONDAY + timedelta(days=2)]
    assert run.purchase_orders["units"].to_list() == [1.0]
    assert run.daily["waste"].to_list() == [0, 0, 0, 0, 1, 0]
    assert run.daily["sold"].to_list() == [0, 0, 1, 1, 1, 0]


def test_with_lead_time_std_zero_the_delivery_day_is_exact() -> None:
    run = _run(_rules(lead=3.0, lead_std=0.0), _demand(2.0, days=28))
    pos = run.purchase_orders
    assert (pos["delivery_date"] - pos["order_date"]).dt.total_days().to_list() == [3] * 4
    # Nothing on hand at first: nothing sold until the first delivery lands on day 3.
    assert run.daily["sold"].to_list()[:4] == [0, 0, 0, 2]


def test_lead_times_are_drawn_with_the_supplier_mean_and_spread() -> None:
    sup = pl.DataFrame(
        {
            "store_id": ["S1", "S2"],
            "supplier_id": ["A", "A"],
            "lead_time_mean": [5.0, 5.0],
            "lead_time_std": [2.0, 0.0],
        }
    )
    draws = lead_time_days(sup, 20_000, seed=1)
    assert abs(draws[0].mean() - 5.0) < 0.1 and abs(draws[0].std() - 2.0) < 0.15
    assert (draws[0] >= 0).all() and set(draws[1]) == {5}
    again = lead_time_days(sup.head(1), 20_000, seed=1)
    assert (again[0] == draws[0]).all()  # the same store×supplier draws the same days
    assert not (lead_time_days(sup.head(1), 20_000, seed=2)[0] == draws[0]).all()


def test_a_late_delivery_loses_sales_that_an_exact_one_does_not() -> None:
    # The target covers the mean demand over lead time + review, no safety stock: it is
    # exactly enough when deliveries are on time, and short whenever one is late.
    exact = _run(_rules(lead=3.0), _demand(2.0, days=182), on_hand=10.0)
    spread = _run(_rules(lead=3.0, lead_std=2.0), _demand(2.0, days=182), on_hand=10.0)
    assert exact.totals()["lost"] == 0
    assert spread.totals()["lost"] > 0


def test_a_candidate_with_bigger_packs_raises_average_stock() -> None:
    demand = _demand(3.0, days=56)
    current = _run(_rules(pack=1), demand, rate=3.0)
    bigger = _run(_rules(pack=48), demand, rate=3.0)
    assert bigger.totals()["avg_on_hand_value"] > current.totals()["avg_on_hand_value"] * 1.5
    assert bigger.totals()["orders"] < current.totals()["orders"]


def test_shelf_capacity_caps_the_stock() -> None:
    run = _run(_rules(capacity=10.0, pack=2), _demand(3.0, days=28), rate=3.0)
    assert run.daily["on_hand_units"].max() <= 10.0
    assert run.totals()["lost"] > 0  # 10 units cannot cover a week of 3 a day


def test_no_stock_and_no_orders_loses_every_sale() -> None:
    run = _run(_rules(), _demand([1.0, 0.0, 2.0]), forecast=_known_rate(0.0))
    t = run.totals()
    assert (t["fill_rate"], t["lost"], t["stockout_days"]) == (0.0, 3.0, 2)


def test_min_max_from_the_forecaster_orders_only_at_the_reorder_point() -> None:
    def min_max(day: date, spans: pl.DataFrame) -> pl.DataFrame:
        return _known_rate(1.0)(day, spans).with_columns(
            pl.lit("minmax").alias("policy"),
            pl.lit(5.0).alias("reorder_point"),
            pl.lit(20.0).alias("demand_quantile"),
        )

    run = _run(_rules(lead=0.0), _demand(1.0, days=28), on_hand=12.0, forecast=min_max)
    # Mondays: position 12 (no order), 5 (→ 20), 18 (no), 11 (no).
    assert run.purchase_orders["order_date"].to_list() == [MONDAY + timedelta(days=7)]
    assert run.purchase_orders["units"].to_list() == [15.0]


def test_per_supplier_summary_adds_up_to_the_total() -> None:
    rules = Rules.from_frames(
        pl.DataFrame(
            {"supplier_id": ["A", "B"], "lead_time_mean": [1.0, 4.0], "order_days": ["Mon"] * 2}
        ),
        pl.DataFrame({"sku_id": ["x", "y"], "supplier_id": ["A", "B"], "unit_cost": [1.0, 5.0]}),
    )
    run = _run(rules, _demand(2.0, days=21, skus=("x", "y")))
    s = run.summary()
    assert s["supplier_id"].to_list() == ["A", "B", "all"]
    for col in ("orders", "lines", "units_ordered", "avg_on_hand_value", "lost", "demand"):
        assert s[col][0] + s[col][1] == pytest.approx(s[col][2])


def test_series_without_rules_are_listed_not_replayed() -> None:
    run = _run(_rules(), _demand(1.0, days=7, skus=("x", "ghost")))
    assert run.unplanned["sku_id"].to_list() == ["ghost"]
    assert run.series["sku_id"].to_list() == ["x"]


def test_bad_input_names_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"units=-1\.0"):
        _run(_rules(), _demand([1.0, -1.0]))
    with pytest.raises(InvalidInput, match="demand_quantile"):
        _run(_rules(), _demand(1.0, days=7), forecast=lambda d, s: s.select("store_id", "sku_id"))
    with pytest.raises(InvalidInput, match="nothing to replay"):
        _run(_rules(skus=("other",)), _demand(1.0, days=7))
    assert np.isfinite(_run(_rules(), _demand(1.0, days=7)).totals()["fill_rate"])


def test_each_po_gets_the_lead_time_of_its_own_supplier() -> None:
    rules = Rules.from_frames(
        pl.DataFrame(
            {
                "supplier_id": ["A", "B", "C"],
                "lead_time_mean": [1.0, 5.0, 3.0],
                "order_days": ["Mon", "Mon", "Mon"],
            }
        ),
        pl.DataFrame(
            {"sku_id": ["x", "y", "z"], "supplier_id": ["A", "B", "C"], "unit_cost": [1.0] * 3}
        ),
    )
    demand = pl.concat(
        [_demand(2.0, days=14, skus=("x", "y", "z")).with_columns(store_id=pl.lit(s)) for s in "PQ"]
    )
    pos = _run(rules, demand).purchase_orders
    lead = pos.select(
        "supplier_id", (pl.col("delivery_date") - pl.col("order_date")).dt.total_days()
    )
    assert dict(lead.unique().iter_rows()) == {"A": 1, "B": 5, "C": 3}
    assert pos.height == 2 * 2 * 3  # two Mondays × two stores × three suppliers


def test_a_po_over_the_supplier_budget_is_cut_to_it() -> None:
    rules = Rules.from_frames(
        pl.DataFrame(
            {
                "supplier_id": ["A"],
                "lead_time_mean": [2.0],
                "order_days": ["Mon"],
                "max_order_value": [20.0],
            }
        ),
        pl.DataFrame({"sku_id": ["x", "y"], "supplier_id": ["A", "A"], "unit_cost": [2.0, 2.0]}),
    )
    run = _run(rules, _demand(2.0, days=14, skus=("x", "y")))  # wants 2 × 18 units = 72
    assert run.purchase_orders["value"].to_list() == [20.0, 20.0]


def test_the_same_seed_draws_the_same_lead_times_for_the_same_supplier_and_store() -> None:
    suppliers = pl.DataFrame(
        {
            "supplier_id": [f"V{k}" for k in range(6)],
            "lead_time_mean": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "lead_time_std": [1.0] * 6,
            "order_days": ["Mon,Thu"] * 6,
        }
    )
    skus = tuple(f"s{k}" for k in range(6))
    items = pl.DataFrame(
        {"sku_id": skus, "supplier_id": suppliers["supplier_id"], "unit_cost": [1.0] * 6}
    )
    demand = pl.concat(
        [_demand(2.0, days=28, skus=skus).with_columns(store_id=pl.lit(s)) for s in "PQR"]
    )
    rules = Rules.from_frames(suppliers, items)
    first, second = _run(rules, demand, seed=4), _run(rules, demand, seed=4)
    assert first.purchase_orders.equals(second.purchase_orders)
    # Changing one supplier's lead time leaves the other suppliers' deliveries as they were.
    slower = Rules.from_frames(
        suppliers.with_columns(
            pl.when(pl.col("supplier_id") == "V0")
            .then(9.0)
            .otherwise(pl.col("lead_time_mean"))
            .alias("lead_time_mean")
        ),
        items,
    )
    others = pl.col("supplier_id") != "V0"
    assert (
        _run(slower, demand, seed=4)
        .purchase_orders.filter(others)
        .equals(first.purchase_orders.filter(others))
    )


def test_weekly_and_monthly_periods_are_spread_over_their_days() -> None:
    from jobs.simulation import as_days, replay_days

    weekly = pl.DataFrame(
        {
            "store_id": ["S1", "S1"],
            "sku_id": ["A", "A"],
            "date": [date(2024, 1, 1), date(2024, 1, 8)],
            "units": [14, 7],
            "on_hand": [30.0, 20.0],
        }
    )
    days = as_days(weekly, "weekly")
    assert days.height == 14 and days["date"].max() == date(2024, 1, 14)
    assert days["units"].sum() == 21 and days["units"].head(7).to_list() == [2.0] * 7
    assert days["on_hand"].drop_nulls().to_list() == [30.0, 20.0]  # first day of each week
    feb = weekly.head(1).with_columns(pl.lit(date(2024, 2, 1)).alias("date"), units=pl.lit(29))
    monthly = as_days(feb, "monthly")
    assert monthly.height == 29 and monthly["units"].to_list() == [1.0] * 29  # leap February
    assert as_days(weekly, "daily") is weekly
    assert (replay_days(8, "weekly"), replay_days(3, "monthly")) == (56, 90)
    with pytest.raises(InvalidInput, match="freq 'hourly' unknown"):
        replay_days(3, "hourly")
