"""The notebooks' door to Replen: the project's own lake, Feast store and MLflow by default.

``open_installation()`` reads the same settings as the CLI (``REPLEN_*``, ``replen.toml``,
``./.replen``). When that lake holds no sales yet, it builds a small synthetic chain in a
temporary installation instead (POS lines, stock, reference files, rules), so that every
notebook still runs end to end, and says so. Third-party progress bars and banners are
switched off: a notebook shows results, not noise.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from jobs.runtime import Runtime
from replen.settings import Settings

__all__ = ["Installation", "open_installation", "quiet"]


@dataclass(frozen=True)
class Installation:
    """A runtime and where its data came from."""

    rt: Runtime
    synthetic: bool
    note: str

    def __str__(self) -> str:
        return self.note


def quiet() -> None:
    """No progress bars, banners or library warnings in notebook output."""
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    for name in ("mlflow", "feast", "alembic", "statsforecast", "urllib3", "ibis"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def open_installation(*, small: bool | None = None) -> Installation:
    """The project's installation, or a synthetic one when its lake is empty.

    ``small`` sizes the synthetic fallback (default: ``REPLEN_NOTEBOOK_SMALL=1``).
    """
    quiet()
    settings = Settings()
    rt = Runtime(settings)
    if any(settings.lake_dir.glob("_manifests/*.json")):
        return Installation(rt, False, f"the project's installation at {settings.data_dir}")
    if small is None:
        small = os.environ.get("REPLEN_NOTEBOOK_SMALL") == "1"
    home = Path(tempfile.mkdtemp(prefix="replen-notebook-"))
    fallback = Settings(data_dir=home / "data", mlflow_dir=home / "mlflow")
    rt = Runtime(fallback)
    _synthetic_chain(rt, small)
    return Installation(
        rt,
        True,
        f"no sales in {settings.lake_dir}: a synthetic chain in {home} instead "
        "(ingest your POS lines with `replen ingest pos` to work on your own data)",
    )


def _synthetic_chain(rt: Runtime, small: bool) -> None:
    from jobs.erp import ingest_feed
    from jobs.model_inputs import ingest_reference
    from jobs.refresh import ingest_inventory, ingest_pos
    from replen.synthetic import REFERENCE_FILES, generate
    from replenishment.rules import Rules

    chain = generate(stores=2 if small else 4, skus=8 if small else 25, days=240 if small else 730)
    for kind, frame in (
        ("items", chain.item_master()),
        ("stores", chain.store_master()),
        ("stock", chain.stock),
    ):
        ingest_feed(rt, kind, frame, source=f"synthetic {kind}")
    rt.rules_store.save(Rules.from_frames(chain.suppliers, chain.items), "notebook")
    ingest_pos(rt, chain.pos, push=False, chunk_rows=max(chain.pos.height, 1))
    ingest_inventory(rt, chain.inventory)
    for kind in REFERENCE_FILES:
        frame = getattr(chain, kind).select(pl.all().cast(pl.String))
        ingest_reference(rt, kind, frame, f"synthetic {kind}")
