"""The centre's one configuration object, read from HG_CENTRE_* variables.

Every option can also be given to `homeguard centre` on the command line;
a bad value stops start-up with a message naming the option.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "HG_CENTRE_"
# a host name (letters, digits, -, _ in dot-separated labels) or IPv4 address,
# optionally "*." before it for every subdomain, or "*" alone
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
HOST_PATTERN = re.compile(rf"\*|(\*\.)?{_LABEL}(\.{_LABEL})*")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    # SQLAlchemy URL of the alarm store; SQLite runs in WAL mode.
    database_url: str = "sqlite:///./homeguard-centre.db"
    # Deprecated bootstrap tokens, each bound to one gateway: "gw-1:TOKEN", or
    # a bare "TOKEN" bound to gateway_id.  Issue credentials instead
    # (`homeguard centre gateway issue ID`, dashboard/gateways.py).  The
    # environment takes them comma-separated: HG_CENTRE_GATEWAY_TOKENS=
    # gw-1:tok1,gw-2:tok2.  `homeguard centre` refuses to start with neither.
    gateway_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The gateway a bare gateway_tokens entry (no "ID:") is bound to; the
    # default is the gateway's own default [gateway] id.
    gateway_id: str = Field(default="gw-1", pattern=r"^[a-z0-9-]{3,32}$")
    # IANA zone the alarm desk shows times in.
    timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # Seconds between SSE keepalive comments on an idle stream.
    keepalive_s: float = Field(default=15.0, gt=0, le=300)
    # Live items a slow stream client may fall behind by before it is cut
    # off (it reconnects and replays the rest from the database).
    stream_queue: int = Field(default=1000, ge=10)
    # Key signing the session cookie; a random one per start when unset
    # (everyone logs in again after a restart).  At least 32 characters.
    session_secret: str | None = Field(default=None, min_length=32)
    # Hours a login lasts.
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # Send the session cookie only over HTTPS (set behind a TLS proxy).
    secure_cookie: bool = False
    # "USER:PASSWORD": create this admin at start when there is no user yet.
    bootstrap_admin: str | None = None
    # Seconds an alarm may wait for acknowledgement before its timer warns.
    ack_sla_s: int = Field(default=30, ge=1)
    # Seconds from receipt to verification before its timer turns red.
    verify_sla_s: int = Field(default=90, ge=1)
    # Seconds an operator may hold an alarm (dashboard/claims.py) without
    # acting on it before the claim is released and another may take it.
    claim_idle_s: float = Field(default=900.0, gt=0, le=7 * 86400)
    # Seconds a grid worker has to accept a task dispatched to their phone
    # (dashboard/worker.py) before the desk is alerted to re-dispatch it.
    worker_accept_s: float = Field(default=300.0, gt=0, le=86400)
    # Flood control (dashboard/flood.py): an alarm whose device's previous
    # flood_alarms alarms all happened within flood_window_s of it is over
    # the rate; it is stored and acked, but folded into the device's open
    # alarm of its type (a count on that row) instead of making a row, and
    # the device gets one `flooding` fault.  0 turns flood control off.
    flood_alarms: int = Field(default=10, ge=0, le=10_000)
    flood_window_s: float = Field(default=60.0, gt=0, le=86_400)
    # Where the alarm detail's telemetry chart reads a device's recent points:
    # gateways' metrics addresses (GET <url>/telemetry, their embedded store),
    # comma-separated in the environment. Empty: no chart.
    telemetry_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # --- contact notification (dashboard/notify/, docs/centre.md) ---
    # Channels household alarms are notified over: webhook, smtp, log.
    notify_channels: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["log"])
    # URL a webhook notification is POSTed to (an SMS/voice provider's bridge).
    notify_webhook_url: str | None = None
    # Bearer token sent with each webhook POST, if the receiver wants one.
    notify_webhook_token: str | None = None
    # SMTP server (host, port, sender) e-mail notifications go through.
    notify_smtp_host: str | None = None
    notify_smtp_port: int = Field(default=25, ge=1, le=65535)
    notify_smtp_from: str = "homeguard@localhost"
    notify_smtp_user: str | None = None
    notify_smtp_password: str | None = None
    notify_smtp_starttls: bool = False
    # Seconds one webhook or SMTP attempt may take.
    notify_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # Attempts per person and channel; the wait between them starts at
    # notify_backoff_s and doubles.
    notify_attempts: int = Field(default=3, ge=1, le=20)
    notify_backoff_s: float = Field(default=2.0, gt=0, le=3600)
    # Seconds an alarm may stay unacknowledged before the next person is told.
    notify_escalate_s: float = Field(default=120.0, gt=0)
    # The last step of every escalation: the supervisor on duty.
    notify_supervisor_name: str = "supervisor"
    notify_supervisor_phone: str | None = None
    notify_supervisor_email: str | None = None
    # Seconds between the notifier's looks at the store.
    notify_poll_s: float = Field(default=1.0, gt=0, le=60)
    # Alarms older than this are never notified (e.g. after a long outage).
    notify_max_age_s: float = Field(default=3600.0, gt=0)
    # three-colour rating: confirmed incidents over the last rating_window_days;
    # >= rating_yellow is yellow, >= rating_red is red, else green
    rating_window_days: float = Field(default=30.0, gt=0, le=3660)
    rating_yellow: int = Field(default=1, ge=1)
    rating_red: int = Field(default=3, ge=1)
    # The map's tile layer (docs/map.md): a Leaflet URL template such as
    # "https://tiles.example.org/{z}/{x}/{y}.png" on the centre's own tile
    # server ({s} for subdomains); its origin is added to the map page's
    # img-src.  Empty: no tiles, the map draws on a plain background (offline).
    map_tile_url: str = Field(default="", pattern=r"^(https?://[^\s'\";,]+)?$")
    # The attribution the tile server's licence asks for, shown on the map.
    map_tile_attribution: str = Field(default="", max_length=300)
    # --- logins (dashboard/loginguard.py, docs/centre.md "Login throttling") ---
    # Failed logins one address may make (an IPv6 address counts by its /64),
    # and failed logins one username may take from anywhere, as `limits` rates
    # ("20/minute", "100 per hour"); past them the login is refused with 429
    # and Retry-After before its password is checked.
    login_limit_per_address: str = "20/minute"
    login_limit_per_account: str = "5/minute"
    # This many failed logins of one username in a row (each within
    # login_lockout_s of the one before, no successful login between) lock it
    # for login_lockout_s, or until an admin unlocks it; 0 never locks.
    login_lockout_failures: int = Field(default=10, ge=0, le=1000)
    login_lockout_s: float = Field(default=900.0, gt=0, le=7 * 86400)
    # Password checks (argon2, CPU-bound) one centre process runs at once; a
    # login that finds them all busy for 2 s is refused with 429.
    login_concurrency: int = Field(default=4, ge=1, le=64)
    # Where the rate counters live: "database" (the store itself, shared by
    # every centre on it) or a `limits` storage URI, e.g. redis://host:6379
    # (needs the redis client) or memory:// (one centre process only).
    login_limits_storage: str = "database"
    # --- web security (dashboard/security_headers.py, docs/centre.md) ---
    # Host names the centre answers to besides localhost, 127.0.0.1, [::1] and
    # the address in `host`: the names browsers and gateways reach it by (the
    # TLS proxy's public name, a container's service name).  A request with
    # any other Host header is refused with 400.  "*.example.org" covers its
    # subdomains, "*" turns the check off.  Comma-separated in the environment.
    # The default, testserver, is the name Starlette's test client sends.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["testserver"])
    # Send Strict-Transport-Security on every response: set it when a TLS
    # proxy always stands in front.  A request that came over HTTPS (also as
    # X-Forwarded-Proto from a proxy uvicorn trusts) gets it anyway.
    hsts: bool = False

    @field_validator("gateway_tokens", "telemetry_urls", mode="before")
    @classmethod
    def _split_tokens(cls, v: object) -> object:
        if isinstance(v, str):
            return [t.strip() for t in v.split(",") if t.strip()]
        return v

    @field_validator("gateway_tokens")
    @classmethod
    def _token_form(cls, v: list[str]) -> list[str]:
        # none at all is refused by `homeguard centre` (cli.py), not here:
        # the command-line tools and tests need no token
        tokens = [bound_token(entry)[1] for entry in v]
        for token in tokens:
            if len(token) < 8 or any(c.isspace() or c == "," for c in token):
                raise ValueError("a gateway token needs at least 8 characters, no spaces "
                                 "and no commas")
        if len(set(tokens)) < len(tokens):
            raise ValueError("one token is given twice: a token belongs to one gateway")
        return v

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, v: object) -> object:
        if isinstance(v, str):
            return [h.strip() for h in v.split(",") if h.strip()]
        return v

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, v: list[str]) -> list[str]:
        hosts = [host_header_form(h) for h in v]
        for given, host in zip(v, hosts, strict=True):
            if not (HOST_PATTERN.fullmatch(host) or _is_ipv6(host)):
                raise ValueError(
                    f"{given!r} is not a host name or address (no scheme, port or path; "
                    "e.g. centre.example.org, *.example.org or 192.0.2.10)")
        return list(dict.fromkeys(hosts))

    @field_validator("notify_channels", mode="before")
    @classmethod
    def _split_channels(cls, v: object) -> object:
        if isinstance(v, str):
            return [c.strip() for c in v.split(",") if c.strip()]
        return v

    @field_validator("notify_channels")
    @classmethod
    def _known_channels(cls, v: list[str]) -> list[str]:
        known = ("webhook", "smtp", "log")
        for name in v:
            if name not in known:
                raise ValueError(f"unknown notify channel {name!r}; use {', '.join(known)}")
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _channels_configured(self) -> Settings:
        if "webhook" in self.notify_channels and not self.notify_webhook_url:
            raise ValueError("notify channel webhook needs HG_CENTRE_NOTIFY_WEBHOOK_URL")
        if "smtp" in self.notify_channels and not self.notify_smtp_host:
            raise ValueError("notify channel smtp needs HG_CENTRE_NOTIFY_SMTP_HOST")
        return self

    @model_validator(mode="after")
    def _rating_order(self) -> Settings:
        if self.rating_yellow > self.rating_red:
            raise ValueError(
                f"HG_CENTRE_RATING_YELLOW ({self.rating_yellow}) must not exceed "
                f"HG_CENTRE_RATING_RED ({self.rating_red})")
        return self

    @field_validator("login_limit_per_address", "login_limit_per_account")
    @classmethod
    def _rate(cls, v: str) -> str:
        from limits import parse

        try:
            parse(v)
        except ValueError:
            raise ValueError(
                f"{v!r} is not a rate such as 20/minute or 100 per hour") from None
        return v

    @field_validator("login_limits_storage")
    @classmethod
    def _limits_storage(cls, v: str) -> str:
        if v != "database" and "://" not in v:
            raise ValueError(
                f"{v!r}: give database, or a storage URI such as redis://host:6379")
        return v

    @field_validator("bootstrap_admin")
    @classmethod
    def _user_colon_password(cls, v: str | None) -> str | None:
        if v is not None:
            user, sep, password = v.partition(":")
            if not sep or not user or len(password) < 8:
                raise ValueError("give USER:PASSWORD with a password of at least 8 characters")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)"
            ) from None
        return v

    @field_validator("database_url")
    @classmethod
    def _usable_url(cls, v: str) -> str:
        try:
            url = make_url(v)
        except ArgumentError:
            raise ValueError(f"not a database URL: {v!r} (e.g. sqlite:///./centre.db)") from None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            folder = Path(url.database).expanduser().resolve().parent
            if not folder.is_dir():
                raise ValueError(f"folder {folder} for the SQLite database does not exist")
        return v


def bound_token(entry: str) -> tuple[str | None, str]:
    """A gateway_tokens entry as (gateway id or None for a bare token, token)."""
    gateway, sep, token = entry.partition(":")
    if sep and re.fullmatch(r"[a-z0-9-]{3,32}", gateway):
        return gateway, token
    return None, entry


def host_header_form(host: str) -> str:
    """A host as a Host header spells it: lower case, an IPv6 address in brackets."""
    host = host.strip().lower()
    bare = host.removeprefix("[").removesuffix("]")
    return f"[{bare}]" if _is_ipv6(bare) else host


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).version == 6
    except ValueError:
        return False


def describe_errors(exc: Exception) -> list[str]:
    """One line per problem in a pydantic ValidationError, naming the option."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return [str(exc)]
    lines = []
    for err in errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        lines.append(f"{where} ({ENV_PREFIX}{where.upper()}): {msg}")
    return lines
