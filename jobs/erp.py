"""ERP wiring: the adapter chosen in settings, delivery passes and the delivery loop, the
inbound feeds (stock positions, master data, receipts, acknowledgements), lead times."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from features.feeds import FEEDS, reject_rows, validate_feed
from jobs.runtime import Runtime
from kernel.errors import InvalidInput, NotReady
from kernel.rejects import reject_ids
from replen.settings import Settings
from replenishment.erp.adapters import Adapter, FileAdapter, WebhookAdapter
from replenishment.erp.delivery import DeliveryReport, deliver_pass, run_loop
from replenishment.erp.inbound import InboundResult, apply_acks, apply_receipts, lead_times
from replenishment.erp.odoo import OdooAdapter
from replenishment.erp.outbox import RetryPolicy
from replenishment.positions import LoadReport, new_batch_id

__all__ = [
    "adapter_from",
    "deliver_loop",
    "deliver_once",
    "ingest_feed",
    "lead_time_report",
    "policy_from",
    "update_lead_times",
]


def adapter_from(settings: Settings) -> Adapter:
    """The adapter ``REPLEN_ERP_ADAPTER`` names, with its settings checked."""
    s = settings
    if s.erp_adapter is None:
        raise NotReady(
            "no ERP adapter configured",
            hint="set REPLEN_ERP_ADAPTER=webhook|odoo|file (with REPLEN_ERP_URL or "
            "REPLEN_ERP_DIR); see the README's Configuration",
        )

    def need(value: object, name: str) -> Any:
        if not value:
            raise NotReady(
                f"the {s.erp_adapter} ERP adapter needs {name}",
                hint=f"set {name} (environment or replen.toml)",
            )
        return value.get_secret_value() if hasattr(value, "get_secret_value") else value

    pool = s.erp_concurrency
    if s.erp_adapter == "webhook":
        return WebhookAdapter(
            need(s.erp_url, "REPLEN_ERP_URL"),
            need(s.erp_hmac_key, "REPLEN_ERP_HMAC_KEY"),
            timeout=s.erp_timeout_seconds,
            max_connections=pool,
        )
    if s.erp_adapter == "odoo":
        return OdooAdapter(
            need(s.erp_url, "REPLEN_ERP_URL"),
            need(s.erp_odoo_db, "REPLEN_ERP_ODOO_DB"),
            need(s.erp_odoo_user, "REPLEN_ERP_ODOO_USER"),
            need(s.erp_odoo_api_key, "REPLEN_ERP_ODOO_API_KEY"),
            timeout=s.erp_timeout_seconds,
            max_connections=pool,
        )
    return FileAdapter(need(s.erp_dir, "REPLEN_ERP_DIR"))


def policy_from(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base_seconds=settings.erp_backoff_base_seconds,
        cap_seconds=settings.erp_backoff_cap_seconds,
        max_attempts=settings.erp_max_attempts,
        lease_seconds=settings.erp_lease_seconds,
    )


def deliver_once(
    rt: Runtime, on_batch: Callable[[DeliveryReport], None] | None = None
) -> DeliveryReport:
    """One delivery pass over everything due now (the scheduled ``deliver`` job)."""
    counts = rt.outbox.counts()
    if not counts.get("pending") and rt.settings.erp_adapter is None:
        return DeliveryReport(passes=1)  # nothing to send, nowhere to send it: fine
    adapter = adapter_from(rt.settings)
    try:
        report = deliver_pass(
            rt.outbox,
            adapter,
            policy_from(rt.settings),
            batch_size=rt.settings.erp_batch_size,
            concurrency=rt.settings.erp_concurrency,
            on_batch=on_batch,
        )
    finally:
        adapter.close()
    _alert_dead(rt, report)
    return report


def deliver_loop(
    rt: Runtime,
    stop: threading.Event,
    on_pass: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Deliver until ``stop`` is set (``replen erp deliver --loop``, the delivery worker)."""
    adapter = adapter_from(rt.settings)

    def each(report: DeliveryReport) -> None:
        _alert_dead(rt, report)
        if on_pass is not None:
            on_pass(report)

    try:
        return run_loop(
            rt.outbox,
            adapter,
            policy_from(rt.settings),
            stop=stop,
            poll_seconds=rt.settings.erp_poll_seconds,
            batch_size=rt.settings.erp_batch_size,
            concurrency=rt.settings.erp_concurrency,
            on_pass=each,
        )
    finally:
        adapter.close()


def _alert_dead(rt: Runtime, report: DeliveryReport) -> None:
    if report.dead:
        from jobs.ledger import AlertStore

        AlertStore(rt.settings.db_url).raise_alert(
            "erp",
            "deliver",
            f"{report.dead} PO version(s) could not be delivered to the ERP; see "
            "`replen erp dead-letters`, fix the cause, then `replen erp retry PO_ID`",
        )


