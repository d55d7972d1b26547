"""A PO line's quantity in words and in steps: one source for the CLI, the page and the API.

A stored line keeps every step of its arithmetic (see :mod:`replenishment.policy`); this
module turns that record into the steps a planner reads, each with the change it made and
the running total, so that the steps always add up to the quantity on the line:

    quantity = raw_need + packs + MOQ + capacity + shelf life + MOQ cancel
               + supplier minimum fill + budget cut + planner's change
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from replenishment.policy import EXPLANATION_COLUMNS

__all__ = [
    "ADJUSTMENTS",
    "Step",
    "explain",
    "explanation_record",
    "explanation_steps",
    "steps_total",
]

# Each adjustment the quantity may go through, in the order they are applied, with the
# field holding it and the words that say why.
ADJUSTMENTS: tuple[tuple[str, str], ...] = (
    ("pack_adjustment", "packs"),
    ("moq_adjustment", "moq"),
    ("capacity_adjustment", "capacity"),
    ("shelf_life_adjustment", "shelf_life"),
    ("moq_cancel_adjustment", "moq_cancel"),
    ("min_order_fill", "supplier_minimum"),
    ("budget_adjustment", "budget"),
)

_RECORD_EXTRA = (
    "protection_days",
    "service_level",
    "demand_sd",
    "min_order_fill",
    "budget_adjustment",
    # Where the position came from (the ERP's on order, in transit, Replen's own open POs).
    "erp_on_order",
    "in_transit",
    "replen_on_order",
    "position_as_of",
)


@dataclass(frozen=True)
class Step:
    """One step from the need to the quantity: ``change`` units, ``total`` after it."""

    kind: str
    label: str
    change: float
    total: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def explanation_record(line: Mapping[str, Any]) -> dict[str, Any]:
    """The explanation fields of a planned line as a JSON-safe dict (stored with the line)."""
    out: dict[str, Any] = {}
    for key in (*EXPLANATION_COLUMNS, *_RECORD_EXTRA):
        if key not in line:
            continue
        value = line[key]
        out[key] = round(float(value), 6) if isinstance(value, float) else value
    return json.loads(json.dumps(out, default=str))


def _on_order_parts(line: Mapping[str, Any]) -> str:
    """What ``on order`` is made of, when the line knows (ERP-fed stock positions): the
    ERP's open orders, units in transit, Replen's own POs the position does not count yet."""
    parts = [
        (_f(line, "erp_on_order"), "ERP"),
        (_f(line, "in_transit"), "in transit"),
        (_f(line, "replen_on_order"), "ordered here"),
    ]
    shown = [f"{_n(v)} {label}" for v, label in parts if v]
    if len(shown) > 1 or (shown and not _f(line, "erp_on_order")):
        return f": {', '.join(shown)}"
    return ""


def _f(line: Mapping[str, Any], key: str) -> float:
    value = line.get(key)
    if value is None:
        return 0.0
    number = float(value)
    return 0.0 if math.isnan(number) else number


def _n(x: float) -> str:
    """A number as a planner reads it: whole units without decimals, else one decimal."""
    return f"{x:,.0f}" if abs(x - round(x)) < 0.05 else f"{x:,.1f}"


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "−") + _n(abs(x))


def _why(kind: str, line: Mapping[str, Any]) -> tuple[str, str]:
    pack = int(_f(line, "pack_size")) or 1
    moq = int(_f(line, "moq_units"))
    if kind == "packs":
        return "packs", f"rounded to packs of {pack}"
    if kind == "moq":
        return "MOQ", f"raised to the minimum order of {moq} units"
    if kind == "capacity":
        return "capacity", "cut to the room on the shelf"
    if kind == "shelf_life":
        return "shelf life", "cut to what sells before it expires"
    if kind == "moq_cancel":
        return "MOQ cancel", f"cancelled: a cap left it under the minimum order of {moq}"
    if kind == "supplier_minimum":
        return "supplier minimum", "packs added to reach the supplier's minimum order value"
    if kind == "budget":
        return "budget", "cut to fit the supplier's budget per PO"
    raise ValueError(f"unknown adjustment kind {kind!r}")


def explanation_steps(
    line: Mapping[str, Any], quantity: float | None = None, suggested: float | None = None
) -> list[Step]:
    """The steps from the raw need to the line's quantity; their changes add up to it.

    ``line`` is a stored explanation (or a planned row); ``quantity`` the line's quantity
    now (a planner may have changed it), ``suggested`` the quantity the plan suggested
    (default: the explanation's own ``quantity``).
    """
    policy = str(line.get("policy") or "rs")
    need = _f(line, "raw_need")
    target, position = _f(line, "target_level"), _f(line, "position")
    if policy in ("sS", "minmax") and need == 0 and line.get("reorder_point") is not None:
        need_text = (
            f"position {_n(position)} is above the reorder point "
            f"{_n(_f(line, 'reorder_point'))}: nothing to order"
        )
    elif policy == "sQ":
        need_text = f"fixed order quantity {_n(need)} (position {_n(position)})"
    else:
        need_text = (
            f"forecast over {_f(line, 'protection_days'):.1f} days "
            f"{_n(_f(line, 'demand_mean'))} + safety stock {_n(_f(line, 'safety_stock'))} "
            f"= target {_n(target)}; − position {_n(position)} (on hand "
            f"{_n(_f(line, 'on_hand'))} + on order {_n(_f(line, 'on_order'))}"
            + _on_order_parts(line)
            + (f" − backorders {_n(_f(line, 'backorders'))}" if _f(line, "backorders") else "")
            + f") = need {_n(need)}"
        )
    steps = [Step("need", "need", need, need, need_text)]
    total = need
    for field, kind in ADJUSTMENTS:
        change = _f(line, field)
        if abs(change) < 1e-9:
            continue
        total += change
        label, why = _why(kind, line)
        steps.append(Step(kind, label, change, total, f"{why}: {_signed(change)} → {_n(total)}"))
    planned = _f(line, "quantity") if suggested is None else float(suggested)
    # The stored arithmetic is exact to 1e-6; the final rounding to whole units is shown.
    if abs(planned - total) > 1e-6:
        change = planned - total
        total = planned
        steps.append(Step("rounding", "rounding", change, total, f"whole units → {_n(total)}"))
    if quantity is not None and abs(float(quantity) - planned) > 1e-9:
        change = float(quantity) - planned
        total = float(quantity)
        steps.append(
            Step(
                "planner",
                "planner",
                change,
                total,
                f"changed by a planner: {_signed(change)} → {_n(total)}",
            )
        )
    return steps


def steps_total(steps: list[Step]) -> float:
    """The sum of every step's change: equals the line's quantity."""
    return sum(s.change for s in steps)


def explain(
    line: Mapping[str, Any], quantity: float | None = None, suggested: float | None = None
) -> str:
    """One sentence: ``order Q = <need>; <each adjustment> …`` (see :func:`explanation_steps`)."""
    steps = explanation_steps(line, quantity, suggested)
    final = steps[-1].total
    return f"order {_n(final)} = " + "; ".join(s.text for s in steps)
