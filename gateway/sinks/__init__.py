"""Sinks read the gateway's store in order and deliver; one module each."""
