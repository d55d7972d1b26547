"""The demo: a synthetic chain through every stage, on embedded defaults, and the loop with a
fake ERP: plan → approve → deliver → acknowledge → receive → the next plan."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from pydantic import SecretStr

from jobs.erp import deliver_once, ingest_feed
from jobs.model_inputs import ingest_reference
from jobs.refresh import ingest_inventory, ingest_pos, refresh_features
from jobs.replenish import PlanSummary, forecast_and_plan
from jobs.retrain import retrain
from jobs.runtime import Runtime
from kernel.errors import Conflict
from kernel.files import write_bytes
from replen.fake_erp import FakeErp
from replen.settings import Settings
from replen.synthetic import REFERENCE_FILES, SyntheticRetail, generate
from replenishment.erp.inbound import lead_times
from replenishment.rules import Rules

__all__ = ["STAGES", "DemoMismatch", "DemoSummary", "run_demo"]

STAGES = (
    "generate chain",
    "ingest POS, stock positions, names, reference files",
    "daily sales, prices, calendar → Feast",
    "train from Feast & register (MLflow)",
    "forecast & plan POs",
    "approve, deliver to the ERP, acknowledge, receive",
    "next plan sees the receipts",
)


# The synthetic chain's last sales day: a fixed day (same seed, same chain) far enough in
# the past that the fake ERP's deliveries and receipts after it are in the past too.
DEMO_END = date(2026, 10, 31)


class DemoMismatch(Conflict):
    """The data directory holds a demo made with other parameters."""


@dataclass
class DemoSummary:
    params: dict[str, Any]
    ingest: dict[str, Any]
    features: dict[str, Any]
    training: dict[str, Any]
    plan: dict[str, Any]
    erp: dict[str, Any] = field(default_factory=dict)
    next_plan: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    access: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "ingest": self.ingest,
            "features": self.features,
            "training": self.training,
            "plan": self.plan,
            "erp": self.erp,
            "next_plan": self.next_plan,
            "paths": self.paths,
            "access": self.access,
        }


def run_demo(
    settings: Settings,
    *,
    stores: int = 5,
    skus: int = 40,
    days: int = 730,
    seed: int = 7,
    reset: bool = False,
    on_stage: Callable[[int, str], None] | None = None,
) -> DemoSummary:
    """Generate a chain and run every stage on it; returns what each stage produced.

    Re-running with the same parameters is idempotent (resent POS lines count as
    duplicates, the day's suggestions are replaced). Other parameters need ``reset``,
    which empties the data directory first (MLflow history is kept).
    """
    params = {"stores": stores, "skus": skus, "days": days, "seed": seed}
    _prepare(settings, params, reset)
    rt = Runtime(settings)
    write_bytes(json.dumps(params).encode(), settings.data_dir / "demo.json")

    def stage(i: int) -> None:
        if on_stage is not None:
            on_stage(i, STAGES[i])

    stage(0)
    chain = generate(stores=stores, skus=skus, days=days, seed=seed, end=DEMO_END)
    rt.rules_store.save(Rules.from_frames(chain.suppliers, chain.items), "replen demo")

    stage(1)
    report = ingest_pos(rt, chain.pos, push=False, chunk_rows=max(chain.pos.height, 1))
    snapshots = ingest_inventory(rt, chain.inventory)
    reference = {
        kind: ingest_reference(
            rt, kind, getattr(chain, kind).select(pl.all().cast(pl.String)), f"demo {kind}"
        ).to_dict()
        for kind in REFERENCE_FILES
    }
    feeds = {
        kind: ingest_feed(rt, kind, frame, source=f"replen demo {kind}").to_dict()
        for kind, frame in (
            ("items", chain.item_master()),
            ("stores", chain.store_master()),
            ("stock", chain.stock),
        )
    }

    stage(2)
    history = rt.history()
    feats = refresh_features(rt, history)

    stage(3)
    trained = retrain(rt)  # the training frame comes from Feast

    stage(4)
    plan = forecast_and_plan(rt, history=history)
    access = local_admin(settings)

    stage(5)
    erp, next_date = _erp_loop(
        settings, rt, chain, date.fromisoformat(plan.plan_date), seed, actor=access["sub"]
    )

    stage(6)
    follow = forecast_and_plan(rt, plan_date=next_date, history=history)

    return DemoSummary(
        params=params,
        ingest={
            **report.to_dict(),
            "inventory_snapshots": snapshots,
            "reference": reference,
            **{f"{k}_feed": v for k, v in feeds.items()},
        },
        features=feats.to_dict(),
        training=trained.to_dict(),
        plan=plan.to_dict(),
        erp=erp,
        next_plan={**follow.to_dict(), "example": _example(rt, plan, follow)},
        paths={
            "data_dir": str(settings.data_dir.resolve()),
            "csv": plan.csv_path,
            "forecast": plan.forecast_path,
            "database": settings.db_url,
            "mlflow": settings.tracking_uri,
            "backtest_plot": str((settings.out_dir / "backtest.png").resolve()),
            "fake_erp": str((settings.data_dir / "fake-erp").resolve()),
        },
        access=access,
    )


def local_admin(settings: Settings) -> dict[str, Any]:
    """The local admin of a one-box install: created with a generated password (kept in a
    file only its owner may read) and signed in for the CLI, unless identities exist."""
    from replen.auth.session import _write_private, login, token_service

    password_file = settings.data_dir / "admin-password"
    identities = token_service(settings).identities
    created = False
    if identities.count() == 0:
        issued = identities.create(
            "user", "admin", roles=["admin"], stores=["*"], actor="system:demo"
        )
        _write_private(password_file, issued.secret + "\n")
        login(settings, "admin", issued.secret)
        created = True
    return {
        "sub": "user:admin",
        "created": created,
        "password_file": str(password_file.resolve()) if password_file.exists() else None,
        "credentials": str(settings.credentials_path.resolve()),
    }


def _erp_loop(
    settings: Settings,
    rt: Runtime,
    chain: SyntheticRetail,
    plan_date: date,
    seed: int,
    *,
    actor: str,
) -> tuple[dict[str, Any], date]:
    """Approve the plan's POs, deliver them to a fake ERP (a separate process on loopback,
    stopped whatever happens), take its acknowledgements, receipts and new stock positions
    back in. Returns what happened and the date of the next plan."""
    approved = 0
    for po_id in rt.orders.purchase_orders(plan_date, status="suggested")["po_id"]:
        rt.orders.transition(int(po_id), "approved", actor)  # as the local admin
        approved += 1
    state_file = settings.data_dir / "demo-loop.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    secret = state.get("secret") or secrets.token_hex(16)
    with FakeErp(settings.data_dir / "fake-erp", secret=secret, odoo=None) as fake:
        fake.seed(
            stock=chain.stock.select("store_id", "sku_id", "on_hand").to_dicts(),
        )
        wired = Runtime(
            settings.model_copy(
                update={
                    "erp_adapter": "webhook",
                    "erp_url": fake.webhook_url,
                    "erp_hmac_key": SecretStr(secret),
                    "erp_timeout_seconds": 10.0,
                }
            )
        )
        delivered = deliver_once(wired)
        acks = fake.confirm()
        acked = _feed(rt, "acks", acks, "fake ERP acknowledgements")
        receipts = fake.receive(delays=[-1, 0, 0, 0, 1, 2], seed=seed)
        received = _feed(rt, "receipts", receipts, "fake ERP goods receipts")
        if receipts:
            last = max(datetime.fromisoformat(r["received_at"]) for r in receipts)
            as_of = min(last + timedelta(hours=1), datetime.now(UTC) - timedelta(seconds=1))
            state["as_of"] = as_of.isoformat()
        positions = _feed(
            rt,
            "stock",
            fake.stock(state.get("as_of", "")) if "as_of" in state else [],
            "fake ERP stock positions",
        )
    next_date = (
        datetime.fromisoformat(state["as_of"]).date() + timedelta(days=1)
        if "as_of" in state
        else plan_date + timedelta(days=1)
    )
    state_file.write_text(json.dumps({"secret": secret, "as_of": state.get("as_of")}))
    return (
        {
            "approved": approved,
            "delivered": delivered.delivered,
            "delivery": delivered.to_dict(),
            "acknowledged": acked,
            "received": received,
            "positions": positions,
            "lead_times": lead_times(settings.db_url).to_dicts(),
        },
        next_date,
    )


def _example(rt: Runtime, first: PlanSummary, follow: PlanSummary) -> dict[str, Any]:
    """The first plan's biggest line, and what the next plan made of the same store×SKU."""
    lines = rt.orders.po_lines(date.fromisoformat(first.plan_date))
    if lines.is_empty():
        return {}
    top = lines.sort("value", descending=True).row(0, named=True)
    key = (pl.col("store_id") == top["store_id"]) & (pl.col("sku_id") == top["sku_id"])
    after = rt.positions.latest(date.fromisoformat(follow.plan_date)).filter(key)
    again = rt.orders.po_lines(date.fromisoformat(follow.plan_date)).filter(key)
    return {
        "store_id": top["store_id"],
        "sku_id": top["sku_id"],
        "item_name": top.get("item_name"),
        "ordered": top["quantity"],
        "received": top.get("received_quantity"),
        "on_hand_before": top["on_hand"],
        "on_hand_after": after["on_hand"][0] if after.height else None,
        "on_order_after": after["on_order"][0] if after.height else None,
        "ordered_next": int(again["quantity"][0]) if again.height else 0,
    }


