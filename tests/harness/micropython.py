"""Fixtures: micropython (being written)."""
