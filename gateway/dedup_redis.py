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
                               conflict (dedup.py); for an event without a
                               device time (no `ts`) "<digest>@<event time>",
                               the time compared within a tolerance
                               (pipeline.py _same_time)

check() and remember() are Lua scripts, so each runs atomically in Redis;
remember() runs only after the gateway's own store has committed, as with
the local state. The lanes check and remember a whole batch at once
(check_many, remember_many): one script call per device of the batch, all
of them pipelined in one round trip. Two gateways that both see the same (device, seq) before
either has remembered it both store and forward it: the centre is
idempotent on (device, seq) and answers the second `duplicate`. A Redis
error propagates: the message is not acknowledged and is retried (source.py).
At start a gateway remembers what its own store holds, so an emptied Redis
is refilled. Every gateway sharing the state must use the same window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis
from redis.commands.core import Script

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
# the body of remember(), a Lua function of (seq, window, content); content
# is the digest to keep, or '' for none
_REMEMBER_FN = """
local function remember(seq, w, content)
  local hi = tonumber(redis.call('GET', KEYS[1]))
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
  if content and content ~= '' then redis.call('HSET', KEYS[3], seq % w, seq .. ':' .. content) end
  return 1
end
"""
_REMEMBER = _REMEMBER_FN + "return remember(tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])\n"

# check, and remember when new, in one round trip (the telemetry path without
# a lane, which remembers a point before its commit: see pipeline.py)
_CHECK_REMEMBER = _REMEMBER_FN + "local v = (function()\n" + _CHECK + "\nend)()\n" + \
    "if v == 'new' then remember(tonumber(ARGV[1]), tonumber(ARGV[2]), nil) end\nreturn v\n"

# one device's seqs in a batch: ARGV = window, seq, seq, ...; a verdict per seq
_CHECK_MANY = """
local hi = tonumber(redis.call('GET', KEYS[1]))
local w = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do
  local seq = tonumber(ARGV[i])
  local v = 'new'
  if not hi or seq > hi then v = 'new'
  elseif hi - seq >= w then v = 'replay'
  elseif redis.call('GETBIT', KEYS[2], seq % w) == 1 then v = 'duplicate' end
  out[#out + 1] = v
end
return out
"""
# one device's committed seqs: ARGV = window, seq, content, seq, content, ...
_REMEMBER_MANY = _REMEMBER_FN + """
local w = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do remember(tonumber(ARGV[i]), w, ARGV[i + 1]) end
return 1
"""


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
        self._check_many = self.redis.register_script(_CHECK_MANY)
        self._remember_many = self.redis.register_script(_REMEMBER_MANY)
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

    def check_many(self, pairs: Sequence[tuple[str, int]]) -> list[str]:
        """check() for each (device, seq) against the state as it is, in one
        round trip: one script call per device, pipelined."""
        by_device: dict[str, list[int]] = {}
        for n, (device, _) in enumerate(pairs):
            by_device.setdefault(device, []).append(n)
        replies = self._pipelined(self._check_many, [
            (_keys(device), [self.window, *(pairs[n][1] for n in ns)])
            for device, ns in by_device.items()])
        verdicts = [""] * len(pairs)
        for ns, reply in zip(by_device.values(), replies, strict=True):
            for n, verdict in zip(ns, reply, strict=True):
                verdicts[n] = str(verdict)
        assert all(v in (dedup.NEW, dedup.DUPLICATE, dedup.REPLAY) for v in verdicts), verdicts
        return verdicts

    def remember_many(self, items: Sequence[tuple[str, int, str | None]]) -> None:
        """remember() each (device, seq, content), in order, in one round trip."""
        args: dict[str, list[int | str]] = {}
        for device, seq, content in items:
            args.setdefault(device, [self.window]).extend((seq, content or ""))
        self._pipelined(self._remember_many, [(_keys(d), a) for d, a in args.items()])

    def _pipelined(self, script: Script, calls: list[tuple[list[str], list]]) -> list:
        """Run `script` once per (keys, args), in one pipelined round trip."""
        if not calls:
            return []
        try:
            return self._execute(script, calls)
        except redis.exceptions.NoScriptError:
            self.redis.script_load(script.script)  # Redis lost its scripts (a restart)
            return self._execute(script, calls)

    def _execute(self, script: Script, calls: list[tuple[list[str], list]]) -> list:
        # EVALSHA on a plain pipeline: given the Script itself, redis-py would
        # first ask SCRIPT EXISTS, a second round trip
        pipe = self.redis.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return pipe.execute()

    def close(self) -> None:
        self.redis.close()
