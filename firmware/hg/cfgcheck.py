# Device configuration checks: the defaults, validation of the per-device
# config file (schema v1, written at provisioning: docs/technician.md) and
# the flat remote-config update.  Imported by hg.config only while it
# validates (at boot, and when a remote config arrives) and unloaded after,
# so its code does not stay on the board's heap.  MicroPython subset; never
# raises for bad content: every problem is an error string that starts with
# the key it is about.
import json

from hg import protocol

# name -> (set default, lo, hi, hysteresis default, min_ms default, max min_ms,
#          remote code); integers in the unit the name ends with
THRESHOLDS = {
    "residual_ma": (300, 20, 1000, 30, 1000, 20000, "res"),
    "over_temp_c": (70, 40, 150, 5, 10000, 600000, "otemp"),
    "over_current_a": (32, 1, 100, 2, 5000, 600000, "ocur"),
    "over_voltage_v": (253, 231, 300, 5, 5000, 600000, "ovolt"),
    "under_voltage_v": (196, 100, 229, 5, 5000, 600000, "uvolt"),
}
# key -> (default, lo, hi) for the integer settings
INTS = {
    "heartbeat_s": (300, 10, 86400),
    "telemetry_s": (10, 1, 3600),
}
BUTTON = {"hold_ms": (1000, 0, 10000)}
TYPES = ("button", "sensor")
OPTIONAL_STR = ("household", "grid")
BROKER_KEYS = ("host", "port", "tls", "ca", "username", "password")


def defaults():
    th = {}
    for n in THRESHOLDS:
        t = THRESHOLDS[n]
        th[n] = {"set": t[0], "hyst": t[3], "min_ms": t[4]}
    return {"v": 1, "device_id": "", "type": "button", "board": "", "household": "",
            "grid": "", "wifi": {"ssid": "", "password": ""},
            "broker": {"host": "", "port": 8883, "tls": True, "ca": "",
                       "username": "", "password": ""},
            "key_hex": "", "heartbeat_s": INTS["heartbeat_s"][0],
            "telemetry_s": INTS["telemetry_s"][0],
            "button": {"hold_ms": BUTTON["hold_ms"][0], "double_press": False},
            "thresholds": th, "cal": {}}


def _int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _str(x, n=64):
    return isinstance(x, str) and len(x) <= n


def _range(errs, key, x, lo, hi):
    if not _int(x):
        errs.append(key + ": must be an integer")
        return False
    if not lo <= x <= hi:
        errs.append(key + ": " + str(x) + " is outside " + str(lo) + ".." + str(hi))
        return False
    return True


def _hex(s):
    return not s.strip("0123456789abcdef")


def _ident(cfg, raw, errs):
    d = raw.get("device_id")
    if not protocol.valid_id(d):
        errs.append("device_id: missing or not 3-32 of a-z 0-9 -")
    else:
        cfg["device_id"] = d
    k = raw.get("key_hex")
    if not isinstance(k, str) or len(k) % 2 or not 32 <= len(k) <= 128 or not _hex(k):
        errs.append("key_hex: missing or not 32-128 lowercase hex digits")
    else:
        cfg["key_hex"] = k
    if raw.get("v", 1) != 1:
        errs.append("v: schema " + str(raw.get("v")) + " is not 1")
    t = raw.get("type", "button")
    if t in TYPES:
        cfg["type"] = t
    else:
        errs.append("type: must be button or sensor")
    for k in ("board",) + OPTIONAL_STR:
        if k in raw:
            if _str(raw[k]):
                cfg[k] = raw[k]
            else:
                errs.append(k + ": must be a string of at most 64 characters")


def _section(raw, name, errs):
    sec = raw.get(name, {})
    if not isinstance(sec, dict):
        errs.append(name + ": must be an object")
        return {}
    return sec


def _unknown(sec, allowed, prefix, errs):
    for k in sorted(sec):
        if k not in allowed:
            errs.append(prefix + str(k) + ": unknown key")


def _net(cfg, raw, errs):
    w = _section(raw, "wifi", errs)
    _unknown(w, ("ssid", "password"), "wifi.", errs)
    for k in ("ssid", "password"):
        if k in w:
            if _str(w[k]):
                cfg["wifi"][k] = w[k]
            else:
                errs.append("wifi." + k + ": must be a string")
    b = _section(raw, "broker", errs)
    _unknown(b, BROKER_KEYS, "broker.", errs)
    c = cfg["broker"]
    for k in ("host", "ca", "username", "password"):
        if k in b:
            if _str(b[k], 128):
                c[k] = b[k]
            else:
                errs.append("broker." + k + ": must be a string")
    if not c["host"]:
        errs.append("broker.host: missing")
    if "port" in b and _range(errs, "broker.port", b["port"], 1, 65535):
        c["port"] = b["port"]
    if "tls" in b:
        if isinstance(b["tls"], bool):
            c["tls"] = b["tls"]
        else:
            errs.append("broker.tls: must be true or false")
    if not c["username"]:
        c["username"] = cfg["device_id"]


