# Homeguard wire protocol v1: topics, canonical encoding, HMAC-SHA256 signing
# and verification.  This one module is the definition shared by the devices
# (MicroPython) and the gateway (CPython); docs/protocol.md describes it and
# tests/vectors/ pins its exact bytes.  Keep it in the MicroPython subset:
# no f-strings with '=', no dataclasses, no typing at run time, no floats.
import hashlib
import json

try:
    from binascii import hexlify
except ImportError:  # pragma: no cover
    from ubinascii import hexlify

try:  # CPython (the gateway): constant-time comparison in C
    from hmac import compare_digest as _c_eq
except ImportError:  # MicroPython: the pure version below
    _c_eq = None  # type: ignore[assignment]
# CPython can copy a hash state: the padded-key states are computed once per
# key (MicroPython's sha256 has no copy(), so it hashes the pads every time)
_COPY = hasattr(hashlib.sha256(), "copy")
_pads = {}  # type: dict

VERSION = 1
PREFIX = "hg/v1/"
MAX_PAYLOAD = 1024
MAX_DATA_KEYS = 24
MAX_STR = 64
MAX_INT = 9007199254740991  # 2**53 - 1: exact in every JSON reader
MAX_SEQ = 2147483647  # 2**31 - 1
MAX_AGE = 31536000000  # one year in ms
ID_LEN = (3, 32)  # device ids: 3-32 of a-z 0-9 -
KEY_LEN = 16  # data keys: 1-16 of a-z 0-9 _, starting with a letter
SIG_LEN = 64
# the signed bytes are the wire bytes without this trailing member
_SIG_HEAD = b',"sig":"'
_SIG_TAIL = b'"}'
_SUFFIX_LEN = len(_SIG_HEAD) + SIG_LEN + len(_SIG_TAIL)

# kind -> topic leaf; uplink kinds come from devices, downlink from the gateway
TOPIC_OF = {
    "alarm": "event",
    "restore": "event",
    "cancel": "event",
    "test": "event",
    "fault": "event",
    "telemetry": "telemetry",
    "heartbeat": "heartbeat",
    "status": "status",
    "ack": "ack",
    "config": "config",
    "cmd": "cmd",
}
UPLINK = ("event", "telemetry", "heartbeat", "status")
DOWNLINK = ("ack", "config", "cmd")

ALARM_TYPES = (
    "fire", "medical", "security", "panic", "tamper", "low_battery",
    "residual_current", "over_temp", "over_current", "over_voltage",
    "under_voltage",
)
BUTTON_TYPES = ("fire", "medical", "security", "panic")
# kind -> allowed values of "type"
TYPES = {
    "alarm": ALARM_TYPES,
    "restore": ALARM_TYPES,
    "cancel": BUTTON_TYPES,
    "test": ("manual", "auto"),
    "fault": ("sensor", "config", "storage", "hardware"),
    "telemetry": ("periodic",),
    "heartbeat": ("periodic",),
    "status": ("online", "offline"),
    "ack": ("stored", "delivered", "acknowledged", "dispatched", "resolved", "nak"),
    "config": ("full",),
    "cmd": ("selftest", "locate", "reboot"),
}
# kind -> keys that "data" must carry
REQUIRED_DATA = {
    "ack": ("ref",),
    "fault": ("reason",),
}

# rejection reasons, in the order the checks run
R_OVERSIZED = "oversized"
R_MALFORMED = "malformed"
R_VERSION = "bad_version"
R_FIELD = "bad_field"
R_KIND = "unknown_kind"
R_TYPE = "unknown_type"
R_CANONICAL = "not_canonical"
R_TOPIC = "topic_mismatch"
R_DEVICE = "unknown_device"
R_SIGNATURE = "bad_signature"
R_SKEW = "clock_skew"
REASONS = (
    R_OVERSIZED, R_MALFORMED, R_VERSION, R_FIELD, R_KIND, R_TYPE,
    R_CANONICAL, R_TOPIC, R_DEVICE, R_SIGNATURE, R_SKEW,
)
# refusals that need the gateway's state (its de-dup stage), NAKed with the
# gateway's highest stored seq for the device in `hi` (docs/protocol.md)
R_CONFLICT = "seq_conflict"  # the seq is stored with different content
R_REPLAY = "replay"  # the seq is below the device's de-dup window

_FIELDS = ("v", "dev", "seq", "kind", "type", "ts", "age", "data", "sig")

