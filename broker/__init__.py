"""Homeguard broker tooling: Mosquitto config, TLS material, credentials and ACL."""
