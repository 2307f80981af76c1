"""Gateway configuration: one TOML file, validated at start, secrets from env.

Unknown keys are errors (a typo must not silently fall back to a default).
gateway/sample.toml documents every option with its default.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import Field, ValidationError, create_model

from gateway import sinks
from gateway.section import Section

S = TypeVar("S", bound=Section)


class ConfigError(Exception):
    """The gateway cannot start with this configuration; str() says why."""


# broker/acl.py TM: the telemetry companion of a gateway account (the gateway
# does not import broker/, which is deployed apart from it)
TELEMETRY_SUFFIX = ".tm"


class GatewaySection(Section):
    id: str = Field("gw-1", min_length=1, max_length=64)
    data_dir: Path = Path("var/gateway")
    retention_days: float = Field(30.0, ge=0)  # 0 = keep every row
    retention_check_s: float = Field(3600.0, gt=0)
    min_free_mb: int = Field(64, ge=0)  # below this free space /health is degraded


class MQTTSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str = "gateway"
    password: str = ""
    client_id: str = "homeguard-gateway"
    keepalive: int = Field(30, ge=5, le=3600)
    # "paho": stock paho-mqtt through its public API (any 2.x); "tuned": the
    # read-ahead reader in gateway/mqttclient.py (hooks paho 2.2's internals)
    reader: Literal["paho", "tuned"] = "paho"
    tls_ca: Path | None = None
    share_group: str = Field("", pattern=r"^[A-Za-z0-9_-]*$")
    # the telemetry session's account ("" = username + ".tm", the companion
    # `broker init`/`add-gateway` create with the same password)
    telemetry_username: str = ""

    def telemetry(self) -> MQTTSection:
        """This section for the telemetry session: its account and client id."""
        user = self.telemetry_username or self.username + TELEMETRY_SUFFIX
        return self.model_copy(update={"username": user,
                                       "client_id": self.client_id + TELEMETRY_SUFFIX})


class RegistrySection(Section):
    path: Path = Path("devices.json")
    centre_sync_s: float = Field(0.0, ge=0)  # 0 = the file is maintained by hand/provisioning


class VerifySection(Section):
    behind_ms: int = Field(40000, ge=0)
    ahead_ms: int = Field(20000, ge=0)
    backlog_max_s: int = Field(30 * 86400, ge=0)  # the broker's persistent_client_expiration


class DedupSection(Section):
    window: int = Field(4096, ge=16, le=1 << 20)
    backend: Literal["local", "redis"] = "local"
    redis_url: str = Field("redis://127.0.0.1:6379/0", pattern=r"^(redis|rediss|unix)://")
    # seconds a seq a device skipped may still arrive before it counts as lost (gaps.py)
    missing_grace_s: float = Field(300.0, gt=0, le=86_400)


class CentreSection(Section):
    url: str = Field(..., pattern=r"^https?://")
    token: str = ""
    batch_size: int = Field(100, ge=1, le=500)
    timeout_s: float = Field(10.0, gt=0)
    backoff_min_s: float = Field(0.5, gt=0)
    # alarms queued while the centre was away wait up to this long after it
    # is back (30 s made the chaos runs' outage backlog arrive ~45 s late)
    backoff_max_s: float = Field(5.0, gt=0)
    feedback_poll_s: float = Field(1.0, ge=0)  # 0 = do not relay the centre's feedback


class SupervisionSection(Section):
    enabled: bool = True
    windows: dict[str, float] = {"button": 5400.0, "sensor": 180.0}
    default_s: float = Field(5400.0, gt=0)
    check_s: float = Field(5.0, gt=0)
    gateway_grace_s: float = Field(30.0, ge=0)
    link_grace_s: float = Field(10.0, ge=0)  # 0: every last will is its device's own


class MetricsSection(Section):
    port: int = Field(0, ge=0, le=65535)  # 0 = no /metrics endpoint
    host: str = "127.0.0.1"


class GatewayConfig(Section):
    """The gateway's own sections; Config adds the sinks' (sections())."""

    gateway: GatewaySection = GatewaySection()
    mqtt: MQTTSection = MQTTSection()
    registry: RegistrySection = RegistrySection()
    verify: VerifySection = VerifySection()
    dedup: DedupSection = DedupSection()
    centre: CentreSection  # the centre's address: its sink, key sync, the feedback relay
    supervision: SupervisionSection = SupervisionSection()
    metrics: MetricsSection = MetricsSection()

    def section(self, name: str) -> Section:
        """A section by its name (a sink's: `<Section>.of(cfg)` types it)."""
        found = getattr(self, name)
        assert isinstance(found, Section), name
        return found

    def of(self, cls: type[S], name: str) -> S:
        """The section `name`, which is a `cls`."""
        found = self.section(name)
        assert isinstance(found, cls), (name, cls)
        return found


# [<sink>] for each sink that declares its own section, each with its defaults
if TYPE_CHECKING:
    Config = GatewayConfig
else:
    Config = create_model("Config", __base__=GatewayConfig, **{
        name: (cls, cls()) for name, cls in sinks.sections().items()})


ENV_SECRETS = {
    "HG_GATEWAY_MQTT_PASSWORD": ("mqtt", "password"),
    "HG_GATEWAY_CENTRE_TOKEN": ("centre", "token"),
    "HG_GATEWAY_REDIS_URL": ("dedup", "redis_url"),
} | {var: (name, key) for name, cls in sinks.sections().items() for var, key in cls.ENV.items()}


def load(path: Path, env: dict[str, str] | None = None) -> Config:
    """Read, apply env overrides for secrets, validate; ConfigError otherwise."""
    env = dict(os.environ) if env is None else env
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    for var, (section, key) in ENV_SECRETS.items():
        if env.get(var):
            table = raw.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [{section}] must be a table")
            table[key] = env[var]
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: invalid config"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None
    if not cfg.centre.token:
        raise ConfigError(f"{path}: centre.token is empty (or set HG_GATEWAY_CENTRE_TOKEN)")
    bad = {k: v for k, v in cfg.supervision.windows.items() if v <= 0}
    if bad:
        raise ConfigError(f"{path}: supervision.windows must be positive seconds: {bad}")
    return cfg
