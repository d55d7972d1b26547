"""Replen's leaf kernel: contracts every package may import (the exception tree, for now)."""
