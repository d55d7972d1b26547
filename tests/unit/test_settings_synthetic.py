import polars as pl
import pytest
from pydantic import ValidationError

from replen.settings import Settings
from replen.synthetic import generate


def test_env_overrides_toml_and_derives_paths(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "replen.toml").write_text('data_dir = "from_toml"\nservice_level = 0.9\n')
    monkeypatch.setenv("REPLEN_SERVICE_LEVEL", "0.97")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    s = Settings()
    assert s.service_level == 0.97
    assert str(s.data_dir) == "from_toml"
    assert s.db_url == f"sqlite:///{(tmp_path / 'from_toml' / 'replen.db').resolve()}"
    assert s.tracking_uri.endswith("mlflow/mlflow.db")


def test_mlflow_tracking_uri_env_is_honoured(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert Settings().tracking_uri == "http://mlflow.example:5000"


def test_bad_setting_names_field_and_rule(monkeypatch) -> None:
    monkeypatch.setenv("REPLEN_SERVICE_LEVEL", "1.5")
    with pytest.raises(ValidationError, match="service_level"):
        Settings()


def test_generator_is_reproducible_and_realistic() -> None:
    a = generate(stores=2, skus=10, days=120, seed=11)
    b = generate(stores=2, skus=10, days=120, seed=11)
    assert a.pos.equals(b.pos)
    assert (a.pos["quantity"] < 0).any(), "returns"
    assert a.pos["promo_id"].is_not_null().any(), "promotions"
    assert a.demand["stockout"].any(), "stockouts"
    assert (a.inventory["on_hand"] == 0).any()
    zero_share = a.demand.group_by("sku_id").agg((pl.col("units") == 0).mean().alias("z"))
    assert zero_share["z"].max() > 0.5, "an intermittent slow mover"
    assert a.pos["sold_at"].dtype == pl.Datetime("us", "UTC")
    assert a.pos["event_id"].is_unique().all()
