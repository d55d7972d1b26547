"""Pictures for planners: what the forecast behind each PO line looks like."""

from __future__ import annotations

import textwrap
from pathlib import Path

import polars as pl

from kernel.errors import InvalidInput
from kernel.files import write_figure
from replenishment.explain import explain

__all__ = ["plot_po_lines"]


def plot_po_lines(
    history: pl.DataFrame,
    forecast: pl.DataFrame,
    lines: pl.DataFrame,
    path: Path,
    *,
    days: int = 56,
) -> Path:
    """One panel per PO line: recent daily sales, the forecast mean and its 50–95% band,
    with the line's explanation (every adjustment) as the title (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = lines.to_dicts()
    if not rows:
        raise InvalidInput("the PO has no lines to draw", field="po_id", rule="po.lines")
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 2.6 * len(rows)), squeeze=False)
    end = history["date"].max()
    for ax, r in zip(axes[:, 0], rows, strict=True):
        key = (pl.col("store_id") == r["store_id"]) & (pl.col("sku_id") == r["sku_id"])
        past = history.filter(key & (pl.col("date") > pl.lit(end) - pl.duration(days=days)))
        fut = forecast.filter(key).sort("date")
        ax.bar(past["date"].to_list(), past["units"].to_list(), color="0.6", label="sold")
        if fut.height:
            ax.plot(fut["date"].to_list(), fut["mean"].to_list(), color="tab:blue", label="mean")
            if {"q50", "q95"} <= set(fut.columns):
                ax.fill_between(
                    fut["date"].to_list(),
                    fut["q50"].to_list(),
                    fut["q95"].to_list(),
                    color="tab:blue",
                    alpha=0.2,
                    label="50–95%",
                )
        sentence = explain(r, r["quantity"], r.get("suggested_quantity"))
        ax.set_title(
            "\n".join(textwrap.wrap(f"{r['store_id']} / {r['sku_id']}: {sentence}", 150)),
            fontsize=8,
            loc="left",
        )
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    try:
        write_figure(fig, path, dpi=90)
    finally:
        plt.close(fig)
    plt.close(fig)
    return path
