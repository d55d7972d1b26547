"""Replen ↔ ERP: the outbox of approved PO versions, adapters (webhook, Odoo, file drop),
the delivery worker, and what comes back (acknowledgements, goods receipts, lead times)."""
