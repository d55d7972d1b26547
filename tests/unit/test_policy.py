import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replenishment.policy import order_quantities, order_up_to

ADJUSTMENTS = (
    "pack_adjustment",
    "moq_adjustment",
    "capacity_adjustment",
    "shelf_life_adjustment",
    "moq_cancel_adjustment",
)


def _row(**over: object) -> pl.DataFrame:
    base = {
        "demand_mean": 20.0,
        "demand_quantile": 26.0,
        "on_hand": 5.0,
        "on_order": 3.0,
        "pack_size": 6,
        "moq_units": 0,
    }
    return pl.DataFrame([{**base, **over}])


def _one(**over: object) -> dict:
    return order_quantities(_row(**over)).row(0, named=True)


def test_orders_up_to_the_target_in_whole_packs() -> None:
    r = order_up_to(_row()).row(0, named=True)
    assert r["safety_stock"] == 6.0 and r["target_level"] == 26.0 and r["position"] == 8.0
    assert r["raw_need"] == 18.0 and r["after_pack"] == 18.0 and r["quantity"] == 18


def test_partial_pack_rounds_up_unless_below_the_threshold() -> None:
    assert _one(on_hand=6.0)["quantity"] == 18  # need 17: 2.83 packs → 3
    assert _one(on_hand=10.0, round_up_fraction=0.5)["quantity"] == 12  # 2.17 packs → 2
    assert _one(on_hand=8.0, round_up_fraction=0.5)["quantity"] == 18  # 2.67 packs → 3


def test_small_order_is_raised_to_the_moq_in_packs() -> None:
    r = _one(on_hand=15.0, moq_units=20)
    assert r["after_pack"] == 12.0 and r["quantity"] == 24 and r["moq_adjustment"] == 12.0


def test_enough_stock_orders_nothing_even_with_a_moq() -> None:
    r = _one(on_hand=40.0, moq_units=20)
    assert r["raw_need"] == 0.0 and r["quantity"] == 0


def test_backorders_lower_the_position() -> None:
    assert _one(backorders=6.0)["position"] == 2.0


def test_shelf_capacity_caps_the_order_in_whole_packs() -> None:
    r = _one(max_capacity=20.0)
    assert r["quantity"] == 12 and r["capacity_adjustment"] == -6.0


def test_perishables_never_exceed_what_sells_before_expiry() -> None:
    r = _one(shelf_life_days=4, daily_mean=5.0)  # sells 20 in 4 days; position 8 → room 12
    assert r["quantity"] == 12 and r["shelf_life_adjustment"] == -6.0


def test_a_cap_below_the_moq_cancels_the_line() -> None:
    r = _one(max_capacity=20.0, moq_units=18)
    assert r["quantity"] == 0 and r["moq_cancel_adjustment"] == -12.0


def test_min_presentation_raises_the_target() -> None:
    r = _one(min_presentation=40.0)
    assert r["target_level"] == 40.0 and r["quantity"] == 36


def test_reorder_point_policies_order_only_at_the_trigger() -> None:
    assert _one(policy="sS", reorder_point=5.0)["quantity"] == 0
    assert _one(policy="sS", reorder_point=10.0)["quantity"] == 18
    assert _one(policy="sQ", reorder_point=10.0, order_quantity=30.0)["quantity"] == 30
    with pytest.raises(ValueError, match="policy"):
        _one(policy="magic")


@settings(max_examples=300, deadline=None)
@given(
    mean=st.floats(0, 1e4),
    extra=st.floats(0, 1e3),
    on_hand=st.floats(-50, 1e4),
    on_order=st.floats(0, 1e4),
    pack=st.integers(1, 48),
    moq=st.integers(0, 500),
    capacity=st.one_of(st.none(), st.floats(0, 2e4)),
    frac=st.floats(0, 1),
)
def test_quantity_is_a_nonnegative_pack_multiple_that_reproduces_its_explanation(
    mean: float,
    extra: float,
    on_hand: float,
    on_order: float,
    pack: int,
    moq: int,
    capacity: float | None,
    frac: float,
) -> None:
    r = _one(
        demand_mean=mean,
        demand_quantile=mean + extra,
        on_hand=on_hand,
        on_order=on_order,
        pack_size=pack,
        moq_units=moq,
        max_capacity=capacity,
        round_up_fraction=frac,
    )
    q = r["quantity"]
    assert q >= 0 and q % pack == 0
    if q > 0:
        assert q >= moq
    if capacity is not None:
        assert q == 0 or r["position"] + q <= capacity + 1e-6
    need = max(0.0, r["target_level"] - (on_hand + on_order))
    assert math.isclose(r["raw_need"], need, rel_tol=1e-9, abs_tol=1e-9)
    total = r["raw_need"] + sum(r[a] for a in ADJUSTMENTS)
    assert math.isclose(total, q, rel_tol=1e-9, abs_tol=1e-6)
    if capacity is None and frac == 0:
        packs = math.ceil(need / pack - 1e-9) if need > 0 else 0
        expected = packs * pack
        if 0 < expected < moq:
            expected = math.ceil(moq / pack) * pack
        assert q == expected
