"""HTTP routes of the Replen service."""
