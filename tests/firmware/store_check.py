# Drives hg.config, hg.seqres and hg.outbox over a real file system directory
# and prints one JSON line per check.  MicroPython subset: the same file runs
# under the npm MicroPython and under CPython; tests/test_firmware_store.py
# requires both outputs to be identical and checks the values.
import json
import os

from hg import config, outbox, protocol, seqres

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
GOOD = {"v": 1, "device_id": "hg-b-0001", "type": "button", "board": "button-c3",
        "household": "H-1", "grid": "G-1", "wifi": {"ssid": "home", "password": "pw"},
        "broker": {"host": "127.0.0.1", "port": 1883, "tls": False, "ca": "",
                   "username": "hg-b-0001", "password": "secret"},
        "key_hex": KEY, "heartbeat_s": 60, "thresholds": {}}


def _j(x):
    # canonical JSON: the runtimes differ in dict order and spacing
    if isinstance(x, dict):
        return "{" + ",".join(json.dumps(k) + ":" + _j(x[k]) for k in sorted(x)) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ",".join(_j(v) for v in x) + "]"
    return json.dumps(x)


def out(name, **kw):
    kw["check"] = name
    print(_j(kw))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def bad(raw):
    return config.validate(raw)[1]


def with_(**kw):
    d = json.loads(json.dumps(GOOD))
    for k in kw:
        d[k] = kw[k]
    return d


def check_config(root):
    cfg, errs = config.validate(GOOD)
    out("config good", errors=errs, residual=cfg["thresholds"]["residual_ma"],
        telemetry_s=cfg["telemetry_s"], hold_ms=cfg["button"]["hold_ms"],
        username=cfg["broker"]["username"])
    out("config not an object", errors=bad([1]))
    out("config bad identity", errors=bad(with_(device_id="-x", key_hex="ABC", v=2)))
    out("config bad broker", errors=bad(with_(broker={"port": "x", "tls": 1, "hots": "h"})))
    out("config bad settings", errors=bad(with_(heartbeat_s=5, telemetry_s=True,
                                                 button={"hold_ms": 100}, cal={"r_gain": 1.5})))
    th = {"residual_ma": {"set": 10, "hyst": 5}, "over_temp_c": 80,
          "under_voltage_v": {"set": 200, "hyst": 150, "min_ms": 5, "x": 1},
          "leak": 3}
    cfg, errs = config.validate(with_(thresholds=th))
    out("config bad thresholds", errors=errs, kept=cfg["thresholds"]["residual_ma"],
        temp=cfg["thresholds"]["over_temp_c"])
    p = config.join(root, "c.json")
    out("config missing file", errors=config.load(p)[1])
    write(p, b"{not json")
    out("config not json", errors=config.load(p)[1])
    write(p, json.dumps(GOOD).encode())
    out("config load", errors=config.load(p)[1], dev=config.load(p)[0]["device_id"])
    cfg = config.validate(GOOD)[0]
    new, errs = config.remote_update(cfg, {"t_res_set": 100, "telemetry_s": 20,
                                           "double_press": True, "cal_r_gain_num": 7})
    out("remote ok", errors=errs, residual=new["thresholds"]["residual_ma"],
        telemetry_s=new["telemetry_s"], cal=new["cal"], old=cfg["telemetry_s"])
    out("remote bad", errors=config.remote_update(cfg, {"t_res_set": 5000, "key_hex": "00"})[1])
    out("remote out of range", errors=config.remote_update(cfg, {"t_uvolt_min": -1})[1])


def check_trial(root):
    p = config.join(root, config.FILE)
    config.write_atomic(p, config.dumps(config.validate(GOOD)[0]))
    config.write_atomic(p, config.dumps(config.validate(GOOD)[0]))  # over an existing file
    cfg = config.load(p)[0]
    new = config.remote_update(cfg, {"telemetry_s": 30})[0]
    config.stage(root, new, cfg)
    out("stage", trial=config.in_trial(root), now=config.load(p)[0]["telemetry_s"],
        prev=config.load(config.join(root, config.PREV))[0]["telemetry_s"])
    cfg, errs = config.rollback(root)
    out("rollback", trial=config.in_trial(root), now=cfg["telemetry_s"], errors=errs)
    config.stage(root, new, cfg)
    config.commit(root)
    out("commit", trial=config.in_trial(root), now=config.load(p)[0]["telemetry_s"],
        files=sorted(n for n in os.listdir(root) if n.startswith("config")))


