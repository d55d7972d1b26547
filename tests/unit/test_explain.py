"""A line's explanation in steps and words: every adjustment shown, steps add up to it."""

from __future__ import annotations

import math

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from replenishment.explain import explain, explanation_record, explanation_steps, steps_total
from replenishment.policy import order_quantities


def _line(**kw: object) -> dict:
    row = {
        "demand_mean": 10.0,
        "demand_quantile": 14.0,
        "on_hand": 2.0,
        "on_order": 0.0,
        "pack_size": 24,
        "moq_units": 48,
        "daily_mean": 1.0,
        "shelf_life_days": 30.0,
        "protection_days": 9.0,
    }
    row.update(kw)
    out = order_quantities(pl.DataFrame([row])).row(0, named=True)
    return explanation_record({**out, "min_order_fill": 0, "budget_adjustment": 0})


def test_a_shelf_life_cut_is_shown_next_to_the_quantity_it_makes() -> None:
    # The case: need 30 → packs of 24 → 48 (MOQ 24 changes nothing) → only 28
    # sell before expiry → 24. The old sentence stopped at "MOQ 24 → 48".
    line = _line(demand_quantile=32.0, moq_units=24)
    assert line["quantity"] == 24
    sentence = explain(line)
    assert sentence.startswith("order 24 = ")
    assert "need 30" in sentence
    assert "rounded to packs of 24: +18 → 48" in sentence
    assert "cut to what sells before it expires: −24 → 24" in sentence
    assert [s.kind for s in explanation_steps(line)] == ["need", "packs", "shelf_life"]


def test_a_cap_under_the_moq_cancels_the_line_and_says_so() -> None:
    line = _line()  # need 12 → packs 24 → MOQ 48 → shelf life 24 < MOQ → cancelled
    assert line["quantity"] == 0
    steps = explanation_steps(line)
    assert [s.kind for s in steps] == ["need", "packs", "moq", "shelf_life", "moq_cancel"]
    assert steps_total(steps) == 0
    assert "cancelled: a cap left it under the minimum order of 48: −24 → 0" in explain(line)


def test_a_planner_change_is_a_step_and_the_total_is_the_new_quantity() -> None:
    line = _line()
    steps = explanation_steps(line, quantity=30, suggested=24)
    assert steps[-1].kind == "planner" and steps[-1].change == 6
    assert steps_total(steps) == 30
    assert explain(line, 30, 24).startswith("order 30 = ")
    assert "changed by a planner: +6 → 30" in explain(line, 30, 24)


def test_supplier_minimum_fill_and_budget_cut_are_steps() -> None:
    line = _line(shelf_life_days=None)
    line = {**line, "min_order_fill": 24, "budget_adjustment": -48, "quantity": 24}
    kinds = [s.kind for s in explanation_steps(line)]
    assert kinds == ["need", "packs", "moq", "supplier_minimum", "budget"]
    assert steps_total(explanation_steps(line)) == 24
    assert "packs added to reach the supplier's minimum order value: +24 → 72" in explain(line)


def test_reorder_point_policy_says_why_nothing_is_ordered() -> None:
    line = _line(policy="sS", reorder_point=1.0, moq_units=0, shelf_life_days=None)
    assert line["quantity"] == 0
    assert "above the reorder point 1: nothing to order" in explain(line)


@settings(max_examples=200, deadline=None)
@given(
    mean=st.floats(0, 1e4),
    extra=st.floats(0, 1e3),
    on_hand=st.floats(-50, 1e4),
    pack=st.integers(1, 48),
    moq=st.integers(0, 500),
    capacity=st.one_of(st.none(), st.floats(0, 2e4)),
    life=st.one_of(st.none(), st.floats(1, 400)),
    fill=st.integers(0, 10),
    edit=st.one_of(st.none(), st.integers(0, 5000)),
)
def test_steps_always_add_up_to_the_quantity(
    mean: float,
    extra: float,
    on_hand: float,
    pack: int,
    moq: int,
    capacity: float | None,
    life: float | None,
    fill: int,
    edit: int | None,
) -> None:
    line = _line(
        demand_mean=mean,
        demand_quantile=mean + extra,
        on_hand=on_hand,
        pack_size=pack,
        moq_units=moq,
        max_capacity=capacity,
        shelf_life_days=life,
        daily_mean=mean / 9,
    )
    if line["quantity"] > 0 and fill:
        line = {**line, "min_order_fill": fill * pack, "quantity": line["quantity"] + fill * pack}
    steps = explanation_steps(line, quantity=edit, suggested=line["quantity"])
    want = line["quantity"] if edit is None else edit
    assert math.isclose(steps_total(steps), want, abs_tol=1e-4)
    assert math.isclose(steps[-1].total, want, abs_tol=1e-4)
    # Every non-zero adjustment of the record is a step of its own.
    adjustments = [k for k in line if k.endswith("_adjustment") or k == "min_order_fill"]
    shown = {s.kind for s in steps}
    assert sum(1 for k in adjustments if abs(line[k]) > 1e-9) <= len(shown - {"need", "planner"})
