"""Mosquitto password files in pure Python.

Mosquitto 2.0 stores one `username:hash` line per account.  The hash format
written here is the one `mosquitto_passwd` 2.0 writes by default:

    $7$<iterations>$<base64 salt, 12 bytes>$<base64 PBKDF2-HMAC-SHA512, 64 bytes>

`$6$<salt>$<sha512(password + salt)>` (Mosquitto 1.x) is read and verified too,
never written.  Every change rewrites the whole file atomically.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from broker.errors import BadPasswordFile, BrokerError
from broker.files import write_atomic

ITERATIONS = 1000  # mosquitto_passwd uses 101; the count travels inside each hash
SALT_LEN = 12
HASH_LEN = 64


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The `$7$` PBKDF2-SHA512 string Mosquitto 2.0 checks a password against."""
    if not password:
        raise BrokerError("empty password")
    salt = os.urandom(SALT_LEN) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_LEN)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify(password: str, hashed: str) -> bool:
    """True when password matches a `$7$` or `$6$` hash; False for anything else."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            salt, want = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(want))
        elif len(parts) == 4 and parts[1] == "6":
            salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except ValueError:  # bad base64 or iteration count
        return False
    return hmac.compare_digest(got, want)


def parse(text: str, source: str = "<passwd>") -> dict[str, str]:
    """username -> hash, in file order; blank lines and # comments are skipped."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed.startswith("$"):
            raise BadPasswordFile(source, number, "expected username:$7$... or username:$6$...")
        if user in entries:
            raise BadPasswordFile(source, number, f"duplicate user {user!r}")
        entries[user] = hashed
    return entries


def read(path: Path) -> dict[str, str]:
    path = Path(path)
    if not path.exists():
        return {}
    return parse(path.read_text(), str(path))


def render(entries: dict[str, str]) -> str:
    return "".join(f"{user}:{hashed}\n" for user, hashed in entries.items())


def write(path: Path, entries: dict[str, str]) -> None:
    for user in entries:
        check_username(user)
    write_atomic(Path(path), render(entries), mode=0o600)


def set_password(path: Path, user: str, password: str) -> None:
    """Add user, or replace their password; other lines are kept as they are."""
    check_username(user)
    entries = read(path)
    entries[user] = hash_password(password)
    write(path, entries)


def remove(path: Path, user: str) -> bool:
    """Drop user's line; False when there was none."""
    entries = read(path)
    if entries.pop(user, None) is None:
        return False
    write(path, entries)
    return True


def check_username(user: str) -> None:
    if not user or ":" in user or any(c.isspace() for c in user):
        raise BrokerError(f"bad username {user!r}: must be non-empty, no ':' or spaces")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
