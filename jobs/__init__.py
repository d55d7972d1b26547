"""Jobs: the composition roots that wire features → forecasting → replenishment on a schedule."""
