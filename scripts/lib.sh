# Shared set-up steps for scripts/demo and scripts/test (sourced, not run).

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ensure_apt PKG...: install the Debian packages that are not installed yet.
ensure_apt() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || {
            echo "missing Debian packages: ${missing[*]} (run as root or install sudo)" >&2
            return 1
        }
        sudo="sudo"
    fi
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
}

# ensure_venv [EXTRA]: .venv with the project installed (editable), with
# the given extra (pyproject.toml: demo, dev, ...); reinstalls only when
# pyproject.toml changed. pip's output goes to .venv/pip.log, shown if it fails.
ensure_venv() {
    local extra="${1:-}" spec="." stamp
    [ -n "$extra" ] && spec=".[$extra]"
    if [ ! -x .venv/bin/python ]; then
        log "creating .venv"
        python3 -m venv .venv
    fi
    stamp=".venv/.homeguard-$(sha256sum pyproject.toml | cut -c1-16)-${extra:-base}"
    if [ ! -f "$stamp" ]; then
        log "installing Python packages into .venv ($spec; log: .venv/pip.log)"
        if ! { .venv/bin/python -m pip install --upgrade pip \
               && .venv/bin/python -m pip install -e "$spec"; } >.venv/pip.log 2>&1; then
            tail -n 40 .venv/pip.log >&2
            echo "ensure_venv: pip install -e '$spec' failed (whole log: .venv/pip.log)" >&2
            return 1
        fi
        touch "$stamp"
    fi
}
