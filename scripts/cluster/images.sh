#!/usr/bin/env bash
# Builds, without a registry, every image the cluster tier runs: the product image from the
# project's Dockerfile (unchanged), and local stand-ins for what cannot be pulled here: the
# `python:3.13-slim` base (a Debian trixie root filesystem, Python 3.13), Redis (Debian's
# redis-server), FerretDB (the static binary), and the cluster's own pause, CoreDNS and
# metrics-server. Saved as docker-archive tarballs under $IMAGES for `ctr images import`.
# Podman's storage is kept under .cache, so only the product image is rebuilt and saved on a
# warm run.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
CONFIG="$ROOT/scripts/cluster"
BIN="$CACHE_DIR/bin"
IMAGES="${IMAGES:-$CACHE_DIR/images}"
mkdir -p "$IMAGES"
sed "s#@STORAGE@#$IMAGES#g" "$CONFIG/storage.conf" >"$IMAGES/storage.conf"
export CONTAINERS_STORAGE_CONF="$IMAGES/storage.conf" CONTAINERS_CONF="$CONFIG/containers.conf"
started=$(date +%s)
lap() { log "[$(($(date +%s) - started)) s] $*"; }

# This machine's Debian mirror, for the trixie suite.
mirror_url=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror_url" ] || mirror_url=$(awk '/^deb / && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror_url" ] || die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
MIRROR="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror_url%/} trixie main"

exists() { podman image exists "$1"; }

# rootfs_image NAME PACKAGES IMPORT-CHANGES...: a trixie root filesystem with PACKAGES, imported
# as NAME, once.
rootfs_image() {
  local name="$1" packages="$2" tarball="$IMAGES/rootfs.tar"
  shift 2
  exists "$name" && return
  # The host's extra CA certificates: package traffic here goes through an intercepting proxy.
  # They go into this local stand-in only, never into the published image's instructions.
  mmdebstrap --quiet --variant=apt --include="$packages" \
    --customize-hook='if [ -d "$1/usr/local/share/ca-certificates" ]; then cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null; chroot "$1" update-ca-certificates >/dev/null; fi' \
    --customize-hook='rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
    trixie "$tarball" "$MIRROR"
  local changes=() change
  for change in "$@"; do changes+=(--change "$change"); done
  podman import -q "${changes[@]}" "$tarball" "$name" >/dev/null
  rm -f "$tarball"
  lap "$name (Debian trixie)"
}

# scratch_image NAME BINARY [USER]: BINARY alone, as the entrypoint; rebuilt when BINARY changes.
scratch_image() {
  local name="$1" binary="$2" user="${3:-}" context stamp="$IMAGES/${1//[\/:]/_}.built"
  if exists "$name" && [ "$stamp" -nt "$binary" ]; then return; fi
  context=$(mktemp -d)
  cp "$binary" "$context/entrypoint"
  {
    echo "FROM scratch"
    echo "COPY entrypoint /$(basename "$binary")"
    [ -n "$user" ] && echo "USER $user"
    echo "ENTRYPOINT [\"/$(basename "$binary")\"]"
  } >"$context/Containerfile"
  podman build -q --pull=never -t "$name" "$context" >/dev/null
  rm -rf "$context"
  touch "$stamp"
  lap "$name"
}

rootfs_image docker.io/library/python:3.13-slim \
  python3.13,python3.13-venv,python-is-python3,passwd,ca-certificates,netbase,tzdata \
  'CMD ["python3"]' 'ENV LANG=C.UTF-8'
rootfs_image docker.io/library/redis:7.4.2 redis-server,redis-tools \
  'ENTRYPOINT ["redis-server", "--protected-mode", "no"]'
scratch_image registry.k8s.io/pause:3.10 "$BIN/pause" 65535:65535
scratch_image localhost/coredns:local "$BIN/coredns"
scratch_image localhost/metrics-server:local "$BIN/metrics-server"
scratch_image localhost/ferretdb:local "$BIN/ferretdb-static" 10001:10001
podman build -q --pull=never --network=host -t docker.io/library/botsmith:dev "$ROOT" >/dev/null
lap "botsmith:dev (the project's Dockerfile)"

for image in docker.io/library/botsmith:dev docker.io/library/redis:7.4.2 \
  registry.k8s.io/pause:3.10 localhost/coredns:local localhost/metrics-server:local \
  localhost/ferretdb:local; do
  tarball="$IMAGES/$(basename "${image%%:*}").tar"
  id=$(podman image inspect --format '{{.Id}}' "$image")
  # Saved again only when the image changed (on a warm run, the product image alone).
  [ -f "$tarball" ] && [ "$(cat "$tarball.id" 2>/dev/null)" = "$id" ] && continue
  rm -f "$tarball"
  podman save -q --format docker-archive -o "$tarball" "$image"
  echo "$id" >"$tarball.id"
done
lap "saved under $IMAGES"
