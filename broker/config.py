"""Broker settings (broker.json in a broker directory) and the rendered mosquitto.conf."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from broker.acl import DEFAULT_GATEWAY_USER, TM, telemetry_user
from broker.errors import BrokerError

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "mosquitto.conf.j2"
# The gateway's default [mqtt] client_id (gateway/config.py): no device may be named so.
GATEWAY_CLIENT_ID = "homeguard-gateway"
# A service account name: safe in the passwd file, an ACL `user` line and a topic level.
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class BrokerSettings:
    """Everything the config template needs besides file paths."""

    tls_port: int = 8883
    tls_bind: str = ""  # "" = every interface: devices reach the broker over the LAN
    local_port: int = 1883  # always bound to 127.0.0.1
    hostnames: list[str] = field(default_factory=list)  # extra names in the server cert
    gateway_user: str = DEFAULT_GATEWAY_USER
    # more gateway accounts, one per further gateway of a share group: on every
    # listener the client id is the username, so two gateways need two accounts
    extra_gateways: list[str] = field(default_factory=list)
    # client ids services use or used besides their usernames; no device may take one
    reserved_ids: list[str] = field(default_factory=lambda: [GATEWAY_CLIENT_ID])
    run_user: str = "mosquitto"  # who Mosquitto runs as after starting as root
    autosave_interval: int = 30
    persistent_client_expiration: str = "30d"
    max_packet_size: int = 4096
    max_inflight_messages: int = 1000
    max_queued_messages: int = 100000
    max_queued_bytes: int = 134217728  # 128 MiB per client
    log_to_file: bool = True

    def validate(self) -> None:
        for name in ("tls_port", "local_port"):
            port = getattr(self, name)
            if not 1 <= port <= 65535:
                raise BrokerError(f"{name} {port} is not a TCP port (1-65535)")
        if self.tls_port == self.local_port:
            raise BrokerError(f"tls_port and local_port are both {self.tls_port}")
        if not self.run_user or any(c.isspace() for c in self.run_user):
            raise BrokerError(f"run_user {self.run_user!r} is not a user name")
        if self.max_packet_size < 2048:
            raise BrokerError("max_packet_size below 2048 would refuse valid v1 messages")
        services = self.services()
        for name in services:
            if not _SERVICE_NAME.fullmatch(telemetry_user(name)):
                raise BrokerError(f"gateway account {name!r}: use 1-{64 - len(TM)} of "
                                  "A-Z a-z 0-9 . _ - (its telemetry account adds "
                                  f"{TM!r})")
        accounts = self.accounts()
        if len(set(accounts)) != len(accounts):
            raise BrokerError(f"gateway accounts {accounts} name one account twice")

    def services(self) -> list[str]:
        """Every service (gateway) account: the main one first."""
        return [self.gateway_user, *self.extra_gateways]

    def accounts(self) -> list[str]:
        """Every account that is not a device: each gateway account and its
        telemetry companion (acl.telemetry_user)."""
        return [name for user in self.services() for name in (user, telemetry_user(user))]

    @classmethod
    def load(cls, path: Path) -> BrokerSettings:
        try:
            raw = json.loads(Path(path).read_text())
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(raw) - known
            if unknown:
                raise BrokerError(f"{path}: unknown settings {sorted(unknown)}")
            settings = cls(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise BrokerError(f"{path}: cannot read broker settings: {exc}") from exc
        settings.validate()
        return settings

    def dump(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"


def render(settings: BrokerSettings, paths: dict[str, Path]) -> str:
    """mosquitto.conf text; paths carries dir, passwd_file, acl_file, ca_file,
    cert_file, key_file, data_dir and log_file."""
    settings.validate()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    values = dataclasses.asdict(settings)
    values.update({k: str(v) for k, v in paths.items()})
    if not settings.log_to_file:
        values["log_file"] = ""
    return env.get_template(TEMPLATE).render(**values)
