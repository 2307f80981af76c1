"""Scale-out: the de-dup state in a real Redis, and two gateway processes in
one MQTT shared-subscription group delivering every alarm exactly once to
a real HTTP centre."""

from __future__ import annotations

import random
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from gateway import dedup
from gateway.dedup_redis import RedisDedup
from gateway.source import topics
from hg import protocol
from tests.harness.proc import wait_until
from tests.test_gateway_flow import WAIT, Centre, Device, Gateway


def test_redis_state_decides_like_the_local_one_and_is_shared(redis_server) -> None:  # noqa: ANN001
    dev = f"hg-b-{secrets.token_hex(4)}"
    local = dedup.LocalDedup(64)
    one, two = RedisDedup(redis_server.url, 64), RedisDedup(redis_server.url, 64)
    rnd = random.Random(4)
    seq = 100
    for _ in range(600):
        seq = max(1, seq + rnd.choice([-70, -40, -3, -1, 0, 1, 1, 2, 5, 90]))
        verdict = local.check(dev, seq)
        assert one.check(dev, seq) == verdict == two.check(dev, seq), seq
        if verdict == dedup.NEW:
            local.remember(dev, seq)
            rnd.choice([one, two]).remember(dev, seq)
    one.close()
    two.close()


def test_check_remember_is_one_step_of_check_then_remember(redis_server) -> None:  # noqa: ANN001
    dev = f"hg-s-{secrets.token_hex(4)}"
    local, shared = dedup.LocalDedup(32), RedisDedup(redis_server.url, 32)
    rnd = random.Random(9)
    seq = 50
    for _ in range(300):
        seq = max(1, seq + rnd.choice([-40, -2, -1, 0, 1, 1, 3, 50]))
        assert shared.check_remember(dev, seq) == local.check_remember(dev, seq), seq
    assert shared.check(dev, seq) == local.check(dev, seq)
    shared.close()


def test_redis_state_is_refilled_from_the_store(redis_server) -> None:  # noqa: ANN001
    dev = f"hg-b-{secrets.token_hex(4)}"
    state = RedisDedup(redis_server.url, 64, stored=[(dev, 5), (dev, 9)])
    assert [state.check(dev, s) for s in (5, 6, 9, 10)] == [
        dedup.DUPLICATE, dedup.NEW, dedup.DUPLICATE, dedup.NEW]
    state.close()


def test_share_group_topics() -> None:
    assert topics("") == [(f"hg/v1/+/{leaf}", 1)
                          for leaf in ("event", "telemetry", "heartbeat", "status")]
    assert topics("gws") == [("$share/gws/hg/v1/+/event", 1),
                             ("$share/gws/hg/v1/+/telemetry", 1),
                             ("hg/v1/+/heartbeat", 1), ("hg/v1/+/status", 1)]


def shared_gateway(broker, tmp: Path, centre: Centre, keys: dict[str, bytes], name: str,  # noqa: ANN001
                   redis_url: str, extra: str = "") -> Gateway:
    tmp.mkdir()
    gw = Gateway(broker, tmp, centre, keys)
    text = gw.config.read_text().replace('"gw-flow"', f'"{name}"')
    # each member of a share group has its own broker account (sessions are
    # kept by username: docs/broker.md, Client ids)
    text = text.replace(f'username = "{broker.gateway_user}"', f'username = "{name}"')
    text = text.replace(f'password = "{broker.gateway_password}"',
                        f'password = "{broker.add_gateway(name)}"')
    text = text.replace("[mqtt]\n", '[mqtt]\nshare_group = "hg-gateways"\n')
    gw.config.write_text(text + f'\n[dedup]\nbackend = "redis"\nredis_url = "{redis_url}"\n'
                         + extra)
    gw.start()
    return gw


def share_pair(broker, tmp: Path, redis_url: str,  # noqa: ANN001
               extra: str = "") -> tuple[Centre, list[Gateway], Device]:
    """A centre, gateways gw-a and gw-b in one share group with Redis
    de-dup, and a fresh button device both of them know."""
    button = f"hg-b-{secrets.token_hex(3)}"
    key = secrets.token_bytes(32)
    centre = Centre().start()
    gws = [shared_gateway(broker, tmp / n, centre, {button: key}, n, redis_url, extra=extra)
           for n in ("gw-a", "gw-b")]
    return centre, gws, Device(broker, button, key)


def test_two_gateways_in_a_share_group_deliver_every_alarm_once(
        mosquitto, redis_server, tmp_path: Path) -> None:  # noqa: ANN001
    centre, gws, dev = share_pair(mosquitto, tmp_path, redis_server.url)
    button = dev.id
    try:
        for seq in range(1, 31):
            dev.publish(dev.wire(seq))
        wait_until(lambda: all("stored" in dev.acked(s) for s in range(1, 31)), WAIT,
                   "30 stored acks")
        # resends, shifted by one so that (round robin) most reach the other gateway
        for seq in range(2, 12):
            dev.publish(dev.wire(seq))
        # each gateway keeps its own order; between the two the centre sees them interleaved
        wait_until(lambda: sorted(centre.seqs(button)) == list(range(1, 31)), WAIT,
                   "30 alarms at the centre")
        wait_until(lambda: sum(g.logs().count("acked again") for g in gws) == 10, WAIT,
                   "10 duplicates acked again")
        assert sorted(centre.posts(button)) == list(range(1, 31))  # none forwarded twice
        stored = [g.logs().count(f"stored device={button}") for g in gws]
        assert sum(stored) == 30 and min(stored) > 0, stored  # both gateways took a share
    finally:
        dev.stop()
        for g in gws:
            g.stop()
        centre.stop()


