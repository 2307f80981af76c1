"""Technician tools: flash, install, provision, test and inspect a board
over its serial port (`homeguard device ...`, docs/technician.md)."""
