"""Replenishment stage: lead-time demand + stock position + rules → explained PO suggestions."""