def _feed(rt: Runtime, kind: str, rows: list[dict[str, Any]], source: str) -> dict[str, Any]:
    if not rows:
        return {"received": 0}
    return ingest_feed(rt, kind, pl.DataFrame(rows), source=source).to_dict()


def _prepare(settings: Settings, params: dict[str, Any], reset: bool) -> None:
    marker = settings.data_dir / "demo.json"
    if reset and settings.data_dir.exists():
        if any(settings.data_dir.iterdir()) and not marker.exists():
            raise DemoMismatch(
                f"{settings.data_dir} holds data that no demo made; refusing to delete it. "
                "Point REPLEN_DATA_DIR at an empty or demo directory."
            )
        shutil.rmtree(settings.data_dir)
        return
    if marker.exists():
        before = json.loads(marker.read_text())
        if before != params:
            raise DemoMismatch(
                f"{settings.data_dir} holds a demo made with {before}; run with --reset to "
                f"start over with {params}, or use another REPLEN_DATA_DIR"
            )
    elif settings.lake_dir.exists() and any(settings.lake_dir.glob("_manifests/*.json")):
        raise DemoMismatch(
            f"{settings.data_dir} already holds real POS data; run the demo in another "
            "directory (REPLEN_DATA_DIR=.replen-demo replen demo)"
        )