def ingest_feed(
    rt: Runtime,
    kind: str,
    raw: pl.DataFrame,
    *,
    source: str,
    first_line: int = 1,
    actor: str = "erp",
    allowed_stores: set[str] | None = None,
    unparsed: pl.DataFrame | None = None,
) -> LoadReport:
    """Validate a feed's rows and store the valid ones; every row is counted:
    ``received = accepted + updated + duplicates + rejected``. Rejected rows are kept with
    their rule (``replen quarantine list --feed KIND``): ``unparsed`` are lines of the input
    that were not JSON objects (``REJECT_COLUMNS``), and with ``allowed_stores`` a row for a
    store outside them is rejected (``store_id.scope``). A rejected row kept from an earlier
    delivery (the same row sent again: :mod:`kernel.rejects`) is counted as rejected but
    not kept twice (``already_quarantined``)."""
    if kind not in FEEDS:
        raise InvalidInput(f"unknown feed {kind!r}", field="feed", value=kind, rule="feed.known")
    spec = FEEDS[kind]
    s = rt.settings
    result = validate_feed(
        raw,
        spec,
        first_line=first_line,
        source=source,
        now=datetime.now(UTC),
        max_future_skew=timedelta(seconds=s.max_future_skew_seconds),
        allowed_stores=allowed_stores,
    )
    if unparsed is not None and unparsed.height:
        result = dataclasses.replace(
            result,
            rejected=pl.concat([unparsed, result.rejected], how="vertical_relaxed").sort("line"),
            received=result.received + unparsed.height,
        )
    report = LoadReport(
        feed=kind,
        batch_id=new_batch_id(),
        received=result.received,
        duplicates=result.duplicates,
        rejected=result.rejected.height,
    )
    rejected = result.rejected.with_columns(reject_ids(result.rejected, "key"))
    if kind == "stock":
        rt.positions.save_positions(result.accepted, rejected, report, source)
    elif kind in ("items", "stores"):
        rt.positions.save_master(kind, result.accepted, rejected, report, source)
    else:
        apply = apply_receipts if kind == "receipts" else apply_acks
        inbound: InboundResult = apply(rt.settings.db_url, result.accepted, actor=actor)
        late = reject_rows(result.accepted, inbound.rejects, spec)
        rejected = pl.concat([result.rejected, late], how="vertical_relaxed")
        rejected = rejected.with_columns(reject_ids(rejected, "key"))
        report.already_quarantined = rt.positions.save_rejects(
            kind, report.batch_id, source, rejected
        )
        report.accepted = inbound.accepted
        report.duplicates += inbound.duplicates
        report.rejected = rejected.height
        if inbound.purchase_orders:
            report.notes.append(
                f"{len(inbound.purchase_orders)} PO(s) touched, "
                f"{inbound.received_in_full} received in full, "
                f"{inbound.acknowledged} acknowledged"
            )
        report.check()
    if rejected.height:
        report.rejected_by_rule = dict(rejected.group_by("rule").len().sort("rule").iter_rows())
    report.rejected_lines = rejected
    return report


def lead_time_report(rt: Runtime) -> pl.DataFrame:
    """Per supplier: configured lead time (rules) against the one measured from receipts."""
    rules = rt.rules()
    measured = lead_times(rt.settings.db_url)
    return (
        rules.suppliers.select(
            "supplier_id",
            pl.col("lead_time_mean").alias("configured_mean"),
            pl.col("lead_time_std").alias("configured_std"),
        )
        .join(measured, on="supplier_id", how="left")
        .with_columns(pl.col("receipts").fill_null(0))
        .sort("supplier_id")
    )


def update_lead_times(rt: Runtime, min_receipts: int, actor: str) -> dict[str, dict[str, float]]:
    """Write measured lead times into the stored rules for suppliers with at least
    ``min_receipts`` received POs; returns what changed (supplier → old and new)."""
    report = lead_time_report(rt).filter(pl.col("receipts") >= min_receipts)
    changes = {
        r["supplier_id"]: {
            "mean": round(float(r["measured_mean"]), 3),
            "std": round(float(r["measured_std"]), 3),
            "was_mean": float(r["configured_mean"]),
            "was_std": float(r["configured_std"]),
        }
        for r in report.iter_rows(named=True)
    }
    if changes:
        rt.rules_store.update_lead_times(
            {k: (v["mean"], v["std"]) for k, v in changes.items()},
            source=f"measured lead times (>= {min_receipts} receipts) by {actor}",
        )
    return changes
