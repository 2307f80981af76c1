"""Fixtures: mosquitto (being written)."""
