"""A broker directory: everything one Mosquitto instance needs, in one place.

    <dir>/broker.json       settings (ports, names, limits) - edit, then re-run init
    <dir>/mosquitto.conf    rendered from broker/templates/mosquitto.conf.j2
    <dir>/mosquitto.dev.conf  the same for `broker run` (current user, loopback TLS)
    <dir>/passwd            accounts, mosquitto_passwd $7$ format (0600)
    <dir>/acl               rendered by broker/acl.py
    <dir>/tls/              ca.crt ca.key server.crt server.key
    <dir>/gateway.password  the main gateway account's password (0600), read by the gateway
    <dir>/data/             persistence (mosquitto.db)
    <dir>/log/              mosquitto.log
    <dir>/data/mosquitto.pid  pid of the running broker, for reload()

init() is idempotent: it keeps the CA, the server cert (unless names changed),
and every password.  Password and ACL changes take effect on reload (SIGHUP).

Accounts share one namespace with MQTT client ids (every listener uses the
username as the client id): a device id is never a gateway account nor one of
the reserved client ids (broker.json `reserved_ids`), see check_device_id().
Every gateway account has a telemetry companion (`<name>.tm`, the gateway's
second session) with the same password: created, renamed and removed with it,
and added by init() to a directory made before companions existed.
"""

from __future__ import annotations

import getpass
import os
import pwd
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from broker import acl, config, passwd, tls
from broker.config import BrokerSettings
from broker.errors import BadDeviceId, BrokerError, NotABrokerDir
from broker.files import write_atomic
from hg import protocol


@dataclass(frozen=True)
class BrokerDir:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())
        if any(c.isspace() for c in str(self.root)):
            raise BrokerError(f"{self.root}: Mosquitto cannot use paths with spaces")

    @property
    def settings_file(self) -> Path:
        return self.root / "broker.json"

    @property
    def config_file(self) -> Path:
        return self.root / "mosquitto.conf"

    @property
    def passwd_file(self) -> Path:
        return self.root / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.root / "acl"

    @property
    def tls_paths(self) -> tls.TLSPaths:
        return tls.TLSPaths(self.root / "tls")

    @property
    def gateway_password_file(self) -> Path:
        return self.root / "gateway.password"

    @property
    def dev_config_file(self) -> Path:
        return self.root / "mosquitto.dev.conf"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "log" / "mosquitto.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "mosquitto.pid"

    def settings(self) -> BrokerSettings:
        if not self.settings_file.exists():
            raise NotABrokerDir(str(self.root))
        return BrokerSettings.load(self.settings_file)

    def template_paths(self) -> dict[str, Path]:
        return {
            "dir": self.root, "passwd_file": self.passwd_file, "acl_file": self.acl_file,
            "ca_file": self.tls_paths.ca_cert, "cert_file": self.tls_paths.server_cert,
            "key_file": self.tls_paths.server_key, "data_dir": self.data_dir,
            "log_file": self.log_file, "pid_file": self.pid_file,
        }


@dataclass(frozen=True)
class InitResult:
    dir: BrokerDir
    settings: BrokerSettings
    gateway_password: str | None  # set only when init created the gateway account
    reserved_devices: list[str]  # device accounts named like a reserved id (older dirs)


def init(root: Path, **changes: object) -> InitResult:
    """Create or update a broker directory; changes override stored settings."""
    bdir = BrokerDir(Path(root))
    bdir.root.mkdir(parents=True, exist_ok=True)
    settings = bdir.settings() if bdir.settings_file.exists() else BrokerSettings()
    services = settings.services()
    for name, value in changes.items():
        if not hasattr(settings, name):
            raise BrokerError(f"unknown broker setting {name!r}")
        if value is not None:
            setattr(settings, name, value)
    settings.validate()
    accounts = passwd.read(bdir.passwd_file)
    for user in settings.services():
        for name in (user, acl.telemetry_user(user)):
            if user not in services and name in accounts:
                raise BrokerError(f"{name!r} is already a device account")
    bdir.data_dir.mkdir(exist_ok=True)
    bdir.log_file.parent.mkdir(exist_ok=True)
    tls.ensure(bdir.tls_paths.dir, settings.hostnames)
    created = None
    if settings.gateway_user not in accounts:
        created = _set_gateway_password(bdir, settings.gateway_user, None)
    _pair_companions(bdir, settings)
    write_atomic(bdir.settings_file, settings.dump())
    render_files(bdir, settings)
    _hand_over(bdir, settings.run_user)
    reserved = [user for user in accounts
                if user not in settings.accounts() and user in settings.reserved_ids]
    return InitResult(bdir, settings, created, reserved)


