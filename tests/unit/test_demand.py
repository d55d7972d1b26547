from datetime import date, timedelta

import polars as pl

from forecasting.demand import classify


def _series(sku: str, units: list[float]) -> pl.DataFrame:
    start = date(2024, 1, 1)
    return pl.DataFrame(
        {
            "store_id": "S1",
            "sku_id": sku,
            "date": [start + timedelta(days=i) for i in range(len(units))],
            "units": units,
        }
    )


def test_classes_follow_syntetos_boylan_cuts() -> None:
    n = 120
    history = pl.concat(
        [
            _series("smooth", [5.0, 6.0] * (n // 2)),
            _series("erratic", [1.0, 20.0] * (n // 2)),
            _series("intermittent", [0.0, 0.0, 3.0] * (n // 3)),
            _series("lumpy", [0.0, 0.0, 1.0, 0.0, 0.0, 30.0] * (n // 6)),
            _series("new", [1.0] * 30),
            _series("inactive", [2.0] * 40 + [0.0] * 80),
        ]
    )
    got = dict(classify(history).select("sku_id", "demand_class").iter_rows())
    assert got == {k: k for k in got}
