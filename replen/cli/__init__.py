"""The `replen` command line, one module per user task: pipeline, data, orders, erp,
operations, corrections, access, services (the long-running processes of a multi-process
deployment)."""

# Imported in the order `replen --help` lists them; each module registers its commands.
from replen.cli import pipeline  # noqa: F401, I001
from replen.cli import data  # noqa: F401
from replen.cli import orders  # noqa: F401
from replen.cli import erp  # noqa: F401
from replen.cli import operations  # noqa: F401
from replen.cli import corrections  # noqa: F401
from replen.cli import access  # noqa: F401
from replen.cli import services  # noqa: F401
from replen.cli._common import app

__all__ = ["app"]

if __name__ == "__main__":  # pragma: no cover
    app()
