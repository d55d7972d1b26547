"""A fake ERP for tests and the demo: a separate process on loopback that speaks Replen's
webhook protocol and the subset of Odoo's JSON-RPC API the Odoo adapter uses, stores POs in
SQLite, and injects faults on request. A test double of an external system, never used by
Replen itself. Run it with ``python -m replen.fake_erp --help``."""

from replen.fake_erp.process import FakeErp

__all__ = ["FakeErp"]
