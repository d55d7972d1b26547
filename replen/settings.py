"""One validated configuration for every Replen entry point (env prefix REPLEN_, replen.toml)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Replen settings.

    Precedence: keyword arguments > ``REPLEN_*`` environment variables > ``replen.toml`` in
    the working directory > defaults. Relative paths are relative to the working directory.
    """

    model_config = SettingsConfigDict(
        env_prefix="REPLEN_", toml_file="replen.toml", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(
        Path(".replen"),
        description="Holds the POS lake, the Feast repo state, the database and outputs.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL for POs, ledgers and tokens; SQLite under data_dir if unset.",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI; MLFLOW_TRACKING_URI, then SQLite in ./mlflow/.",
    )
    mlflow_dir: Path = Field(Path("mlflow"), description="MLflow's local home (db, artifacts).")
    experiment_name: str = "replen-demand"
    model_name: str = "replen-demand"
    champion_margin: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="A challenger must beat the champion's backtest loss by this fraction.",
    )
    service_level: float = Field(0.95, gt=0.5, lt=1.0, description="Default cycle service level.")
    forecast_horizon_days: int = Field(28, ge=1, le=366)
    backtest_horizon_days: int = Field(28, ge=1, le=366)
    backtest_windows: int = Field(
        4, ge=1, le=20, description="Rolling backtest origins; selection needs most of them."
    )
    backtest_gap_days: int = Field(
        0,
        ge=0,
        le=60,
        description="Days between the last sales data and the first day planned: the backtest "
        "scores the days after this gap, as the plan will use them.",
    )
    training_days: int = Field(
        1096, ge=120, description="Days of history read from Feast for a retrain."
    )
    quantiles: list[float] = Field(default_factory=lambda: [0.5, 0.8, 0.9, 0.95, 0.99])
    currency: str = Field("EUR", min_length=3, max_length=3)
    # POS contract and monitoring
    max_abs_quantity: float = Field(10_000.0, gt=0, description="Largest |quantity| per line.")
    max_future_skew_seconds: float = Field(
        300.0, ge=0, description="How far in the future sold_at may lie (clock skew)."
    )
    max_request_bytes: int = Field(
        20_000_000, gt=0, description="Largest POS request body; larger gets HTTP 413."
    )
    max_small_request_bytes: int = Field(
        65_536, gt=0, description="Largest body of every other request (token, orders …)."
    )
    max_lines_per_request: int = Field(
        100_000, gt=0, description="Most lines (events, snapshots) in one request; more → 413."
    )
    max_response_errors: int = Field(
        1_000,
        ge=0,
        description="Rejected lines listed one by one in a response; the rest summarised.",
    )
    pos_max_age_days: float = Field(
        400.0, gt=0, description="HTTP: sold_at / as_of may lie at most this far in the past."
    )
    backfill_max_age_days: float = Field(
        10_958.0, gt=0, description="File ingest: how far in the past sold_at may lie (30 years)."
    )
    max_unit_price: float = Field(1_000_000.0, gt=0, description="Largest unit_price per line.")
    max_on_hand: float = Field(10_000_000.0, gt=0, description="Largest on_hand per snapshot.")
    # Access
    access_token_minutes: float = Field(
        10.0, gt=0, le=1440, description="Lifetime of signed access tokens."
    )
    refresh_token_days: float = Field(30.0, gt=0, description="Lifetime of refresh tokens.")
    token_issuer: str = Field("replen", description="The `iss` of access tokens.")
    rate_limit_per_minute: int = Field(
        1_200, gt=0, description="Requests per identity per minute (per server process)."
    )
    sign_in_failures_per_minute: int = Field(
        10, gt=0, description="Failed token requests per name and address per minute."
    )
    metrics_public: bool = Field(
        False, description="Serve /metrics without a token (only on a trusted network)."
    )
    credentials_file: Path | None = Field(
        None, description="Where `replen login` keeps its session; <data_dir>/credentials.json."
    )
    freshness_max_lag_seconds: float = Field(
        120.0, gt=0, description="Alert when a store's newest event is older than this."
    )
    reject_ratio_max: float = Field(
        0.001, ge=0, le=1, description="Alert when rejected/received over the window exceeds it."
    )
    monitor_window_minutes: float = Field(15.0, gt=0, description="Window of the reject ratio.")
    # Planner's worklist
    overstock_days: float = Field(
        60.0, gt=0, description="A line whose cover after the order exceeds this is overstock."
    )
    plan_change_ratio: float = Field(
        0.5,
        ge=0,
        description="A quantity moving by more than this share of the previous "
        "plan's is a large change (and by at least plan_change_min_units).",
    )
    plan_change_min_units: float = Field(12.0, ge=0)
    pos_stale_hours: float = Field(
        26.0, gt=0, description="A store whose newest POS sale is older has a stale feed."
    )
    # Scheduler
    schedules: dict[str, str] = Field(
        default_factory=lambda: {
            "refresh": "*/15 * * * *",
            "retrain": "0 2 * * sun",
            "replenish": "0 5 * * *",
            "monitor": "* * * * *",
            "deliver": "*/5 * * * *",
        },
        description="Job name → crontab (5 fields) or 'every <N>s'.",
    )
    scheduler_timezone: str = Field("UTC", description="Time zone of the cron schedules.")
    scheduler_lock_ttl_seconds: float = Field(30.0, gt=0)
    catch_up_max: int = Field(
        3, ge=0, description="Missed slots per job run on restart; older ones are recorded skipped."
    )
    probe_seconds: float = Field(1.0, ge=0, description="Duration of the 'probe' test job.")
    # Scale-out: the same code on existing engines (one box by default)
    online_store: str = Field(
        "sqlite",
        description="Feast online store: 'sqlite' (a file under data_dir) or a Redis URL "
        "(redis://[:password@]host:port/db, rediss:// for TLS).",
    )
    feast_registry: str | None = Field(
        None,
        description="Feast registry: a file (default <data_dir>/feast/registry.db) or a "
        "SQLAlchemy URL (postgresql+psycopg://…) that every process shares.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis holding the POS stream (`consume pos`)."
    )
    pos_stream: str = Field("replen:pos", min_length=1, description="Redis stream of POS events.")
    pos_group: str = Field(
        "replen-ingest", min_length=1, description="Consumer group that ingests the POS stream."
    )
    train_engine: Literal["local", "dask"] = Field(
        "local", description="Where the retrain computes: this process or a Dask cluster."
    )
    dask_address: str | None = Field(
        None, description="Dask scheduler (tcp://host:port) when train_engine is 'dask'."
    )
    train_chunk_series: int | None = Field(
        None,
        ge=1,
        description="Series per retrain chunk: bounds memory (~0.6 GB per 1,000 series); "
        "each chunk is one selection pool. Unset: sized at the retrain from the memory "
        "available (half of it, 1,000–5,000 series; 5,000 if unknown).",
    )
    # ERP delivery (outbox) and adapters
    erp_adapter: Literal["webhook", "odoo", "file"] | None = Field(
        None, description="How approved POs reach the ERP: webhook, odoo or file."
    )
    erp_url: str | None = Field(
        None, description="Webhook endpoint, or the Odoo server's base URL (…/jsonrpc is added)."
    )
    erp_dir: Path | None = Field(None, description="Folder of the file adapter (one file per PO).")
    erp_hmac_key: SecretStr | None = Field(None, description="Webhook signing key (HMAC-SHA256).")
    erp_odoo_db: str | None = Field(None, description="Odoo database name.")
    erp_odoo_user: str | None = Field(None, description="Odoo login of the integration user.")
    erp_odoo_api_key: SecretStr | None = Field(None, description="Odoo API key (or password).")
    erp_timeout_seconds: float = Field(10.0, gt=0, description="Per request to the ERP.")
    erp_backoff_base_seconds: float = Field(2.0, gt=0, description="First retry delay.")
    erp_backoff_cap_seconds: float = Field(300.0, gt=0, description="Longest retry delay.")
    erp_max_attempts: int = Field(
        30, ge=1, description="Attempts before a delivery that keeps failing is dead-lettered."
    )
    erp_lease_seconds: float = Field(
        120.0, gt=0, description="A claimed delivery is another worker's after this long."
    )
    erp_batch_size: int = Field(50, ge=1, le=1000, description="Deliveries claimed at once.")
    erp_concurrency: int = Field(4, ge=1, le=64, description="Requests in flight per worker.")
    erp_poll_seconds: float = Field(5.0, gt=0, description="Idle wait of `erp deliver --loop`.")

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _mlflow_environment(cls, value: str | None) -> str | None:
        # Read once, here: MLflow itself rewrites MLFLOW_TRACKING_URI when anything in the
        # process calls mlflow.set_tracking_uri.
        return value or os.environ.get("MLFLOW_TRACKING_URI") or None

    @field_validator("quantiles")
    @classmethod
    def _check_quantiles(cls, value: list[float]) -> list[float]:
        bad = [q for q in value if not 0.0 < q < 1.0]
        if bad:
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {bad}")
        return sorted(set(value))

    @field_validator("online_store")
    @classmethod
    def _check_online_store(cls, value: str) -> str:
        if value != "sqlite" and not value.startswith(("redis://", "rediss://")):
            raise ValueError(
                "online_store must be 'sqlite' or a Redis URL (redis://host:port/db), "
                f"got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _check_engine(self) -> Settings:
        if self.train_engine == "dask" and not self.dask_address:
            raise ValueError(
                "train_engine 'dask' needs dask_address (REPLEN_DASK_ADDRESS=tcp://host:port)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    # Derived locations -------------------------------------------------------------------
    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def feast_dir(self) -> Path:
        return self.data_dir / "feast"

    @property
    def credentials_path(self) -> Path:
        return self.credentials_file or self.data_dir / "credentials.json"

    @property
    def reference_dir(self) -> Path:
        """Calendar, price list, promotions and item attributes (`replen ingest …`)."""
        return self.data_dir / "reference"

    @property
    def out_dir(self) -> Path:
        return self.data_dir / "out"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'replen.db').resolve()}"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.mlflow_dir / "artifacts").resolve()

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.lake_dir, self.feast_dir, self.out_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.mlflow_dir.mkdir(parents=True, exist_ok=True)


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment and ``replen.toml`` with explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
