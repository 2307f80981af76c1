"""Fixtures: browser (being written)."""