def test_share_group_raises_one_offline_and_one_online_per_device(
        mosquitto, redis_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Waits on events only: each gateway's decision (raised, or followed
    another's) in its log, and what reached the centre; no wall-clock slack."""
    # a window long enough that a heartbeat held up by a busy machine is not late
    supervision = '\n[supervision]\nwindows = { button = 10.0 }\ncheck_s = 0.3\n'
    centre, gws, dev = share_pair(mosquitto, tmp_path, redis_server.url, supervision)
    button, key = dev.id, dev.key

    def heartbeat(seq: int) -> None:
        dev.publish(protocol.encode(key, button, seq, "heartbeat", "periodic", 0,
                                    {"rssi": -60}, int(time.time() * 1000)), "heartbeat")

    def states() -> list[str]:
        with centre.lock:
            return [e["type"] for e in centre.accepted
                    if e["device"] == button and e["kind"] == "supervision"]

    def decided(typ: str) -> tuple[list[int], list[int]]:
        """Per gateway: how often it raised `typ` for the button, how often it followed."""
        logs = [g.logs() for g in gws]
        return ([t.count(f"supervision {typ} device={button} seq") for t in logs],
                [t.count(f"supervision {typ} device={button} raised by another") for t in logs])

    def settled(typ: str) -> bool:
        raised, followed = decided(typ)
        return sum(raised) + sum(followed) >= 2  # both gateways have decided

    try:
        heartbeat(1)  # every gateway hears it (heartbeats are not shared out)
        wait_until(lambda: settled("offline"), 4 * WAIT, f"both gateways to decide offline: "
                   f"{decided('offline')}")
        offline = decided("offline")  # the button stays offline until it is heard
        wait_until(lambda: states() == ["offline"], 4 * WAIT, f"one offline at the centre: "
                   f"{states()}")
        heartbeat(2)
        wait_until(lambda: settled("online"), 4 * WAIT, f"both gateways to decide online: "
                   f"{decided('online')}")
        online = decided("online")
        # (silent again, it goes offline again a window later: only the start is checked)
        wait_until(lambda: states()[:2] == ["offline", "online"], 4 * WAIT,
                   f"one online after it: {states()}\n" + "\n".join(g.logs()[-3000:] for g in gws))
        assert states().count("online") == 1
        for raised, followed in (offline, online):  # one gateway raised, the other followed
            assert sorted(raised) == [0, 1] and sorted(followed) == [0, 1], (offline, online)
    finally:
        dev.stop()
        for g in gws:
            g.stop()
        centre.stop()


def _stored_telemetry(gw: Gateway, device: str) -> set[int]:
    with sqlite3.connect(gw.tmp / "gw" / "gateway.db") as db:
        return {s for (s,) in db.execute("SELECT seq FROM telemetry WHERE device = ?", (device,))}


def test_kill_9_of_one_member_mid_stream_loses_no_alarm_or_point_and_doubles_no_alarm(
        mosquitto, redis_server, tmp_path: Path) -> None:  # noqa: ANN001
    """A stream of alarms and telemetry through two gateways; one is killed
    (SIGKILL) while it is taking its share, and started again. Every alarm
    reaches the centre once and is acked `stored`; every point is stored."""
    centre, gws, dev = share_pair(mosquitto, tmp_path, redis_server.url)
    button, key = dev.id, dev.key
    seqs = range(1, 1001)
    alarms = [s for s in seqs if s % 5 == 0]

    def message(seq: int) -> tuple[str, bytes]:
        if seq in alarms:
            return "event", dev.wire(seq)
        return "telemetry", protocol.encode(key, button, seq, "telemetry", "periodic", 0,
                                            {"ma": seq}, int(time.time() * 1000))

    sent: list = []

    def stream() -> None:  # a second or more: the kill comes while it flows
        for leaf, wire in map(message, seqs):
            sent.append(dev.client.publish(protocol.topic(button, leaf), wire, qos=1))
            time.sleep(0.001)

    try:
        publisher = threading.Thread(target=stream)
        publisher.start()
        wait_until(lambda: len(centre.seqs(button)) >= 10, WAIT, "the stream under way")
        gws[0].kill()  # mid-stream: messages of its share in flight and queued for it
        publisher.join(2 * WAIT)
        for info in sent:
            info.wait_for_publish(WAIT)
        assert len(sent) == len(seqs)
        gws[0].start()  # its session: what it had not PUBACKed comes again
        wait_until(lambda: _stored_telemetry(gws[0], button) | _stored_telemetry(
            gws[1], button) == {s for s in seqs if s not in alarms}, 2 * WAIT,
            "every point stored")
        for seq in alarms:  # the device resends what has no `stored` ack yet
            if "stored" not in dev.acked(seq):
                dev.publish(dev.wire(seq))
        wait_until(lambda: sorted(centre.seqs(button)) == alarms, 2 * WAIT,
                   f"{len(alarms)} alarms at the centre")
        wait_until(lambda: all("stored" in dev.acked(s) for s in alarms), WAIT, "stored acks")
        assert len(centre.seqs(button)) == len(alarms)  # once each
        assert all(g.logs().count(f"stored device={button}") > 0 for g in gws)  # both took part
        # the restarted member took what had waited for it: the kill was mid-stream
        assert (gws[0].tmp / "gateway-2.log").read_text().count(f"stored device={button}") > 0
    finally:
        dev.stop()
        for g in gws:
            g.stop()
        centre.stop()
