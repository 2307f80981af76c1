"""deploy/: the files an installation runs, checked with the tools they are for.

- systemd units: `systemd-analyze verify` (ExecStart pointing at this
  checkout's .venv), the sandbox's exposure score, the hardening every
  service keeps, the state paths matching the example configs and the broker
  layout, the sysusers file through `systemd-sysusers --root`;
- the nginx site: `nginx -t` with a throwaway certificate, the live stream
  unbuffered, HSTS;
- compose.yaml: its structure (every volume, variable, bind mount, health
  check and dependency accounted for; every piece of state on a volume);
- the example configs against the gateway's and the centre's own settings;
- the container's entry point and health probe;
- deploy/backup.sh against a live WAL store written by another user and a
  real PostgreSQL, restored again.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import threading
import time
import types
from collections.abc import Iterator
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.machinery import SourceFileLoader
from pathlib import Path

import psycopg
import pytest
import yaml

from broker.layout import BrokerDir
from dashboard.settings import Settings
from gateway.config import ENV_SECRETS
from gateway.config import load as load_gateway_config
from tests.harness.proc import LOOPBACK, free_port, require_binary

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
SERVICES = ("homeguard-broker.service", "homeguard-gateway@.service",
            "homeguard-centre.service", "homeguard-centre-migrate.service",
            "homeguard-backup.service")
LONG_RUNNING = ("homeguard-broker.service", "homeguard-gateway@gw-1.service",
                "homeguard-centre.service")
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictNamespaces": "yes",
             "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6"}
# for all but the backup, which reads every service's files as root
UNPRIVILEGED = {"CapabilityBoundingSet": "", "SystemCallFilter": "@system-service",
                "MemoryDenyWriteExecute": "yes"}


def unit_entries(path: Path) -> dict[str, list[str]]:
    """'Section.Key' -> every value given to it (systemd keys may repeat)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key}", []).append(value)
    return entries


@pytest.fixture
def installed_units(tmp_path: Path) -> Path:
    """The units as installed, with /opt/homeguard being this checkout."""
    out = tmp_path / "units"
    out.mkdir()
    for path in SYSTEMD.iterdir():
        if path.suffix in (".service", ".timer"):
            text = path.read_text().replace("/opt/homeguard/venv", str(ROOT / ".venv"))
            (out / path.name).write_text(text.replace("/opt/homeguard/deploy", str(DEPLOY)))
    shutil.copy(out / "homeguard-gateway@.service", out / "homeguard-gateway@gw-1.service")
    return out


def test_units_pass_systemd_analyze_verify(installed_units: Path) -> None:
    analyze = require_binary("systemd-analyze", "Debian: apt-get install systemd")
    require_binary("mosquitto", "Debian: apt-get install mosquitto")
    units = sorted(p.name for p in installed_units.iterdir())
    assert {"homeguard-backup.timer", *LONG_RUNNING} <= set(units)
    r = subprocess.run([analyze, "verify", *units], cwd=installed_units,
                       capture_output=True, text=True, timeout=120)
    # unknown keys and bad values are only warnings: any output is a failure
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        r.stdout + r.stderr


@pytest.mark.parametrize("unit", LONG_RUNNING)
def test_long_running_services_are_sandboxed(installed_units: Path, unit: str) -> None:
    analyze = require_binary("systemd-analyze", "Debian: apt-get install systemd")
    r = subprocess.run([analyze, "security", "--offline=true", "--threshold=20", unit],
                       cwd=installed_units, capture_output=True, text=True, timeout=60)
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert r.returncode == 0 and score, r.stdout[-2000:] + r.stderr
    assert float(score[1]) <= 2.0


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_keeps_its_hardening(name: str) -> None:
    entries = unit_entries(SYSTEMD / name)
    rules = HARDENING if name == "homeguard-backup.service" else HARDENING | UNPRIVILEGED
    for key, want in rules.items():
        assert want in entries.get(f"Service.{key}", []), f"{name}: {key}={want} missing"
    assert entries.get("Service.ReadWritePaths"), f"{name}: no ReadWritePaths"
    if name != "homeguard-backup.service":
        user = entries["Service.User"][0]
        assert user in ("mosquitto", "homeguard-gateway", "homeguard-centre"), user
    if name in ("homeguard-broker.service", "homeguard-gateway@.service",
                "homeguard-centre.service"):
        assert entries["Service.Restart"] == ["always"]
        assert entries["Unit.StartLimitIntervalSec"] == ["0"]


