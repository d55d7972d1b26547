"""Pictures of forecasts against actuals, for MLflow artifacts and planners."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kernel.files import write_figure

__all__ = ["plot_backtest"]


def plot_backtest(
    cv: pl.DataFrame, champions: pl.DataFrame, path: Path, *, n: int = 6, seed: int = 0
) -> Path | None:
    """Draw backtest forecasts of each sampled series' champion against actuals (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forecasting.history import keys_frame

    chosen = keys_frame(champions).select("unique_id", "model", "demand_class")
    picked = cv.join(chosen.drop("demand_class"), on=["unique_id", "model"])
    ids = picked["unique_id"].unique().sort()
    if ids.is_empty():
        return None
    sample = ids.sample(min(n, ids.len()), seed=seed).sort().to_list()
    cols = 2
    rows = (len(sample) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.6 * rows), squeeze=False)
    for ax, uid in zip(axes.ravel(), sample, strict=False):
        part = picked.filter(pl.col("unique_id") == uid).sort("ds")
        label = uid.replace("\x1f", " / ")
        model = part["model"][0]
        ax.plot(part["ds"].to_list(), part["y"].to_list(), color="black", lw=1, label="actual")
        for win in part.partition_by("cutoff"):
            ax.plot(win["ds"].to_list(), win["yhat"].to_list(), color="tab:blue", lw=1.5)
        ax.set_title(f"{label} — {model}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(sample) :]:
        ax.axis("off")
    fig.suptitle("Backtest: champion forecasts (blue) vs actual units (black)", fontsize=11)
    fig.tight_layout()
    try:
        write_figure(fig, path, dpi=90)
    finally:
        plt.close(fig)
    return path
