"""The device simulator: simulated boards that run the real firmware (hg and
firmware/apps) on a simulated HAL, in one process (`homeguard simulate`,
the demo, the fault tests and the technician's stand-in board)."""
