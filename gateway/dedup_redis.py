"""De-duplication state in Redis, shared by several gateways (scale-out).

The same window as dedup.py, kept per device in two keys:

    hg:dedup:{<device>}:hi     the highest remembered seq
    hg:dedup:{<device>}:bits   a ring of `window` bits: bit seq % window set
                               when seq (within the window) is remembered
    hg:dedup:{<device>}:dig    a hash, field seq % window = "<seq>:<digest>" for
                               each remembered event a device waits an ack for
                               (alarms etc.; telemetry, heartbeats and status
                               keep none), so a gateway whose own store never
                               saw the event can still tell a resend from a
                               conflict (dedup.py)

check() and remember() are Lua scripts, so each runs atomically in Redis;
remember() runs only after the gateway's own store has committed, as with
the local state. Two gateways that both see the same (device, seq) before
either has remembered it both store and forward it: the centre is
idempotent on (device, seq) and answers the second `duplicate`. A Redis
error propagates: the message is not acknowledged and is retried (source.py).
At start a gateway remembers what its own store holds, so an emptied Redis
is refilled. Every gateway sharing the state must use the same window.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from gateway import dedup

PREFIX = "hg:dedup:"
_CHECK = """
local hi = tonumber(redis.call('GET', KEYS[1]))
local seq, w = tonumber(ARGV[1]), tonumber(ARGV[2])
if not hi or seq > hi then return 'new' end
if hi - seq >= w then return 'replay' end
if redis.call('GETBIT', KEYS[2], seq % w) == 1 then return 'duplicate' end
return 'new'
"""
_REMEMBER = """
local hi = tonumber(redis.call('GET', KEYS[1]))
local seq, w = tonumber(ARGV[1]), tonumber(ARGV[2])
if not hi then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[1], seq)
elseif seq > hi then
  if seq - hi >= w then
    redis.call('DEL', KEYS[2])
  else
    for s = hi + 1, seq - 1 do redis.call('SETBIT', KEYS[2], s % w, 0) end
  end
  redis.call('SET', KEYS[1], seq)
elseif hi - seq >= w then
  return 0
end
redis.call('SETBIT', KEYS[2], seq % w, 1)
if ARGV[3] and ARGV[3] ~= '' then redis.call('HSET', KEYS[3], seq % w, seq .. ':' .. ARGV[3]) end
return 1
"""


# check, and remember when new, in one round trip (the telemetry path, which
# remembers a point before its commit: see pipeline.py)
_CHECK_REMEMBER = "local v = (function()\n" + _CHECK + "\nend)()\n" + \
    "if v == 'new' then (function()\n" + _REMEMBER + "\nend)() end\nreturn v\n"


def _keys(device: str) -> list[str]:
    base = f"{PREFIX}{{{device}}}"  # one hash slot per device on a Redis cluster
    return [base + ":hi", base + ":bits", base + ":dig"]


class RedisDedup:
    shared = True

    def __init__(self, url: str, window: int,
                 stored: Iterable[tuple[str, int] | tuple[str, int, str | None]] = ()) -> None:
        self.window = window
        self.redis = redis.Redis.from_url(url, socket_timeout=5.0, decode_responses=True)
        self._check = self.redis.register_script(_CHECK)
        self._remember = self.redis.register_script(_REMEMBER)
        self._check_remember = self.redis.register_script(_CHECK_REMEMBER)
        pipe = self.redis.pipeline(transaction=False)
        for n, item in enumerate(stored, 1):
            device, seq = item[0], item[1]
            content = item[2] if len(item) > 2 else None
            self._remember(keys=_keys(device), args=[seq, window, content or ""], client=pipe)
            if n % 1000 == 0:
                pipe.execute()
        pipe.execute()

    def check(self, device: str, seq: int) -> str:
        verdict = str(self._check(keys=_keys(device), args=[seq, self.window]))
        assert verdict in (dedup.NEW, dedup.DUPLICATE, dedup.REPLAY), verdict
        return verdict

    def remember(self, device: str, seq: int, content: str | None = None) -> None:
        self._remember(keys=_keys(device), args=[seq, self.window, content or ""])

    def highest(self, device: str) -> int:
        hi = self.redis.get(_keys(device)[0])
        return int(hi) if hi is not None else 0

    def content(self, device: str, seq: int) -> str | None:
        value = self.redis.hget(_keys(device)[2], str(seq % self.window))
        if not isinstance(value, str):
            return None
        stored, _, content = value.partition(":")
        return content if stored == str(seq) else None

    def check_remember(self, device: str, seq: int) -> str:
        """check(), then remember() when NEW, atomically in one round trip."""
        verdict = str(self._check_remember(keys=_keys(device), args=[seq, self.window]))
        assert verdict in (dedup.NEW, dedup.DUPLICATE, dedup.REPLAY), verdict
        return verdict

    def close(self) -> None:
        self.redis.close()
