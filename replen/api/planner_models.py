"""Request and response schemas of the planner API (what OpenAPI documents)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Reason = Field(None, max_length=500, description="Why (kept in the audit trail).")


class PoHead(BaseModel):
    """The header fields of a purchase order, in the queue and in its detail."""

    po_id: int
    plan_date: date
    supplier_id: str
    store_id: str
    store_name: str | None = Field(None, description="From the store names the ERP sent.")
    order_date: date
    expected_delivery: date
    status: str
    stale: bool
    snoozed_until: date | None
    currency: str
    value: float
    model_version: str


class QueueItem(PoHead):
    lines: int
    units: int
    edited_lines: int
    exceptions: list[str]
    urgency: Literal["critical", "watch", "ok"]
    stockout_lines: int = Field(description="Lines projected to run out before the delivery.")
    first_stockout: date | None
    min_days_of_cover: float | None
    value_at_risk: float = Field(description="Expected units short before delivery × cost.")
    overstock_lines: int


class QueuePage(BaseModel):
    items: list[QueueItem]
    total: int
    page: int
    page_size: int
    counts: dict[str, int] = Field(description="POs matching the filters, per urgency level.")
    facets: dict[str, list[str]] = Field(
        description="Suppliers, stores and plan dates of the POs in this status and scope."
    )


class Step(BaseModel):
    kind: str
    label: str
    change: float
    total: float
    text: str


class LineUrgency(BaseModel):
    daily_rate: float | None  # None: a line stored without its explanation
    days_to_delivery: int
    days_of_cover: float | None
    stockout_date: date | None
    stockout_before_delivery: bool
    short_units: float
    value_at_risk: float
    cover_after_order: float | None
    overstock: bool


class OrderLine(BaseModel):
    sku_id: str
    name: str | None
    quantity: int
    suggested_quantity: int
    previous_quantity: int | None = Field(description="Same store×SKU in the plan before.")
    unit_cost: float
    value: float
    explanation: dict[str, Any]
    steps: list[Step] = Field(description="From the need to the quantity; changes add up to it.")
    steps_total: float
    sentence: str
    urgency: LineUrgency
    exceptions: list[str]


class AuditRecord(BaseModel):
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


class OrderDetail(PoHead):
    previous_plan_date: date | None
    urgency: str
    value_at_risk: float
    first_stockout: date | None
    min_days_of_cover: float | None
    lines: list[OrderLine]
    audit: list[AuditRecord]


class Decision(BaseModel):
    reason: str | None = Reason


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="Why (required).")


class LineEdit(BaseModel):
    quantity: int = Field(ge=0, le=10_000_000)
    reason: str = Field(min_length=1, max_length=500, description="Why (required, audited).")


class Snooze(BaseModel):
    until: date | None = Field(description="Put aside until this day; null wakes it now.")
    reason: str | None = Reason


class Transition(BaseModel):
    po_id: int
    before: str = Field(alias="from")
    to: str


class LineChange(BaseModel):
    po_id: int
    sku_id: str
    before: int = Field(alias="from")
    to: int


class SnoozeResult(BaseModel):
    po_id: int
    snoozed_until: date | None


class Bulk(BaseModel):
    po_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(min_length=1, max_length=500)
    reason: str | None = Reason
    until: date | None = None


class BulkOutcome(BaseModel):
    po_id: int
    ok: bool
    status: str | None = None
    error: dict[str, Any] | None = Field(None, description="problem+json of a failed action")


class BulkResult(BaseModel):
    succeeded: int
    failed: int
    results: list[BulkOutcome]


class HeldLine(BaseModel):
    sku_id: str
    name: str | None
    quantity: int
    unit_cost: float
    value: float
    sentence: str
    explanation: dict[str, Any]


class Release(BaseModel):
    short_value: float
    fill: list[dict[str, Any]]
    value_after_fill: float
    text: str


class HeldOrder(BaseModel):
    held_id: int
    plan_date: date
    supplier_id: str
    store_id: str
    order_date: date
    expected_delivery: date
    currency: str
    value: float
    min_order_value: float
    lines: list[HeldLine]
    release: Release


class ItemView(BaseModel):
    store_id: str
    sku_id: str
    name: str | None
    stock_position: dict[str, Any] | None = Field(
        None, description="The newest stock position sent (as_of, on_hand, on_order, …)."
    )
    demand_class: str
    adi: float | None
    cv2: float | None
    history: list[dict[str, Any]]
    stockout_days: float
    plan_date: date | None
    model: str | None
    model_version: str | None
    band: dict[str, str] | None
    forecast: list[dict[str, Any]]
    line: dict[str, Any] | None
    projection: list[dict[str, Any]]


class ExceptionItem(BaseModel):
    key: str
    type: str
    subject: str
    day: date
    message: str
    po_id: int | None
    store_id: str | None
    sku_id: str | None
    supplier_id: str | None
    value: float | None
    state: Literal["open", "confirmed", "snoozed"]
    confirmed_by: str | None
    snoozed_until: date | None
    snoozed_by: str | None


class ExceptionMarks(BaseModel):
    keys: list[Annotated[str, Field(max_length=300)]] = Field(min_length=1, max_length=500)
    until: date | None = Field(None, description="Snooze: hide until this day (inclusive).")
    note: str | None = Field(None, max_length=500)


class MarkResult(BaseModel):
    marked: int
    errors: list[dict[str, Any]]


class JobRunRecord(BaseModel):
    job: str
    slot: str
    status: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    summary: dict[str, Any] | None


class DataHealth(BaseModel):
    checked_at: datetime
    pos_stale_after_hours: float
    stores: list[dict[str, Any]]
    problems: dict[str, int]
    stock_positions: int
    rules_loaded: bool
    latest_plan_date: date | None
    quarantined_lines: int


class ValueAddedGroup(BaseModel):
    planner: str
    store_id: str
    model_version: str
    lines: int
    sold: float
    units_changed: int
    wape_suggestion: float
    wape_planner: float
    lines_improved: int
    value_added: float


class ValueAdded(BaseModel):
    as_of: date | None
    changed_lines: int
    scored_lines: int
    groups: list[ValueAddedGroup]


class WhatIfRow(BaseModel):
    """One supplier's (or ``all``) replay figures; further measures (demand, lost units,
    waste value …) come along as they are."""

    model_config = ConfigDict(extra="allow")

    supplier_id: str
    fill_rate: float | None
    avg_on_hand_value: float
    orders: int
    units_ordered: float
    stockout_days: float
    held: int
    waste_units: float


class WhatIfRun(BaseModel):
    total: WhatIfRow
    suppliers: list[WhatIfRow]


class WhatIf(BaseModel):
    saved_at: str
    start: date
    end: date
    days: int
    series: int
    unplanned_series: int
    initial_stock: str
    current: WhatIfRun
    candidate: WhatIfRun | None = None
    change: dict[str, float | None] | None = None