def check_seqres(root):
    p = config.join(root, "seq")
    s = seqres.SeqRes(p, block=256)
    first = [s.next() for _ in range(3)]
    for _ in range(597):
        s.next()
    out("seq first boot", first=first, last=s.last, writes=s.writes, file=read(p).decode())
    s = seqres.SeqRes(p, block=256)
    out("seq after reboot", next=s.next(), writes=s.writes, file=read(p).decode())
    s = seqres.SeqRes(p, block=256, floor=5000)
    out("seq floor", next=s.next())
    write(p, b"\xff\x00garbage")
    s = seqres.SeqRes(p)
    out("seq corrupt", error=s.error, next=s.next())
    write(p, str(seqres.LIMIT - 1).encode())
    s = seqres.SeqRes(p)
    last = s.next()
    try:
        s.next()
        r = "no error"
    except seqres.Exhausted as e:
        r = "Exhausted " + str(e)
    out("seq limit", last=last, limit=seqres.LIMIT, result=r)


def wire(seq, kind="alarm", typ="fire"):
    k = bytes(range(32))
    return protocol.encode(k, "hg-b-0001", seq, kind, typ, 0, {"btn": "a"})


def check_outbox(root):
    d = config.join(root, "obx")
    ob = outbox.Outbox(d, max_count=4, max_bytes=4096)
    for s in (3, 1, 2):
        ob.put(s, "alarm", wire(s))
    out("outbox order", pending=ob.pending(), same=ob.get(1) == wire(1), n=len(ob))
    write(d + "/9.m.tmp", b"alarm\n{\"v\":1,\"de")  # a power cut mid-write
    ob = outbox.Outbox(d, max_count=4, max_bytes=4096)
    out("outbox reopen", pending=ob.pending(), cleaned=ob.cleaned, error=ob.last_error,
        same=[ob.get(s) == wire(s) for s in ob.pending()], files=sorted(os.listdir(d)))
    ob.remove(1)
    ob.remove(2)
    ob.put(4, "telemetry", wire(4, "telemetry", "periodic"))
    ob.put(5, "heartbeat", wire(5, "heartbeat", "periodic"))
    ob.put(6, "alarm", wire(6))
    ob.put(7, "alarm", wire(7))  # full: the oldest light message goes
    out("outbox sheds telemetry", pending=ob.pending(), shed=ob.shed, error=ob.last_error)
    r = ob.put(8, "telemetry", wire(8, "telemetry", "periodic"))  # sheds heartbeat 5
    out("outbox light replaces light", stored=r, pending=ob.pending(), shed=ob.shed)
    ob.put(9, "alarm", wire(9))
    r = ob.put(10, "telemetry", wire(10, "telemetry", "periodic"))
    out("outbox light shed itself", stored=r, pending=ob.pending(), shed=ob.shed,
        error=ob.last_error)
    try:
        ob.put(11, "alarm", wire(11))
        r = "stored"
    except outbox.Full as e:
        r = "Full " + str(e)
    out("outbox events never shed", result=r, pending=ob.pending(),
        files=sorted(os.listdir(d)))
    ob2 = outbox.Outbox(config.join(root, "obx2"), max_count=100, max_bytes=700)
    for s in (1, 2, 3):
        ob2.put(s, "telemetry", wire(s, "telemetry", "periodic"))
    ob2.put(4, "alarm", wire(4))
    out("outbox byte bound", pending=ob2.pending(), bytes=ob2.bytes, shed=ob2.shed)
    ob2.put(4, "alarm", wire(4, "alarm", "medical"))  # rewritten in place
    out("outbox rewrite", pending=ob2.pending(), medical=b"medical" in ob2.get(4),
        highest=ob2.highest())


def main(root):
    check_config(root)
    check_trial(root)
    check_seqres(root)
    check_outbox(root)
