"""Every notebook runs top to bottom on a Replen installation, without progress-bar noise."""

import re
import shutil
from pathlib import Path

import nbformat
import polars as pl
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
NOISE = re.compile(r"\d+%\|[^\n]*\||it/s\]|Materializing|Downloading artifacts|Warning")


@pytest.fixture(scope="module")
def installation(tmp_path_factory) -> Path:
    """A small installation with sales, stock, rules and reference files in its lake."""
    from jobs.erp import ingest_feed
    from jobs.model_inputs import ingest_reference
    from jobs.refresh import ingest_inventory, ingest_pos
    from jobs.runtime import Runtime
    from replen.settings import Settings
    from replen.synthetic import REFERENCE_FILES, generate
    from replenishment.rules import Rules

    home = tmp_path_factory.mktemp("installation")
    rt = Runtime(Settings(data_dir=home / "data", mlflow_dir=home / "mlflow"))
    chain = generate(stores=2, skus=8, days=240, seed=5)
    for kind, frame in (
        ("items", chain.item_master()),
        ("stores", chain.store_master()),
        ("stock", chain.stock),
    ):
        ingest_feed(rt, kind, frame, source=f"test {kind}")
    rt.rules_store.save(Rules.from_frames(chain.suppliers, chain.items), "test")
    ingest_pos(rt, chain.pos, push=False, chunk_rows=chain.pos.height)
    ingest_inventory(rt, chain.inventory)
    for kind in REFERENCE_FILES:
        ingest_reference(rt, kind, getattr(chain, kind).select(pl.all().cast(pl.String)), kind)
    return home


def _run(path: Path, workdir: Path, monkeypatch, home: Path | None) -> nbformat.NotebookNode:
    monkeypatch.setenv("REPLEN_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("REPLEN_DATA_DIR", str((home or workdir) / "data"))
    monkeypatch.setenv("REPLEN_MLFLOW_DIR", str((home or workdir) / "mlflow"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb


def _outputs(nb: nbformat.NotebookNode) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_on_the_projects_own_installation(
    path: Path, installation: Path, monkeypatch, tmp_path
) -> None:
    home = tmp_path / "copy"
    shutil.copytree(installation, home)
    nb = _run(path, tmp_path, monkeypatch, home)
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert f"the project's installation at {home / 'data'}" in text
    assert not NOISE.search(text), NOISE.search(text)


def test_a_notebook_on_an_empty_lake_falls_back_to_a_synthetic_chain(monkeypatch, tmp_path) -> None:
    nb = _run(NOTEBOOKS[0], tmp_path, monkeypatch, None)
    text = "".join(o.get("text", "") for o in _outputs(nb) if o.get("output_type") == "stream")
    assert "a synthetic chain" in text
    assert not [o for o in _outputs(nb) if o.get("output_type") == "error"]
