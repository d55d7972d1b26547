import math

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from replenishment.policy import order_up_to


def _row(**over: float) -> pl.DataFrame:
    base = {
        "demand_mean": 20.0,
        "demand_quantile": 26.0,
        "on_hand": 5.0,
        "on_order": 3.0,
        "pack_size": 6,
        "moq_units": 0,
    }
    return pl.DataFrame([{**base, **over}])


def test_orders_up_to_the_target_in_whole_packs() -> None:
    r = order_up_to(_row()).row(0, named=True)
    assert r["safety_stock"] == 6.0 and r["target_level"] == 26.0 and r["position"] == 8.0
    assert r["raw_need"] == 18.0 and r["after_pack"] == 18.0 and r["quantity"] == 18


def test_partial_pack_rounds_up() -> None:
    r = order_up_to(_row(on_hand=6.0)).row(0, named=True)
    assert r["raw_need"] == 17.0 and r["quantity"] == 18 and r["pack_adjustment"] == 1.0


def test_small_order_is_raised_to_the_moq_in_packs() -> None:
    r = order_up_to(_row(on_hand=15.0, moq_units=20)).row(0, named=True)
    assert r["after_pack"] == 12.0 and r["quantity"] == 24 and r["moq_adjustment"] == 12.0


def test_enough_stock_orders_nothing_even_with_a_moq() -> None:
    r = order_up_to(_row(on_hand=40.0, moq_units=20)).row(0, named=True)
    assert r["raw_need"] == 0.0 and r["quantity"] == 0


@settings(max_examples=300, deadline=None)
@given(
    mean=st.floats(0, 1e4),
    extra=st.floats(0, 1e3),
    on_hand=st.floats(-50, 1e4),
    on_order=st.floats(0, 1e4),
    pack=st.integers(1, 48),
    moq=st.integers(0, 500),
)
def test_quantity_is_a_nonnegative_pack_multiple_that_reproduces_its_explanation(
    mean: float, extra: float, on_hand: float, on_order: float, pack: int, moq: int
) -> None:
    r = order_up_to(
        _row(
            demand_mean=mean,
            demand_quantile=mean + extra,
            on_hand=on_hand,
            on_order=on_order,
            pack_size=pack,
            moq_units=moq,
        )
    ).row(0, named=True)
    q = r["quantity"]
    assert q >= 0 and q % pack == 0
    if q > 0:
        assert q >= moq
    need = max(0.0, r["target_level"] - (on_hand + on_order))
    assert math.isclose(r["raw_need"], need, rel_tol=1e-9, abs_tol=1e-9)
    packs = math.ceil(need / pack - 1e-9) if need > 0 else 0
    expected = packs * pack
    if 0 < expected < moq:
        expected = math.ceil(moq / pack) * pack
    assert q == expected
    assert math.isclose(
        r["raw_need"] + r["pack_adjustment"] + r["moq_adjustment"], q, rel_tol=1e-9, abs_tol=1e-6
    )
