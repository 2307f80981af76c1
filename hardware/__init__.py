"""Homeguard hardware: board profiles, wiring, bill of materials, calibration
and power scripts. The technician's tools that use them are homeguard.tech
(the `homeguard device` commands)."""
