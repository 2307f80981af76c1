"""Homeguard centre: ingest API, alarm store, operator workflow and live dashboard."""
