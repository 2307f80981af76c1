"""Embedded demo broker (amqtt) for laptops without Mosquitto.

FOR THE DEMO ONLY.  One plain (non-TLS) listener on 127.0.0.1, no
persistence, none of Mosquitto's limits.  It does enforce the same accounts,
client ids and rights as production: every connection's CONNECT is read by
the gate below first, which checks the login against the broker directory's
passwd file (re-read on every connect, so add-device needs no reload) and
sets the client id to the username, as Mosquitto's use_username_as_clientid
does, before amqtt sees it; every publish, subscribe and delivery is checked
against broker.acl.allowed().

    python -m homeguard.devbroker.embedded --dir var/broker
    (or: homeguard broker run --embedded)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amqtt.adapters import ReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker import acl, passwd
from broker.errors import BrokerError
from broker.layout import BrokerDir
from homeguard.devbroker import connect

log = logging.getLogger("homeguard.broker.embedded")

BANNER = (
    "*** EMBEDDED DEMO BROKER (amqtt): plain MQTT on 127.0.0.1 only, no TLS, no persistence,"
    " no limits. NOT FOR PRODUCTION - install Mosquitto (apt-get install mosquitto). ***"
)
LOOPBACK = "127.0.0.1"
LISTENER = "default"  # amqtt's name for the one listener; "external": the gate feeds it
CONNECT_TIMEOUT = 10.0  # seconds a new connection has to send its CONNECT

_ACCESS = {Action.PUBLISH: acl.Access.PUBLISH, Action.SUBSCRIBE: acl.Access.SUBSCRIBE,
           Action.RECEIVE: acl.Access.RECEIVE}


class PasswdAuthPlugin(BaseAuthPlugin):
    """Accept exactly the accounts of a Mosquitto passwd file."""

    @dataclass
    class Config:
        password_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        if not self.config.password_file:
            raise BrokerError("PasswdAuthPlugin needs password_file")

    async def authenticate(self, *, session: Session) -> bool:
        user = session.username
        if user is None or session.client_id != user:  # the gate sets it so
            log.warning("refused client id %r of %r", session.client_id, user)
            return False
        password = None if session.password is None else str(session.password)
        return login_ok(Path(self.config.password_file), user, password)


def login_ok(password_file: Path, user: str | None, password: str | None) -> bool:
    """Whether the passwd file has this account with this password (logged when not)."""
    if not user or password is None:
        log.warning("refused a client without username or password")
        return False
    hashed = passwd.read(password_file).get(user)
    if hashed is None or not passwd.verify(password, hashed):
        log.warning("refused login for %r: unknown user or wrong password", user)
        return False
    return True


class ACLTopicPlugin(BaseTopicPlugin):
    """The rules of broker/acl.py, for publish, subscribe and delivery."""

    @dataclass
    class Config:
        gateways: list[str] = field(default_factory=lambda: [acl.DEFAULT_GATEWAY_USER])

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool:
        if session is None or topic is None or action not in _ACCESS:
            return False
        ok = acl.allowed(session.username or "", topic, _ACCESS[action], self.config.gateways)
        if not ok:
            log.warning("denied %s of %r to %r", action, topic, session.username)
        return ok


class Gate:
    """Reads each connection's CONNECT, refuses a bad login itself and hands the
    rest to amqtt with the username as client id, so no client reaches (or, with
    a clean session, wipes) another account's session."""

    def __init__(self, server: Broker, password_file: Path) -> None:
        self.server = server
        self.password_file = password_file

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        adapter = StreamWriterAdapter(writer)
        try:
            packet = await asyncio.wait_for(connect.read(reader), CONNECT_TIMEOUT)
            user = packet.username
            if not login_ok(self.password_file, user, packet.password) or user is None:
                writer.write(connect.REFUSED)
                return
            if packet.client_id != user:
                log.info("client id %r of %r replaced by its username", packet.client_id, user)
            first = packet.with_client_id(user)
            await self.server.external_connected(Replay(first, reader), adapter, LISTENER)
        except (connect.BadConnect, asyncio.IncompleteReadError, TimeoutError) as exc:
            log.warning("closed a connection before its CONNECT: %s", exc or type(exc).__name__)
        finally:
            with suppress(OSError):
                await adapter.close()


class Replay(ReaderAdapter):
    """A connection's stream with the (rewritten) CONNECT put back in front."""

    def __init__(self, first: bytes, reader: asyncio.StreamReader) -> None:
        self._first = first
        self._reader = reader

    async def read(self, n: int = -1) -> bytes:
        head, self._first = (self._first, b"") if n < 0 else (self._first[:n], self._first[n:])
        if n < 0:
            return head + await self._reader.read()
        if len(head) < n:
            head += await self._reader.readexactly(n - len(head))
        return head

    def feed_eof(self) -> None:
        self._reader.feed_eof()


def broker_config(bdir: BrokerDir) -> dict[str, Any]:
    settings = bdir.settings()
    return {
        "listeners": {LISTENER: {"type": "external", "bind": f"{LOOPBACK}:{settings.local_port}"}},
        "plugins": {
            f"{__name__}.PasswdAuthPlugin": {"password_file": str(bdir.passwd_file)},
            f"{__name__}.ACLTopicPlugin": {"gateways": settings.services()},
        },
    }


async def serve(bdir: BrokerDir, stop: asyncio.Event | None = None) -> None:
    """Run until stop is set (or forever)."""
    port = bdir.settings().local_port
    server = Broker(broker_config(bdir))
    await server.start()
    gate = Gate(server, bdir.passwd_file)
    listener = await asyncio.start_server(gate.handle, LOOPBACK, port)
    log.warning(BANNER)
    log.warning("listening on %s:%d", LOOPBACK, port)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        listener.close()
        await server.shutdown()


def run(root: Path) -> None:
    """Foreground, until Ctrl-C."""
    try:
        asyncio.run(serve(BrokerDir(root)))
    except KeyboardInterrupt:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=BANNER)
    parser.add_argument("--dir", required=True, type=Path, help="broker directory (broker init)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)
    print(BANNER, flush=True)
    run(args.dir)


if __name__ == "__main__":
    main()
