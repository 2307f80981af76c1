"""The development broker: Mosquitto as the current user on loopback, or the
embedded Python broker for the one-command demo when Mosquitto is missing.
`homeguard broker run` and the demo, simulator and benchmarks start it; a
production broker is Mosquitto under systemd (deploy/, docs/deploy.md)."""