def render_files(bdir: BrokerDir, settings: BrokerSettings) -> None:
    """(Re)write mosquitto.conf and the ACL from the settings."""
    write_atomic(bdir.acl_file, acl.render(settings.services()))
    write_atomic(bdir.config_file, config.render(settings, bdir.template_paths()))


def render_dev_config(root: Path, lan: bool = False) -> Path:
    """mosquitto.dev.conf for `broker run`: the same config, but Mosquitto keeps
    the current user (no switch to run_user) and, unless lan, the TLS listener
    is bound to 127.0.0.1."""
    bdir = BrokerDir(Path(root))
    settings = bdir.settings()
    settings.run_user = getpass.getuser()
    if not lan:
        settings.tls_bind = "127.0.0.1"
    write_atomic(bdir.dev_config_file, config.render(settings, bdir.template_paths()))
    return bdir.dev_config_file


def add_device(root: Path, device_id: str, password: str | None = None) -> str:
    """Create the device's account (or give it a new password); returns the password."""
    bdir = BrokerDir(Path(root))
    check_device_id(device_id, bdir.settings())
    password = password or new_password()
    passwd.set_password(bdir.passwd_file, device_id, password)
    return password


def check_new_device(root: Path, device_id: str) -> None:
    """BadDeviceId unless add_device(root, device_id) would accept the id."""
    check_device_id(device_id, BrokerDir(Path(root)).settings())


def remove_device(root: Path, device_id: str) -> bool:
    """Delete the device's account; False when it had none."""
    bdir = BrokerDir(Path(root))
    if not protocol.valid_id(device_id):
        raise BadDeviceId(device_id, VALID_ID)
    if device_id in bdir.settings().accounts():
        raise BadDeviceId(device_id, "that is a gateway account (broker remove-gateway)")
    return passwd.remove(bdir.passwd_file, device_id)


def devices(root: Path) -> list[str]:
    bdir = BrokerDir(Path(root))
    services = bdir.settings().accounts()
    return [user for user in passwd.read(bdir.passwd_file) if user not in services]


def set_gateway(root: Path, username: str | None = None, password: str | None = None) -> str:
    """Rename the main gateway account and/or give it a new password; returns the password."""
    bdir = BrokerDir(Path(root))
    settings = bdir.settings()
    username = username or settings.gateway_user
    if username != settings.gateway_user:
        _check_free(bdir, settings, username)
        old, settings.gateway_user = settings.gateway_user, username
        _save(bdir, settings)
        passwd.remove(bdir.passwd_file, old)
        passwd.remove(bdir.passwd_file, acl.telemetry_user(old))
    password = _set_gateway_password(bdir, username, password)
    _pair_companions(bdir, settings)
    return password


def add_gateway(root: Path, username: str, password: str | None = None) -> str:
    """Another gateway account (a further gateway of a share group), with the
    main one's rights; a new password for an existing one.  Returns the password."""
    bdir = BrokerDir(Path(root))
    settings = bdir.settings()
    if username not in settings.extra_gateways:
        _check_free(bdir, settings, username)
        settings.extra_gateways.append(username)
        _save(bdir, settings)
    password = password or new_password()
    passwd.set_password(bdir.passwd_file, username, password)
    _pair_companions(bdir, settings)
    return password


