"""Shared fixtures: real servers on free loopback ports (see tests/harness/).

Every fixture starts the real program (Mosquitto with the project's broker/
config, VictoriaMetrics, InfluxDB 1.x, Redis, Chromium, MicroPython under
Node).  A missing program is a test failure in CI and under scripts/test
(HG_REQUIRE_SERVERS=1), and a skip that says how to install it elsewhere.
"""

pytest_plugins = [
    "tests.harness.servers",  # before mosquitto, which builds on its Server
    "tests.harness.mosquitto",
    "tests.harness.postgres",
    "tests.harness.browser",
    "tests.harness.micropython",
    "tests.harness.stack",
]