def test_unit_state_paths_match_the_configs() -> None:
    # Mosquitto writes only data/ and log/ of the broker directory
    broker = unit_entries(SYSTEMD / "homeguard-broker.service")
    bdir = BrokerDir(Path("/etc/homeguard/broker"))
    assert broker["Service.ExecStart"] == [f"/usr/sbin/mosquitto -c {bdir.config_file}"]
    assert broker["Service.ReadWritePaths"] == [f"{bdir.data_dir} {bdir.log_file.parent}"]
    assert bdir.pid_file.parent == bdir.data_dir
    # the gateway's store and registry are in its instance's state directory
    cfg = load_gateway_config(SYSTEMD / "gateway.toml.example",
                              env={"HG_GATEWAY_CENTRE_TOKEN": "t" * 16})
    gw = unit_entries(SYSTEMD / "homeguard-gateway@.service")
    state = Path(gw["Service.ReadWritePaths"][0].replace("%i", cfg.gateway.id))
    assert gw["Service.StateDirectory"] == ["homeguard/gateway/%i"]
    assert Path("/var/lib") / gw["Service.StateDirectory"][0].replace("%i", cfg.gateway.id) \
        == state == cfg.gateway.data_dir
    assert cfg.registry.path.parent == state and cfg.registry.centre_sync_s > 0
    assert not cfg.mqtt.password and cfg.mqtt.host == "127.0.0.1"