def remove_gateway(root: Path, username: str) -> bool:
    """Delete a further gateway account; False when there is none of that name."""
    bdir = BrokerDir(Path(root))
    settings = bdir.settings()
    if username == settings.gateway_user:
        raise BrokerError(f"{username!r} is the main gateway account (rename it with "
                          "`broker gateway --user`)")
    if username not in settings.extra_gateways:
        return False
    settings.extra_gateways.remove(username)
    _save(bdir, settings)
    passwd.remove(bdir.passwd_file, username)
    passwd.remove(bdir.passwd_file, acl.telemetry_user(username))
    return True


def gateways(root: Path) -> list[str]:
    """Every gateway account, the main one first (each also has its
    telemetry companion, acl.telemetry_user)."""
    return BrokerDir(Path(root)).settings().services()


def gateway_credentials(root: Path) -> tuple[str, str]:
    """(username, password) of the gateway account, for the gateway on this host;
    its telemetry session logs in as acl.telemetry_user(username), same password."""
    bdir = BrokerDir(Path(root))
    return bdir.settings().gateway_user, bdir.gateway_password_file.read_text().strip()


def reload(root: Path) -> bool:
    """SIGHUP the running broker: it re-reads passwd and ACL. False if none runs."""
    bdir = BrokerDir(Path(root))
    try:
        pid = int(bdir.pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


VALID_ID = "use 3-32 of a-z, 0-9 and '-', not starting with '-'"


def check_device_id(device_id: str, settings: BrokerSettings) -> None:
    """A device id is a valid id that no service uses as its username or client id."""
    if not protocol.valid_id(device_id):
        raise BadDeviceId(device_id, VALID_ID)
    if device_id in settings.accounts():
        raise BadDeviceId(device_id, "that is a gateway account")
    if device_id in settings.reserved_ids:
        raise BadDeviceId(device_id, "reserved as a service's MQTT client id "
                                     "(broker.json reserved_ids)")


def new_password() -> str:
    """32 URL-safe characters, 192 random bits."""
    return secrets.token_urlsafe(24)


def _check_free(bdir: BrokerDir, settings: BrokerSettings, username: str) -> None:
    """A new gateway account name: not a device account, not another gateway."""
    if username in settings.accounts():
        raise BrokerError(f"{username!r} is already a gateway account")
    taken = passwd.read(bdir.passwd_file)
    for name in (username, acl.telemetry_user(username)):
        if name in taken:
            raise BrokerError(f"{name!r} is already a device account")


def _save(bdir: BrokerDir, settings: BrokerSettings) -> None:
    settings.validate()
    write_atomic(bdir.settings_file, settings.dump())
    render_files(bdir, settings)


def _set_gateway_password(bdir: BrokerDir, user: str, password: str | None) -> str:
    password = password or new_password()
    passwd.set_password(bdir.passwd_file, user, password)
    write_atomic(bdir.gateway_password_file, password + "\n", mode=0o600)
    return password


def _pair_companions(bdir: BrokerDir, settings: BrokerSettings) -> None:
    """Give every gateway account's telemetry companion the gateway's own
    password line (the same hash: one secret per gateway); idempotent."""
    entries = passwd.read(bdir.passwd_file)
    paired = {acl.telemetry_user(user): entries[user]
              for user in settings.services() if user in entries}
    if any(entries.get(name) != line for name, line in paired.items()):
        passwd.write(bdir.passwd_file, {**entries, **paired})


def _hand_over(bdir: BrokerDir, run_user: str) -> None:
    """As root, give run_user what Mosquitto reads after dropping privileges."""
    if os.geteuid() != 0 or not run_user or run_user == "root":
        return
    try:
        pw = pwd.getpwnam(run_user)
    except KeyError:
        return  # Mosquitto itself then falls back to "nobody" or refuses to start
    owned = [bdir.passwd_file, bdir.acl_file, bdir.tls_paths.server_key, bdir.data_dir,
             bdir.log_file.parent, *bdir.data_dir.iterdir(), *bdir.log_file.parent.iterdir()]
    for path in owned:
        shutil.chown(path, pw.pw_uid, pw.pw_gid)
