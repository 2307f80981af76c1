"""Embedded demo broker (amqtt) for laptops without Mosquitto.

FOR THE DEMO ONLY.  One plain (non-TLS) listener on 127.0.0.1, no
persistence, none of Mosquitto's limits.  It does enforce the same accounts
and rights as production: logins are checked against the broker directory's
passwd file (re-read on every connect, so add-device needs no reload) and
every publish, subscribe and delivery against broker.acl.allowed().

    python -m broker.embedded --dir var/broker      (or: homeguard broker run --embedded)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker import acl, passwd
from broker.errors import BrokerError
from broker.layout import BrokerDir

log = logging.getLogger("homeguard.broker.embedded")

BANNER = (
    "*** EMBEDDED DEMO BROKER (amqtt): plain MQTT on 127.0.0.1 only, no TLS, no persistence,"
    " no limits. NOT FOR PRODUCTION - install Mosquitto (apt-get install mosquitto). ***"
)

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
        user, password = session.username, session.password
        if not user or password is None:
            log.warning("refused a client without username or password")
            return False
        hashed = passwd.read(Path(self.config.password_file)).get(user)
        if hashed is None or not passwd.verify(str(password), hashed):
            log.warning("refused login for %r: unknown user or wrong password", user)
            return False
        return True


class ACLTopicPlugin(BaseTopicPlugin):
    """The rules of broker/acl.py, for publish, subscribe and delivery."""

    @dataclass
    class Config:
        gateway_user: str = acl.DEFAULT_GATEWAY_USER

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool:
        if session is None or topic is None or action not in _ACCESS:
            return False
        ok = acl.allowed(session.username or "", topic, _ACCESS[action], self.config.gateway_user)
        if not ok:
            log.warning("denied %s of %r to %r", action, topic, session.username)
        return ok


def broker_config(bdir: BrokerDir) -> dict[str, Any]:
    settings = bdir.settings()
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{settings.local_port}"}},
        "plugins": {
            f"{__name__}.PasswdAuthPlugin": {"password_file": str(bdir.passwd_file)},
            f"{__name__}.ACLTopicPlugin": {"gateway_user": settings.gateway_user},
        },
    }


async def serve(bdir: BrokerDir, stop: asyncio.Event | None = None) -> None:
    """Run until stop is set (or forever)."""
    server = Broker(broker_config(bdir))
    await server.start()
    log.warning(BANNER)
    log.warning("listening on 127.0.0.1:%d", bdir.settings().local_port)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
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