# character sets, checked with str.strip (a C loop on both runtimes)
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ID_CHARS = _LOWER + "0123456789-"
_KEY_CHARS = _LOWER + "0123456789_"
_STR_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if c not in (0x22, 0x5C))


class Reject(ValueError):
    """A message that breaks protocol v1; .reason is one of REASONS."""

    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self):
        if self.detail:
            return self.reason + ": " + self.detail
        return self.reason


def topic(dev, leaf):
    return PREFIX + dev + "/" + leaf


def parse_topic(t):
    """'hg/v1/<dev>/<leaf>' -> (dev, leaf); Reject(topic_mismatch) otherwise."""
    if not t.startswith(PREFIX):
        raise Reject(R_TOPIC, "not under " + PREFIX)
    parts = t[len(PREFIX):].split("/")
    if len(parts) != 2 or not valid_id(parts[0]) or parts[1] not in TOPIC_OF.values():
        raise Reject(R_TOPIC, "bad topic " + t)
    return parts[0], parts[1]


def valid_id(s):
    """Device ids: 3-32 of [a-z0-9-], starting with a letter or digit."""
    if not isinstance(s, str) or not ID_LEN[0] <= len(s) <= ID_LEN[1] or s[0] == "-":
        return False
    return not s.strip(_ID_CHARS)


def _valid_key(k):
    if not 1 <= len(k) <= KEY_LEN or not "a" <= k[0] <= "z":
        return False
    return not k.strip(_KEY_CHARS)


def _valid_str(s):
    return len(s) <= MAX_STR and not s.strip(_STR_CHARS)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _value(x):
    if x is True:
        return "true"
    if x is False:
        return "false"
    if _is_int(x):
        if -MAX_INT <= x <= MAX_INT:
            return str(x)
        raise Reject(R_FIELD, "integer out of range")
    if isinstance(x, str):
        if _valid_str(x):
            return '"' + x + '"'
        raise Reject(R_FIELD, "string too long or has a forbidden character")
    raise Reject(R_FIELD, "data values are integers, booleans or short ASCII strings")


def _data(d):
    if not isinstance(d, dict) or len(d) > MAX_DATA_KEYS:
        raise Reject(R_FIELD, "data must be an object of at most 24 keys")
    parts = []
    for k in sorted(d):
        if not isinstance(k, str) or not _valid_key(k):
            raise Reject(R_FIELD, "bad data key")
        parts.append('"' + k + '":' + _value(d[k]))
    return "{" + ",".join(parts) + "}"


def body(dev, seq, kind, typ, age, data, ts=None):
    """The canonical signed bytes: fixed member order, no spaces, sorted data
    keys, "ts" present only when the sender's clock is synced."""
    if not valid_id(dev):
        raise Reject(R_FIELD, "bad device id")
    if not _is_int(seq) or not 1 <= seq <= MAX_SEQ:
        raise Reject(R_FIELD, "seq must be 1..2**31-1")
    if kind not in TYPES:
        raise Reject(R_KIND, str(kind))
    if typ not in TYPES[kind]:
        raise Reject(R_TYPE, str(typ))
    if not _is_int(age) or not 0 <= age <= MAX_AGE:
        raise Reject(R_FIELD, "age must be 0..one year in ms")
    for k in REQUIRED_DATA.get(kind, ()):
        if not isinstance(data, dict) or k not in data:
            raise Reject(R_FIELD, "data." + k + " is required for " + kind)
    s = '{"v":1,"dev":"' + dev + '","seq":' + str(seq)
    s += ',"kind":"' + kind + '","type":"' + typ + '"'
    if ts is not None:
        if not _is_int(ts) or not 0 <= ts <= MAX_INT:
            raise Reject(R_FIELD, "ts must be ms since 1970")
        s += ',"ts":' + str(ts)
    s += ',"age":' + str(age) + ',"data":' + _data(data) + "}"
    return s.encode()


def _pad_states(key):
    k = hashlib.sha256(key).digest() if len(key) > 64 else key
    k = k + b"\x00" * (64 - len(k))
    return (hashlib.sha256(bytes([b ^ 0x36 for b in k])),
            hashlib.sha256(bytes([b ^ 0x5C for b in k])))


