#!/usr/bin/env bash
# Installs everything the service and its tests need, idempotently: the Python 3.13 virtualenv
# with the locked dependencies, Debian's redis-server and prometheus, and the FerretDB binary.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

find_python() {
  if command -v pyenv >/dev/null 2>&1 && pyenv prefix 3.13.0 >/dev/null 2>&1; then
    echo "$(pyenv prefix 3.13.0)/bin/python"
  elif command -v python3.13 >/dev/null 2>&1; then
    command -v python3.13
  else
    die "Python 3.13 is required (pyenv install 3.13.0, or a python3.13 on PATH)"
  fi
}

install_debian_packages() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || die "need root (or sudo) to apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start system-wide daemons; the project runs its own instances on loopback.
  systemctl disable --now redis-server prometheus >/dev/null 2>&1 || true
  pkill -x redis-server >/dev/null 2>&1 || true
  pkill -x prometheus >/dev/null 2>&1 || true
}

install_python() {
  local stamp="$VENV/.installed" python
  if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/requirements-dev.lock" ] && [ "$stamp" -nt "$ROOT/pyproject.toml" ]; then
    return
  fi
  python="$(find_python)"
  log "creating the virtualenv in $VENV"
  [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv>=0.5,<1"
  "$VENV/bin/python" -m uv pip sync -q --python "$VENV/bin/python" "$ROOT/requirements-dev.lock"
  "$VENV/bin/python" -m uv pip install -q --python "$VENV/bin/python" --no-deps -e "$ROOT"
  touch "$stamp"
}

build_ferretdb() {
  local src="$ROOT/tools/ferretdb"
  if [ -x "$FERRETDB_BIN" ] && [ "$FERRETDB_BIN" -nt "$src/main.go" ] && [ "$FERRETDB_BIN" -nt "$src/go.sum" ]; then
    return
  fi
  command -v go >/dev/null 2>&1 || die "Go is required to build FerretDB (tools/ferretdb)"
  log "building FerretDB (first build takes a minute or two)"
  mkdir -p "$(dirname "$FERRETDB_BIN")"
  (cd "$src" && go build -trimpath -o "$FERRETDB_BIN" .)
}

install_debian_packages
install_python
build_ferretdb
