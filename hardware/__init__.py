"""Homeguard hardware: board profiles, calibration and power scripts, and the
technician tools (`hardware.tech`, the `homeguard device` commands)."""
