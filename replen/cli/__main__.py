"""`python -m replen.cli …` runs the command line (used by tests and benchmarks)."""

from replen.cli import app

app()
