"""Timestamp stage: gateway receive time, event time and the device's skew."""

from __future__ import annotations

from gateway.store import Event


def stamp(msg: dict, received_ms: int) -> Event:
    """Event time is the device's ts when its clock is synced, else receive
    time minus the event's age; skew = device clock at sending - receive."""
    ts = msg.get("ts")
    age = msg["age"]
    return Event(
        device=msg["dev"], seq=msg["seq"], kind=msg["kind"], type=msg["type"],
        event_time_ms=ts if ts is not None else received_ms - age,
        device_time_ms=ts, gateway_time_ms=received_ms, age_ms=age,
        skew_ms=ts + age - received_ms if ts is not None else None,
        data=msg["data"],
    )