def test_sysusers_makes_the_service_users(tmp_path: Path) -> None:
    sysusers = require_binary("systemd-sysusers", "Debian: apt-get install systemd")
    (tmp_path / "etc").mkdir()
    r = subprocess.run([sysusers, f"--root={tmp_path}", str(SYSTEMD / "homeguard.sysusers")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    users = {line.split(":")[0]: line.split(":")
             for line in (tmp_path / "etc/passwd").read_text().splitlines()}
    for name in ("homeguard-gateway", "homeguard-centre"):
        assert users[name][6] == "/usr/sbin/nologin"
        assert int(users[name][2]) < 1000  # a system user


def env_file(path: Path, commented: bool = False) -> dict[str, str]:
    """KEY=value lines of an environment file (and '#KEY=value' ones if commented)."""
    pattern = re.compile(r"^(#)?([A-Z][A-Z0-9_]*)=(.*)$")
    found = {}
    for line in path.read_text().splitlines():
        m = pattern.match(line)
        if m and (commented or not m[1]):
            found[m[2]] = m[3]
    return found


def test_centre_env_example_is_valid_settings() -> None:
    every = env_file(SYSTEMD / "centre.env.example", commented=True)
    fields = set(Settings.model_fields)
    unknown = [k for k in every if k.startswith("HG_CENTRE_")
               and k.removeprefix("HG_CENTRE_").lower() not in fields]
    assert not unknown, f"not centre settings: {unknown}"
    assert set(every) - {k for k in every if k.startswith("HG_CENTRE_")} == {"PGPASSWORD"}
    active = env_file(SYSTEMD / "centre.env.example")
    settings = Settings(**{k.removeprefix("HG_CENTRE_").lower(): v for k, v in active.items()})
    assert settings.secure_cookie and settings.host == "127.0.0.1"
    assert settings.database_url.startswith("postgresql+psycopg://")


def test_gateway_env_example_names_only_gateway_secrets() -> None:
    names = set(env_file(SYSTEMD / "gateway.env.example", commented=True))
    assert names == set(ENV_SECRETS)


def test_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    nginx = require_binary("nginx", "Debian: apt-get install nginx")
    openssl = require_binary("openssl", "Debian: apt-get install openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=centre.example.org", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
    site = (DEPLOY / "nginx/homeguard.conf").read_text()
    for path in ("/etc/ssl/homeguard/fullchain.pem", "/etc/ssl/homeguard/privkey.pem"):
        assert path in site
    site = site.replace("/etc/ssl/homeguard/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/ssl/homeguard/privkey.pem", str(tmp_path / "key.pem"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log {tmp_path}/access.log;\n    include {tmp_path}/site.conf;\n}}\n")
    r = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "test is successful" in r.stderr, r.stderr
    assert "[warn]" not in r.stderr, r.stderr


def test_nginx_site_streams_unbuffered_with_hsts() -> None:
    site = (DEPLOY / "nginx/homeguard.conf").read_text()
    stream = re.search(r"location = /api/v1/stream \{(.*?)\}", site, re.S)
    assert stream, "no location for the live stream"
    assert re.search(r"^\s*proxy_buffering off;", stream[1], re.M)
    assert re.search(r"^\s*proxy_read_timeout (\d+)h;", stream[1], re.M)
    assert re.search(r'add_header Strict-Transport-Security "max-age=\d{8,}" always;', site)
    assert "return 301 https://$host$request_uri;" in site


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def mounts(service: dict) -> list[tuple[str, str]]:
    return [(v.split(":")[0], v.split(":")[1]) for v in service.get("volumes", [])]


def test_compose_variables_are_all_in_env_example(compose: dict) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    example = set(env_file(DEPLOY / "env.example"))
    assert used == example, f"only in compose.yaml: {used - example}, " \
                            f"only in env.example: {example - used}"


def test_compose_volumes_mounts_and_dependencies(compose: dict) -> None:
    services = compose["services"]
    declared = set(compose["volumes"])
    named = {src for s in services.values() for src, _ in mounts(s)
             if not src.startswith((".", "/"))}
    assert named == declared
    for name, service in services.items():
        for src, _ in mounts(service):
            if src.startswith("./"):
                local = DEPLOY / src
                assert local.exists() or src in ("./.env", "./backups"), f"{name}: {src}"
        for target, cond in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if cond["condition"] == "service_completed_successfully":
                assert services[target]["restart"] == "no"
        if service.get("restart", "no") != "no":
            assert service["healthcheck"]["test"][0] == "CMD", f"{name}: no healthcheck"
        if "build" in service:
            build = service["build"]
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    assert (DEPLOY / "env.example").is_file()
    for network in {n for s in services.values() for n in s.get("networks", [])}:
        assert network in compose["networks"]


def test_compose_keeps_all_state_on_volumes(compose: dict) -> None:
    services = compose["services"]
    state = {"mosquitto": "/var/lib/homeguard/broker", "postgres": "/var/lib/postgresql/data",
             "victoriametrics": "/storage", "redis": "/data"}
    cfg = load_gateway_config(DEPLOY / "compose/gateway.toml",
                              env={"HG_GATEWAY_CENTRE_TOKEN": "t" * 16})
    state["gateway"] = str(cfg.gateway.data_dir)
    for name, path in state.items():
        volumes = {dst: src for src, dst in mounts(services[name])}
        assert path in volumes and volumes[path] in compose["volumes"], f"{name}: {path}"
    assert "-storageDataPath=/storage" in services["victoriametrics"]["command"]
    # the gateway finds on its volumes everything its config names
    gw_mounts = [dst for _, dst in mounts(services["gateway"])]
    for path in (cfg.registry.path, cfg.mqtt.tls_ca,
                 services["gateway"]["environment"]["HG_GATEWAY_MQTT_PASSWORD_FILE"]):
        assert any(str(path).startswith(m + "/") for m in gw_mounts), path
    assert f"http://127.0.0.1:{cfg.metrics.port}/health" in services["gateway"]["healthcheck"][
        "test"]
    centre_env = services["centre"]["environment"]
    assert centre_env["HG_CENTRE_TELEMETRY_URLS"] == f"http://gateway:{cfg.metrics.port}"
    assert cfg.centre.url == f"http://centre:{centre_env['HG_CENTRE_PORT']}"
    assert cfg.mqtt.host == "mosquitto" and cfg.mqtt.tls_ca is not None


def test_containerfile_copies_what_exists() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    copies = re.findall(r"^COPY (?:--\S+ )*(\S+) \S+$", text, re.M)
    assert "deploy/container/entrypoint.sh" in copies
    for src in copies:
        if src != ".":
            assert (ROOT / src).is_file() and os.access(ROOT / src, os.X_OK), src
    ignored = [line for line in (DEPLOY / "Containerfile.dockerignore").read_text().split()
               if not line.startswith("#")]
    for src in copies:
        hit = [p for p in ignored if fnmatch(src, p) or src.startswith(p.rstrip("/") + "/")]
        assert not hit, f"{src} is excluded from the build context by {hit}"
    assert re.search(r"^USER [1-9]\d*:\d+$", text, re.M), "run as a numeric non-root user"


def test_entrypoint_reads_secrets_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret value\nsecond line\n")
    env = {"PATH": os.environ["PATH"], "HG_GATEWAY_MQTT_PASSWORD_FILE": str(secret)}
    entry = str(DEPLOY / "container/entrypoint.sh")
    r = subprocess.run([entry, "sh", "-c", 'printf "%s|%s" "$HG_GATEWAY_MQTT_PASSWORD" '
                        '"${HG_GATEWAY_MQTT_PASSWORD_FILE-unset}"'],
                       env=env, capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, "s3cret value|unset"), r.stderr
    env["HG_GATEWAY_MQTT_PASSWORD_FILE"] = str(tmp_path / "missing")
    r = subprocess.run([entry, "true"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot read" in r.stderr


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = HTTPServer((LOOPBACK, 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_probe_tells_healthy_from_not(health_server: int) -> None:
    loader = SourceFileLoader("hg_probe", str(DEPLOY / "container/hg-probe"))
    probe = types.ModuleType(loader.name)
    loader.exec_module(probe)
    assert probe.main(["http", f"http://{LOOPBACK}:{health_server}/ok"]) == 0
    assert probe.main(["http", f"http://{LOOPBACK}:{health_server}/health"]) == 1  # 503
    assert probe.main(["tcp", LOOPBACK, str(health_server)]) == 0
    assert probe.main(["tcp", LOOPBACK, str(free_port())]) == 1
    assert probe.main(["nonsense"]) == 2


# --- backups -------------------------------------------------------------------

WRITER_SQL = """
PRAGMA journal_mode=WAL;
PRAGMA wal_autocheckpoint=0;
CREATE TABLE events(id INTEGER PRIMARY KEY, device TEXT, seq INTEGER);
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500)
INSERT INTO events(device, seq) SELECT 'btn-0001', x FROM n;
"""


def count_rows(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


def run_backup(env: dict[str, str]) -> Path:
    for tool in ("sqlite3", "setpriv", "sha256sum"):
        require_binary(tool, f"Debian: apt-get install {tool}")
    full = {"PATH": os.environ["PATH"], "HG_BACKUP_KEEP_DAYS": "0", **env}
    r = subprocess.run([str(DEPLOY / "backup.sh")], env=full, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    done = sorted(Path(env["HG_BACKUP_DIR"]).glob("homeguard-*"))
    assert len(done) == 1 and not list(Path(env["HG_BACKUP_DIR"]).glob(".*partial")), r.stderr
    sums = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=done[0],
                          capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    return done[0]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is root's own)."""
    path = Path(tempfile.mkdtemp(prefix="hg-deploy-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_backup_copies_live_stores_config_and_keys(tmp_path: Path, shared_dir: Path) -> None:
    require_binary("sqlite3", "Debian: apt-get install sqlite3")
    etc = tmp_path / "etc/homeguard"
    broker = etc / "broker"
    for rel, text in {"broker.json": "{}", "passwd": "btn-0001:$7$...", "acl": "user gateway",
                      "tls/ca.key": "KEY", "tls/ca.crt": "CRT", "gateway.password": "pw",
                      "data/mosquitto.db": "queue", "log/mosquitto.log": "log",
                      "../gateway/gw-1.toml": "[gateway]"}.items():
        (broker / rel).parent.mkdir(parents=True, exist_ok=True)
        (broker / rel).write_text(text)
    centre_db = tmp_path / "centre.db"
    with sqlite3.connect(centre_db) as db:
        db.execute("CREATE TABLE alarms(id INTEGER PRIMARY KEY)")
        db.execute("INSERT INTO alarms VALUES (42)")
    (etc / "centre.env").write_text(f"HG_CENTRE_DATABASE_URL=sqlite:///{centre_db}\n")

    # a gateway store written by another user, its rows still in the WAL
    gw = shared_dir / "gw-1"
    gw.mkdir()
    (gw / "devices.json").write_text('{"devices": []}')
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(gw, "nobody", "nogroup")
        shutil.chown(gw / "devices.json", "nobody", "nogroup")
        as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    # sqlite3 holds the store open, like a running gateway, until its stdin closes
    writer = subprocess.Popen([*as_user, "sqlite3", str(gw / "gateway.db")],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert writer.stdin is not None
        writer.stdin.write(WRITER_SQL)
        writer.stdin.flush()
        deadline = time.monotonic() + 30
        while count_rows(gw / "gateway.db") < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (gw / "gateway.db-wal").stat().st_size > (gw / "gateway.db").stat().st_size
        out = run_backup({"HG_BACKUP_DIR": str(tmp_path / "backups"), "HG_ETC": str(etc),
                          "HG_GATEWAY_STATE": str(shared_dir)})
        owners = {p.name: p.stat().st_uid for p in gw.iterdir()}
    finally:
        writer.communicate("", timeout=30)
    assert sorted(owners) == ["devices.json", "gateway.db", "gateway.db-shm",
                              "gateway.db-wal"], "the backup left files by the store"
    assert len(set(owners.values())) == 1, f"files by the store change owner: {owners}"

    with sqlite3.connect(out / "gateway/gw-1.db") as db:
        assert db.execute("SELECT count(*), max(seq) FROM events").fetchone() == (500, 500)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert (out / "gateway/gw-1.devices.json").read_text() == '{"devices": []}'
    with sqlite3.connect(out / "centre.db") as db:
        assert db.execute("SELECT id FROM alarms").fetchall() == [(42,)]
    with tarfile.open(out / "config.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"homeguard/broker/passwd", "homeguard/broker/tls/ca.key", "homeguard/centre.env",
            "homeguard/broker/gateway.password", "homeguard/gateway/gw-1.toml"} <= names
    assert not [n for n in names if n.startswith(("homeguard/broker/data",
                                                   "homeguard/broker/log"))]
    assert (out.stat().st_mode & 0o077) == 0, "a backup holds secrets: owner only"


def test_backup_dumps_postgres_and_restores(tmp_path: Path, postgres) -> None:
    url = postgres.fresh_database()  # postgresql+psycopg://hg@127.0.0.1:<port>/<db>
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("CREATE TABLE alarms(id integer PRIMARY KEY, note text)")
        conn.execute("INSERT INTO alarms VALUES (7, '火警')")
    env = {"HG_BACKUP_DIR": str(tmp_path / "backups"), "HG_ETC": str(tmp_path / "none"),
           "HG_GATEWAY_STATE": str(tmp_path / "none"), "HG_BACKUP_CENTRE_DB": url,
           "PATH": f"{postgres.bindir}:{os.environ['PATH']}"}
    require_binary("pg_dump", "Debian: apt-get install postgresql-client")
    out = run_backup(env)
    restored = postgres.fresh_database().replace("postgresql+psycopg://", "postgresql://")
    r = subprocess.run([str(postgres.bindir / "pg_restore"), "--no-owner", "--exit-on-error",
                        f"--dbname={restored}", str(out / "centre.pgdump")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with psycopg.connect(restored) as conn:
        assert conn.execute("SELECT id, note FROM alarms").fetchall() == [(7, "火警")]
