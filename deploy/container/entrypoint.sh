#!/bin/sh
# Entry point of the Homeguard image: the command chooses the role
# (docs/deploy.md, "Containers"), e.g.
#   homeguard gateway --config /etc/homeguard/gateway.toml
#   homeguard centre
#   mosquitto -c /var/lib/homeguard/broker/mosquitto.conf
# Before it runs, every HG_*_FILE or PGPASSWORD_FILE variable that names a
# readable file sets the variable without _FILE to that file's first line
# (secrets from mounted files rather than from the environment).
set -eu
for pair in $(env | sed -n 's/^\(HG_[A-Z0-9_]*_FILE\|PGPASSWORD_FILE\)=.*/\1/p'); do
    file=$(printenv "$pair")
    name=${pair%_FILE}
    if [ ! -r "$file" ]; then
        echo "entrypoint: $pair: cannot read $file" >&2
        exit 2
    fi
    value=$(head -n 1 "$file")
    export "$name=$value"
    unset "$pair"
done
exec "$@"
