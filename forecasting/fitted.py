"""Costly models fitted once a week and applied daily with statsforecast ``forward``.

AutoETS and Theta take ~0.2-0.5 s per series to fit; their parameters are estimated at the
weekly retrain and reused every day on the newest sales (``forward``: same parameters, state
updated with the new observations). Cheap models (SES, Croston family, window averages)
refit in milliseconds, so for them refitting is the cheaper "forward".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from forecasting.candidates import COSTLY, build, components
from forecasting.engine import map_tasks

__all__ = ["COSTLY_MODELS", "fit_costly", "forward_forecast"]

COSTLY_MODELS = frozenset(m for names in COSTLY.values() for m in names)


def fit_costly(
    train_df: pl.DataFrame, picks: pl.DataFrame, freq: str = "daily"
) -> dict[str, dict[str, Any]]:
    """Fit the costly components of each series' champion on its full history.

    ``train_df``: ``unique_id, ds, y``; ``picks``: ``unique_id, model``. Returns
    ``{unique_id: {model_name: fitted statsforecast model}}`` (picklable). Series are fitted
    in groups on the current engine (:mod:`forecasting.engine`).
    """
    groups = picks.with_columns((pl.int_range(pl.len()) % _GROUPS).alias("_g")).partition_by(
        "_g", include_key=False
    )
    args = [(train_df.join(g.select("unique_id"), on="unique_id"), g, freq) for g in groups]
    out: dict[str, dict[str, Any]] = {}
    for part in map_tasks(_fit_group, args):
        out.update(part)
    return out


_GROUPS = 16  # tasks per costly fit: enough to spread over a cluster's workers


def _fit_group(train_df: pl.DataFrame, picks: pl.DataFrame, freq: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (name,), ids in picks.partition_by("model", as_dict=True).items():
        costly = [c for c in components([str(name)]) if c in COSTLY_MODELS]
        if not costly:
            continue
        for uid, series in train_df.join(ids.select("unique_id"), on="unique_id").group_by(
            "unique_id", maintain_order=True
        ):
            y = series.sort("ds")["y"].to_numpy().astype(float)
            fitted = {}
            for model, comp in zip(build(costly, freq), costly, strict=True):
                try:
                    fitted[comp] = model.fit(y)
                except Exception:  # a model that fails on a series is refitted daily instead
                    continue
            out.setdefault(str(uid[0]), {}).update(fitted)
    return out


def forward_forecast(fitted: dict[str, Any], y: np.ndarray, h: int) -> np.ndarray | None:
    """Mean forecast of the fitted components applied to ``y``; None if any is missing."""
    means = []
    for model in fitted.values():
        res = model.forward(y=y.astype(float), h=h)
        means.append(np.clip(np.asarray(res["mean"], dtype=float), 0.0, None))
    return np.mean(means, axis=0) if means else None