def hmac_sha256(key, msg):
    """RFC 2104 HMAC over hashlib.sha256 (MicroPython ports lack hmac)."""
    if _COPY:
        pads = _pads.get(key)
        if pads is None:
            if len(_pads) >= 4096:  # bounded: a gateway serves many devices
                _pads.clear()
            pads = _pads[key] = _pad_states(key)
        inner, outer = pads[0].copy(), pads[1].copy()
    else:
        inner, outer = _pad_states(key)
    inner.update(msg)
    outer.update(inner.digest())
    return outer.digest()


def sign(key, signed):
    return hexlify(hmac_sha256(key, signed))


def encode(key, dev, seq, kind, typ, age, data, ts=None):
    """Wire bytes of one message, signed with the device's key."""
    b = body(dev, seq, kind, typ, age, data, ts)
    wire = b[:-1] + _SIG_HEAD + sign(key, b) + _SIG_TAIL
    if len(wire) > MAX_PAYLOAD:
        raise Reject(R_OVERSIZED, str(len(wire)) + " bytes")
    return wire


def _eq(a, b):
    # constant-time comparison of two equal-length byte strings
    if _c_eq is not None:
        return _c_eq(a, b)
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


def split(wire):
    """wire -> (signed bytes, hex signature); Reject(malformed) otherwise."""
    n = len(wire)
    if n <= _SUFFIX_LEN or wire[n - _SUFFIX_LEN:n - SIG_LEN - 2] != _SIG_HEAD:
        raise Reject(R_MALFORMED, "no trailing sig member")
    if wire[n - 2:] != _SIG_TAIL:
        raise Reject(R_MALFORMED, "no trailing sig member")
    sig = wire[n - SIG_LEN - 2:n - 2]
    for c in sig:
        if not (48 <= c <= 57 or 97 <= c <= 102):
            raise Reject(R_MALFORMED, "sig is not 64 lowercase hex digits")
    return wire[:n - _SUFFIX_LEN] + b"}", sig


def parse(wire):
    """Stateless structural checks, no key needed.  Returns (msg, signed, sig)
    where msg is a dict with every member but sig; raises Reject."""
    if len(wire) > MAX_PAYLOAD:
        raise Reject(R_OVERSIZED, str(len(wire)) + " bytes")
    signed, sig = split(wire)
    try:
        msg = json.loads(signed.decode())
    except (ValueError, UnicodeError):
        raise Reject(R_MALFORMED, "not UTF-8 JSON") from None
    if not isinstance(msg, dict):
        raise Reject(R_MALFORMED, "not a JSON object")
    if msg.get("v") != VERSION or not _is_int(msg.get("v")):
        raise Reject(R_VERSION, str(msg.get("v")))
    for k in msg:
        if k not in _FIELDS:
            raise Reject(R_FIELD, "unknown member " + str(k))
    for k in ("dev", "seq", "kind", "type", "age", "data"):
        if k not in msg:
            raise Reject(R_FIELD, "missing " + k)
    try:
        again = body(msg["dev"], msg["seq"], msg["kind"], msg["type"],
                     msg["age"], msg["data"], msg.get("ts"))
    except TypeError:
        raise Reject(R_FIELD, "wrong member type") from None
    if again != signed:
        raise Reject(R_CANONICAL, "bytes differ from the canonical encoding")
    return msg, signed, sig


def verify(topic_name, wire, key_of, now_ms=None, behind_ms=40000, ahead_ms=20000):
    """Full stateless check of one received message, in the documented order.

    key_of(dev) returns the device's key bytes or None when unknown.  When
    now_ms is given and the message carries "ts", the sender's clock at send
    time (ts + age) must lie within [now - behind, now + ahead].
    Returns the message dict; raises Reject."""
    msg, signed, sig = parse(wire)
    dev, leaf = parse_topic(topic_name)
    if dev != msg["dev"]:
        raise Reject(R_TOPIC, "topic device " + dev + " != " + msg["dev"])
    if TOPIC_OF[msg["kind"]] != leaf:
        raise Reject(R_TOPIC, msg["kind"] + " does not belong on " + leaf)
    key = key_of(dev)
    if key is None:
        raise Reject(R_DEVICE, dev)
    if not _eq(sign(key, signed), sig):
        raise Reject(R_SIGNATURE, dev)
    ts = msg.get("ts")
    if now_ms is not None and ts is not None:
        sent = ts + msg["age"]
        if sent < now_ms - behind_ms or sent > now_ms + ahead_ms:
            raise Reject(R_SKEW, "sender clock off by " + str(sent - now_ms) + " ms")
    return msg