def _settings(cfg, raw, errs):
    for k in sorted(INTS):
        d = INTS[k]
        if k in raw and _range(errs, k, raw[k], d[1], d[2]):
            cfg[k] = raw[k]
    b = _section(raw, "button", errs)
    _unknown(b, ("hold_ms", "double_press"), "button.", errs)
    if "hold_ms" in b and _range(errs, "button.hold_ms", b["hold_ms"], 0, 10000):
        cfg["button"]["hold_ms"] = b["hold_ms"]
    if "double_press" in b:
        if isinstance(b["double_press"], bool):
            cfg["button"]["double_press"] = b["double_press"]
        else:
            errs.append("button.double_press: must be true or false")
    if cfg["button"]["hold_ms"] < 200 and not cfg["button"]["double_press"]:
        errs.append("button.hold_ms: under 200 ms needs double_press (accidental presses)")
    cal = _section(raw, "cal", errs)
    for k in sorted(cal):
        if not isinstance(k, str) or len(k) > 16 or not _int(cal[k]):
            errs.append("cal." + str(k) + ": must be an integer (key up to 16 chars)")
        else:
            cfg["cal"][k] = cal[k]


def _thresholds(cfg, raw, errs):
    th = _section(raw, "thresholds", errs)
    _unknown(th, THRESHOLDS, "thresholds.", errs)
    for n in sorted(th):
        if n not in THRESHOLDS:
            continue
        t, got, key = THRESHOLDS[n], th[n], "thresholds." + n
        if _int(got):  # a bare number is the set point
            got = {"set": got}
        if not isinstance(got, dict):
            errs.append(key + ": must be an object {set, hyst, min_ms}")
            continue
        _unknown(got, ("set", "hyst", "min_ms"), key + ".", errs)
        out = cfg["thresholds"][n]
        if "set" in got and _range(errs, key + ".set", got["set"], t[1], t[2]):
            out["set"] = got["set"]
        if "hyst" in got and _range(errs, key + ".hyst", got["hyst"], 0, out["set"] // 2):
            out["hyst"] = got["hyst"]
        if "min_ms" in got and _range(errs, key + ".min_ms", got["min_ms"], 0, t[5]):
            out["min_ms"] = got["min_ms"]


def validate(raw):
    """raw (a parsed JSON value) -> (cfg, errors): cfg is the defaults with
    every valid value of raw put in; errors name the key of each problem."""
    cfg = defaults()
    errs = []  # type: list
    if not isinstance(raw, dict):
        return cfg, ["config: must be a JSON object"]
    _unknown(raw, cfg, "", errs)
    _ident(cfg, raw, errs)
    _net(cfg, raw, errs)
    _settings(cfg, raw, errs)
    _thresholds(cfg, raw, errs)
    return cfg, errs


# --- remote config: flat keys (protocol data) -> config paths --------------

def remote_keys():
    """flat key -> path tuple, for the data of a `config` message."""
    m = {"heartbeat_s": ("heartbeat_s",), "telemetry_s": ("telemetry_s",),
         "hold_ms": ("button", "hold_ms"), "double_press": ("button", "double_press")}
    for n in THRESHOLDS:
        c = THRESHOLDS[n][6]
        m["t_" + c + "_set"] = ("thresholds", n, "set")
        m["t_" + c + "_hyst"] = ("thresholds", n, "hyst")
        m["t_" + c + "_min"] = ("thresholds", n, "min_ms")
    return m


def remote_update(cfg, data):
    """The config a remote `config` message asks for: (new cfg, errors).
    Keys not in data keep their value; identity, Wi-Fi and broker settings
    cannot be changed remotely.  cal_* keys set cal.<rest>."""
    new = json.loads(json.dumps(cfg))
    keys = remote_keys()
    errs = []
    for k in sorted(data):
        if k in keys:
            p = keys[k]
            d = new
            for part in p[:-1]:
                d = d[part]
            d[p[-1]] = data[k]
        elif k.startswith("cal_") and len(k) > 4:
            new["cal"][k[4:]] = data[k]
        else:
            errs.append(k + ": not a remote config key")
    if errs:
        return cfg, errs
    checked, errs = validate(new)
    return (cfg, errs) if errs else (checked, [])
