"""Replenishment stage: demand over lead time + stock position + rules → explained PO suggestions."""
