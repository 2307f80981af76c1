"""Homeguard gateway: broker -> decode -> verify -> timestamp -> dedup -> outbox -> sinks."""
