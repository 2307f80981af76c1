#!/usr/bin/env bash
# Back up everything a Homeguard centre needs to be rebuilt (docs/deploy.md,
# "Backups").  Needs bash, sqlite3, tar, sha256sum, setpriv (util-linux) and,
# for a PostgreSQL centre, pg_dump of the server's major version; not the
# `homeguard` command, so it works while the software is being replaced.
#
#   backup.sh            one backup into $HG_BACKUP_DIR/homeguard-<UTC time>/
#
# What goes in (each is optional: what does not exist is skipped and said so):
#   config.tar.gz        $HG_ETC (/etc/homeguard): gateway configs, env files
#                        with secrets, and the broker directory (broker.json,
#                        passwd, acl, tls/ with the CA key, gateway.password);
#                        not the broker's data/ and log/
#   broker.tar.gz        $HG_BROKER_DIR when it is not under $HG_ETC (containers)
#   gateway/<name>.db    each <name>/gateway.db under $HG_GATEWAY_STATE, copied
#                        with SQLite's VACUUM INTO: one read transaction, so a
#                        consistent copy while the gateway writes (a file copy
#                        of a live WAL database is not)
#   gateway/<name>.devices.json   that gateway's device registry (HMAC keys)
#   centre.pgdump        pg_dump -Fc of a PostgreSQL centre, or
#   centre.db            VACUUM INTO copy of an SQLite centre
#   SHA256SUMS           check with: (cd DIR && sha256sum -c SHA256SUMS)
# The backup holds every secret of the installation: keep it like the CA key.
#
# Settings (environment):
#   HG_BACKUP_DIR        where backups go             [/var/backups/homeguard]
#   HG_BACKUP_KEEP_DAYS  delete backups older than this; 0 keeps all   [14]
#   HG_ETC               configuration folder         [/etc/homeguard]
#   HG_BROKER_DIR        broker directory             [$HG_ETC/broker]
#   HG_GATEWAY_STATE     gateways' state folders      [/var/lib/homeguard/gateway]
#   HG_CENTRE_ENV        the centre's env file        [$HG_ETC/centre.env]
#   HG_BACKUP_CENTRE_DB  the centre database: postgresql://... (libpq URI) or
#                        sqlite:////path or a path; default: HG_CENTRE_DATABASE_URL
#                        from $HG_CENTRE_ENV.  PGPASSWORD is taken from there too.
set -euo pipefail
umask 077

BACKUP_DIR=${HG_BACKUP_DIR:-/var/backups/homeguard}
KEEP_DAYS=${HG_BACKUP_KEEP_DAYS:-14}
ETC=${HG_ETC:-/etc/homeguard}
BROKER_DIR=${HG_BROKER_DIR:-$ETC/broker}
GATEWAY_STATE=${HG_GATEWAY_STATE:-/var/lib/homeguard/gateway}
CENTRE_ENV=${HG_CENTRE_ENV:-$ETC/centre.env}
CENTRE_DB=${HG_BACKUP_CENTRE_DB:-}

