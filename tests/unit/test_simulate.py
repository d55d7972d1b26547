import numpy as np
import pytest

from replenishment.simulate import min_max_rule, order_up_to_rule, simulate


def test_constant_demand_with_enough_stock_is_fully_served() -> None:
    demand = np.full((1, 28), 2.0)
    res = simulate(
        demand,
        lead_time=np.array([2]),
        review_period=7,
        rule=order_up_to_rule(lambda t: np.array([40.0])),
        initial_on_hand=np.array([20.0]),
    )
    assert res.fill_rate == 1.0 and res.stockout_days == 0 and res.orders == 4


def test_lost_sales_and_lead_time_arithmetic() -> None:
    # 5 on hand, 3 a day, nothing ordered: day 0 sells 3, day 1 sells 2 (1 lost), then 0.
    demand = np.full((1, 4), 3.0)
    res = simulate(
        demand,
        lead_time=np.array([1]),
        review_period=100,
        rule=lambda t, p: np.zeros(1),
        initial_on_hand=np.array([5.0]),
    )
    assert res.lost_units == 7.0 and res.fill_rate == pytest.approx(5 / 12)
    assert res.stockout_days == 3


def test_orders_arrive_after_the_lead_time() -> None:
    demand = np.array([[0, 0, 0, 4.0, 0]])
    res = simulate(
        demand,
        lead_time=np.array([3]),
        review_period=100,
        rule=lambda t, p: np.array([4.0]),
        initial_on_hand=np.array([0.0]),
    )
    assert res.fill_rate == 1.0  # ordered day 0, arrived day 3, sold day 3


def test_min_max_orders_only_below_min_and_in_packs() -> None:
    demand = np.full((1, 10), 1.0)
    res = simulate(
        demand,
        lead_time=np.array([0]),
        review_period=1,
        rule=min_max_rule(np.array([2.0]), np.array([5.0])),
        initial_on_hand=np.array([5.0]),
        pack_size=np.array([2]),
    )
    assert res.fill_rate == 1.0 and res.orders == 2  # at 2 → +4 (3 rounded up to packs of 2)


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="lead_time"):
        simulate(
            np.ones((2, 3)),
            lead_time=np.array([1]),
            review_period=1,
            rule=lambda t, p: p,
            initial_on_hand=np.zeros(2),
        )
    with pytest.raises(ValueError, match="review_period"):
        simulate(
            np.ones((1, 3)),
            lead_time=np.array([1]),
            review_period=0,
            rule=lambda t, p: p,
            initial_on_hand=np.zeros(1),
        )
