"""The broker's access control list, rendered for Mosquitto and checkable in Python.

A device's username is its device id.  Each device may publish only its own
uplink topics and subscribe only to its own downlink topics; each gateway
account reads every device's uplink (also through shared subscriptions) and
writes every device's downlink.  Each gateway account has a telemetry
companion (`<name>.tm`, telemetry_user()) with the same password, for the
gateway's second session: it reads only the telemetry uplink, so telemetry
queues in the broker apart from alarms.  Nobody gets anything else, $SYS
included.
`allowed()` states the same rules for the embedded demo broker and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from hg import protocol

DEFAULT_GATEWAY_USER = "gateway"
DEVICE_WRITE = protocol.UPLINK  # event, telemetry, heartbeat, status
DEVICE_READ = protocol.DOWNLINK  # ack, config, cmd
SHARE_PREFIX = "$share/+/"
# the telemetry companion of a gateway account: a '.' no device id can hold
# (hg.protocol.valid_id), so no device can ever be named like one
TM = ".tm"
TELEMETRY_LEAVES = ("telemetry",)


def telemetry_user(gateway_user: str) -> str:
    """The account of a gateway's telemetry session."""
    return gateway_user + TM


class Access(Enum):
    PUBLISH = "publish"  # the client sends a message to a topic
    SUBSCRIBE = "subscribe"  # the client asks for a topic filter
    RECEIVE = "receive"  # the broker would deliver a message on a topic


def device_rules() -> list[tuple[str, str]]:
    """(read|write, pattern with %u) for every device."""
    return [("write", f"{protocol.PREFIX}%u/{leaf}") for leaf in DEVICE_WRITE] + [
        ("read", f"{protocol.PREFIX}%u/{leaf}") for leaf in DEVICE_READ
    ]


def gateway_rules() -> list[tuple[str, str]]:
    """(read|write, topic filter) for the gateway account."""
    reads = [f"{protocol.PREFIX}+/{leaf}" for leaf in DEVICE_WRITE]
    writes = [f"{protocol.PREFIX}+/{leaf}" for leaf in DEVICE_READ]
    return (
        [("read", t) for t in reads]
        + [("read", SHARE_PREFIX + t) for t in reads]
        + [("write", t) for t in writes]
        # its own downlink too: `homeguard device test` watches a device's acks
        # with a gateway account of its own (a service reads what it may write)
        + [("read", t) for t in writes]
    )


def telemetry_rules() -> list[tuple[str, str]]:
    """(read, topic filter) for a gateway's telemetry account: nothing else."""
    reads = [f"{protocol.PREFIX}+/{leaf}" for leaf in TELEMETRY_LEAVES]
    return [("read", t) for t in reads] + [("read", SHARE_PREFIX + t) for t in reads]


def render(gateways: str | Iterable[str] = DEFAULT_GATEWAY_USER) -> str:
    """The Mosquitto acl_file text; `gateways` is the gateway account or all of them."""
    lines = [
        "# Homeguard broker ACL, rendered by broker/acl.py: edit the code, not this file.",
        "# Mosquitto grants nothing that is not listed here (no anonymous section, no $SYS).",
        "",
        "# Devices: the username is the device id, substituted for %u.",
        "# A device publishes only its own uplink and reads only its own downlink.",
    ]
    lines += [f"pattern {access} {topic}" for access, topic in device_rules()]
    for user in _names(gateways):
        lines += [
            "",
            "# A gateway reads every device's uplink (plain or $share/<group>/ subscriptions)",
            "# and writes every device's downlink.  The deny line removes what the device",
            "# patterns above would otherwise grant it on hg/v1/<its username>/...",
            f"user {user}",
            f"topic deny {protocol.PREFIX}{user}/#",
        ]
        lines += [f"topic {access} {topic}" for access, topic in gateway_rules()]
        companion = telemetry_user(user)
        lines += [
            "",
            f"# {user}'s telemetry session: reads the telemetry uplink only, so telemetry",
            "# queues for the gateway apart from alarms (docs/broker.md, Accounts).",
            f"user {companion}",
            f"topic deny {protocol.PREFIX}{companion}/#",
        ]
        lines += [f"topic {access} {topic}" for access, topic in telemetry_rules()]
    return "\n".join(lines) + "\n"


def allowed(user: str, topic: str, access: Access,
            gateways: str | Iterable[str] = DEFAULT_GATEWAY_USER) -> bool:
    """Whether the rendered ACL lets `user` do `access` on `topic` (a filter for SUBSCRIBE)."""
    if not user:
        return False
    names = _names(gateways)
    if user in names or user in map(telemetry_user, names):
        if topic.startswith(f"{protocol.PREFIX}{user}/"):
            return False
        rules = gateway_rules() if user in names else telemetry_rules()
    elif protocol.valid_id(user):
        rules = [(a, t.replace("%u", user)) for a, t in device_rules()]
    else:
        return False
    want = "write" if access is Access.PUBLISH else "read"
    return any(a == want and _within(topic, t, access) for a, t in rules)


def _within(topic: str, rule: str, access: Access) -> bool:
    """A topic (or, to subscribe, a filter) that lies inside the rule's filter."""
    if access is not Access.SUBSCRIBE and ("+" in topic or "#" in topic):
        return False
    got, want = topic.split("/"), rule.split("/")
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if g == "#" or (w != "+" and g != w) or (w == "+" and g == ""):
            return False
    return True


def _names(gateways: str | Iterable[str]) -> list[str]:
    return [gateways] if isinstance(gateways, str) else list(gateways)