say() { printf 'backup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

for tool in sqlite3 tar sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

# env_value FILE NAME: NAME's value in a systemd environment file (never sourced:
# it is not shell syntax)
env_value() {
    [ -r "$1" ] || return 0
    sed -n "s/^[[:space:]]*$2=//p" "$1" | tail -n 1
}

# as_owner FILE CMD...: run CMD as FILE's owner when we are root, so SQLite's
# -wal/-shm files next to a store are never left owned by root
as_owner() {
    local file=$1 uid gid
    shift
    uid=$(stat -c %u "$file")
    gid=$(stat -c %g "$file")
    if [ "$(id -u)" -eq 0 ] && [ "$uid" -ne 0 ]; then
        setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
    else
        "$@"
    fi
}

# sqlite_copy SRC DEST: a consistent online copy of a live (WAL) database.
# VACUUM INTO runs as the store's owner and writes next to the store (the
# owner may write there; the staging folder is root's), then moves here.
sqlite_copy() {
    local src=$1 dest=$2 tmp
    tmp="$(dirname "$src")/.backup-$STAMP-$$.db"
    rm -f "$tmp"
    as_owner "$src" sqlite3 -bail "$src" \
        "PRAGMA busy_timeout=30000; VACUUM INTO '$tmp';" >/dev/null \
        || { rm -f "$tmp"; die "cannot copy $src"; }
    mv "$tmp" "$dest"
    [ "$(id -u)" -ne 0 ] || chown 0:0 "$dest"
    [ "$(sqlite3 "$dest" 'PRAGMA integrity_check;')" = ok ] \
        || die "$dest: the copy of $src fails its integrity check"
}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
FINAL="$BACKUP_DIR/homeguard-$STAMP"
STAGE="$BACKUP_DIR/.homeguard-$STAMP.partial"
mkdir -p "$BACKUP_DIR"
[ -e "$FINAL" ] && die "$FINAL exists already"
rm -rf "$STAGE"
mkdir -m 0700 "$STAGE"
trap 'rm -rf "$STAGE" "$STAGE.sums"' EXIT

# --- configuration and broker material -------------------------------------
if [ -d "$ETC" ]; then
    tar -C "$(dirname "$ETC")" -czf "$STAGE/config.tar.gz" \
        --exclude="$(basename "$ETC")/broker/data" --exclude="$(basename "$ETC")/broker/log" \
        "$(basename "$ETC")"
    say "config: $ETC"
else
    say "config: no $ETC, skipped"
fi
case "$BROKER_DIR/" in
    "$ETC"/*) ;;  # already in config.tar.gz
    *)
        if [ -f "$BROKER_DIR/broker.json" ]; then
            tar -C "$(dirname "$BROKER_DIR")" -czf "$STAGE/broker.tar.gz" \
                --exclude="$(basename "$BROKER_DIR")/data" \
                --exclude="$(basename "$BROKER_DIR")/log" "$(basename "$BROKER_DIR")"
            say "broker: $BROKER_DIR"
        else
            say "broker: no broker directory at $BROKER_DIR, skipped"
        fi
        ;;
esac

# --- gateway stores and registries ------------------------------------------
found=0
if [ -d "$GATEWAY_STATE" ]; then
    mkdir "$STAGE/gateway"
    while IFS= read -r -d '' db; do
        dir=$(dirname "$db")
        name=$(basename "$dir")
        [ "$dir" = "$GATEWAY_STATE" ] && name=gateway
        sqlite_copy "$db" "$STAGE/gateway/$name.db"
        [ -f "$dir/devices.json" ] && cp "$dir/devices.json" "$STAGE/gateway/$name.devices.json"
        say "gateway $name: $db"
        found=$((found + 1))
    done < <(find "$GATEWAY_STATE" -maxdepth 2 -name gateway.db -type f -print0 | sort -z)
fi
[ "$found" -gt 0 ] || say "gateway: no gateway.db under $GATEWAY_STATE, skipped"

# --- centre database ---------------------------------------------------------
[ -n "$CENTRE_DB" ] || CENTRE_DB=$(env_value "$CENTRE_ENV" HG_CENTRE_DATABASE_URL)
if [ -z "${PGPASSWORD:-}" ]; then
    PGPASSWORD=$(env_value "$CENTRE_ENV" PGPASSWORD)
    [ -n "$PGPASSWORD" ] && export PGPASSWORD
fi
case "$CENTRE_DB" in
    "")
        say "centre: no database configured (HG_BACKUP_CENTRE_DB or $CENTRE_ENV), skipped" ;;
    postgresql*://*|postgres://*)
        command -v pg_dump >/dev/null || die "pg_dump is not installed"
        uri="postgresql://${CENTRE_DB#*://}"   # the SQLAlchemy driver name out
        user=${uri#postgresql://}
        user=${user%%@*}
        user=${user%%:*}
        # peer authentication on the Unix socket: dump as the centre's own user
        if [ "$(id -u)" -eq 0 ] && [ -n "$user" ] && id -u "$user" >/dev/null 2>&1; then
            setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- \
                pg_dump --format=custom --no-owner --dbname="$uri" > "$STAGE/centre.pgdump"
        else
            pg_dump --format=custom --no-owner --dbname="$uri" > "$STAGE/centre.pgdump"
        fi
        say "centre: pg_dump of ${uri%%\?*}" ;;
    sqlite:///*|/*)
        path=${CENTRE_DB#sqlite:///}
        [ -f "$path" ] || die "centre database $path does not exist"
        sqlite_copy "$path" "$STAGE/centre.db"
        say "centre: $path" ;;
    *)
        die "centre database URL not understood: ${CENTRE_DB%%:*}://..." ;;
esac

# --- seal --------------------------------------------------------------------
(cd "$STAGE" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) > "$STAGE.sums"
mv "$STAGE.sums" "$STAGE/SHA256SUMS"
mv "$STAGE" "$FINAL"
trap - EXIT
say "done: $FINAL"

if [ "$KEEP_DAYS" -gt 0 ]; then
    find "$BACKUP_DIR" -maxdepth 1 -type d -name 'homeguard-*' -mtime "+$KEEP_DAYS" \
        -exec rm -rf {} + -exec printf 'backup: removed old %s\n' {} \; >&2
fi
