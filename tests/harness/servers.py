"""Fixtures: servers (being written)."""
