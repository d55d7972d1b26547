"""Forecasting stage: history → per-series champion models → quantile forecasts (MLflow memory)."""
