# The resilience layer over hg.mqtt: connects and reconnects with capped
# exponential backoff and jitter, keeps the session alive, detects half-open
# links, re-subscribes, announces `online`, and re-sends unacknowledged QoS 1
# publishes with DUP.  Apps call poll(now_ms) from their loop and publish();
# neither raises for a transient outage nor waits for the network: a
# connection attempt is carried on by successive polls.  MicroPython
# subset; no asyncio.
import os


def _rand16():
    b = os.urandom(2)
    return b[0] << 8 | b[1]


def _err(e):
    a = e.args
    if len(a) > 1:
        return str(a[0]) + " " + str(a[1])
    return type(e).__name__ + (" " + str(a[0]) if a else "")


class Link:
    """Keeps one MQTTClient connected.  will and online are (topic, fn):
    fn() returns the payload (signed with a fresh seq) for each connection;
    will is the retained QoS 1 last will, online is published retained
    after each connect.  subs is [(filter, qos), ...].  log(text) is told
    each new cause of failure once (print by default)."""

    def __init__(self, client, subs=(), will=None, online=None, rand=None,
                 backoff_ms=(1000, 120000), puback_ms=15000, max_queue=32,
                 max_inflight=8, stable_ms=60000, log=print, refresh=None,
                 urgent=None, urgent_cap_ms=8000):
        self.client = client
        # refresh(topic, payload) -> payload: what a publish that waited
        # unacknowledged says when it goes again (its age); urgent() is true
        # while the app holds something that must go (an alarm): the backoff
        # is then capped at urgent_cap_ms, not cap_ms
        self.refresh = refresh
        self.urgent = urgent
        self.urgent_cap_ms = urgent_cap_ms
        self.subs = list(subs)
        self.will = will
        self.online = online
        self.rand = rand or _rand16
        self.base_ms, self.cap_ms = backoff_ms
        self.puback_ms = puback_ms
        self.max_queue = max_queue
        self.max_inflight = max_inflight
        self.stable_ms = stable_ms
        self.log = log
        self.connected = False
        self.connects = 0  # successful connects
        self.failures = 0  # failed connect attempts
        self.drops = 0  # established connections lost
        self.resends = 0  # QoS 1 publishes sent again with DUP
        self.dropped = 0  # publishes given up (QoS 0 offline, queue full)
        self.last_error = None
        self.next_try = 0  # ms: when the next connect attempt is due
        self._since = 0  # ms: when the wait for next_try began
        self._capped = False  # that wait is already within the urgent cap
        self._fails = 0  # consecutive failures, drives the backoff
        self._logged = None  # the cause last told to log()
        self._up = 0
        self._now = 0
        self._queue = []

    def delay(self, k, cap_ms=None):
        """Backoff before attempt k+1: base * 2**k capped (at cap_ms, else
        the link's cap), with "equal jitter": half fixed, half random, so
        attempts never synchronise."""
        d = min(cap_ms or self.cap_ms, self.base_ms << min(k, 20))
        h = d // 2
        return h + self.rand() * (d - h) // 65536

    def hurry(self):
        """Something urgent was just queued (an alarm): a wait for the next
        attempt that began while idle, with the long backoff, is cut to what
        the urgent cap allows from its start (jitter kept)."""
        if self.connected or self.client.sock is not None or self._capped:
            return
        self._capped = True
        cap = min(self.urgent_cap_ms, self.cap_ms)
        self.next_try = min(self.next_try, self._since + self.delay(max(self._fails - 1, 0), cap))

    def pending(self):
        """QoS 1 publishes not yet acknowledged by the broker."""
        return len(self._queue) + len(self.client.inflight)

    @property
    def connecting(self):
        return not self.connected and self.client.sock is not None

    def poll(self, now_ms):
        """Do whatever is due, without waiting; returns .connected."""
        self._now = now_ms
        c = self.client
        if c.sock is None:
            if self.connected:  # closed under us: a lost link, not one to trust
                self._lost(now_ms, OSError("connection closed"))
                return False
            if now_ms < self.next_try:
                return False
            if not self._start(now_ms):
                return False
        try:
            c.poll(now_ms)
            if not self.connected:
                if c.connected:
                    self._established(now_ms)
                return self.connected
            self._keepalive(now_ms)
            self._retry(now_ms)
            self._flush(now_ms)
        except Exception as e:  # any link trouble; a bug here must not spin either
            if self.connected:
                self._lost(now_ms, e)
            else:
                self._failed(now_ms, e)
        return self.connected

    def publish(self, topic, payload, qos=0, retain=False, now_ms=None):
        """True when handed to the connection now.  QoS 1 is otherwise queued
        in RAM until connected; QoS 0 while offline is dropped (counted)."""
        now = self._now if now_ms is None else now_ms
        c = self.client
        if qos and (not self.connected or self._queue
                    or len(c.inflight) >= self.max_inflight):
            if len(self._queue) >= self.max_queue:
                self._drop("queue full, dropped " + topic)
                return False
            self._queue.append((topic, payload, retain))
            return False
        if not self.connected:
            self._drop("offline, dropped QoS 0 " + topic)
            return False
        try:
            c.publish(topic, payload, qos, retain, now)
            return True
        except OSError as e:
            self._lost(now, e)
            return False

    def close(self, now_ms=None):
        """DISCONNECT cleanly (the broker then discards the will)."""
        if self.connected:
            self.connected = False
            try:
                self.client.disconnect(self._now if now_ms is None else now_ms)
            except OSError:
                pass
        else:
            self.client.close()

    def _drop(self, why):
        self.dropped += 1
        self.last_error = why

    def _start(self, now):
        """Begin an attempt: open the transport, send CONNECT."""
        try:
            will = (self.will[0], self.will[1]()) if self.will else None
            self.client.connect(now, will)
            return True
        except Exception as e:  # refused at once, DNS, TLS set-up, ...
            self._failed(now, e)
            return False

    def _established(self, now):
        c = self.client
        self.connected = True
        self._up = now
        self.connects += 1
        if self._logged is not None:
            self.log("link: connected")
            self._logged = None
        for pid in self._unacked():
            self._resend(pid, now)
        if self.subs:
            c.subscribe(self.subs, now)
        if self.online:
            c.publish(self.online[0], self.online[1](), 1, True, now)
        self._flush(now)

    def _failed(self, now, e):
        self.failures += 1
        self._retry_later(now, e)

    def _lost(self, now, e):
        self.drops += 1
        self.connected = False
        if now - self._up >= self.stable_ms:
            self._fails = 0
        self._retry_later(now, e)

    def _retry_later(self, now, e):
        self.client.close()
        self.last_error = _err(e)
        # an alarm waits: a flapping link must not hold it for minutes
        cap = min(self.urgent_cap_ms, self.cap_ms) if self.urgent and self.urgent() else None
        self.next_try = now + self.delay(self._fails, cap)
        self._since, self._capped = now, cap is not None
        self._fails += 1
        if self.last_error != self._logged:
            self._logged = self.last_error
            self.log("link: " + self.last_error + " (retrying with backoff)")

    def _unacked(self):
        f = self.client.inflight
        return sorted(f, key=lambda pid: f[pid][4])

    def _keepalive(self, now):
        c = self.client
        ka = c.keepalive * 1000
        if not ka:
            return
        if now - c.last_rx > ka * 3 // 2:
            raise OSError("half-open: nothing from the broker for " + str(now - c.last_rx) + " ms")
        if now - c.last_tx >= ka or (now - c.last_rx >= ka and not c.ping_out):
            c.ping(now)

    def _retry(self, now):
        f = self.client.inflight
        for pid in self._unacked():
            if now - f[pid][3] >= self.puback_ms:
                if self.client.last_rx <= f[pid][3]:
                    # not a byte since it went: the link is dead, not slow;
                    # waiting for 1.5 x keepalive held alarms ~90 s
                    raise OSError("half-open: no PUBACK nor anything else for "
                                  + str(now - f[pid][3]) + " ms")
                self._resend(pid, now)

    def _resend(self, pid, now):
        m = self.client.inflight[pid]
        if self.refresh:
            m[1] = self.refresh(m[0], m[1])
        self.client.resend(pid, now)
        self.resends += 1

    def _flush(self, now):
        q = self._queue
        while q and len(self.client.inflight) < self.max_inflight:
            t, p, r = q.pop(0)
            self.client.publish(t, p, 1, r, now)
