#!/usr/bin/env bash
# Installs everything the service needs, idempotently: the Python 3.13 virtualenv with the locked
# dependencies, Debian's redis-server and prometheus, and the FerretDB and Helm binaries (built
# from the Go module proxy, cached under .cache/bin). `bootstrap.sh test` adds what only the tests
# use: kube-apiserver and etcd for k8s-tests, checkov for the chart checks, and Debian's chromium
# for the widget's browser tests; `bootstrap.sh bench` adds vegeta for `make bench-http`.
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

# apt_install PACKAGE...: installs the packages from Debian (needs root).
apt_install() {
  log "installing Debian packages: $*"
  [ "$(id -u)" -eq 0 ] || die "need root (or sudo) to apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_debian_packages() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  [ ${#missing[@]} -eq 0 ] && return
  apt_install "${missing[@]}"
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

# build_go_tool NAME PACKAGE [LDFLAGS] [MODULE]: builds PACKAGE from tools/MODULE (default NAME;
# its go.mod pins the version) into .cache/bin/NAME, once: again only when that folder or this
# script changes.
build_go_tool() {
  local name="$1" package="$2" ldflags="${3:-}" src="$ROOT/tools/${4:-$1}" binary="$CACHE_DIR/bin/$1"
  if [ -x "$binary" ] && [ -z "$(find "$src" "$0" -newer "$binary" -type f)" ]; then
    return
  fi
  command -v go >/dev/null 2>&1 || die "Go is required to build $name (tools/$name)"
  log "building $name (the first build takes a few minutes; cached in $CACHE_DIR/bin)"
  mkdir -p "$CACHE_DIR/bin"
  (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$binary" "$package")
}

install_debian_packages
install_python
build_go_tool ferretdb .
# The ldflags Helm's own release build sets: its version, and the Kubernetes version that
# `helm template` and `helm lint` assume (the client-go line it is built with, 1.37).
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=v3.22.0"
for pkg in chartutil lint/rules; do
  helm_ldflags+=" -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=37"
done
build_go_tool helm helm.sh/helm/v3/cmd/helm "$helm_ldflags"

install_checkov() {
  local venv="$CACHE_DIR/checkov" lock="$ROOT/tools/checkov/requirements.lock"
  if [ -x "$venv/bin/checkov" ] && [ "$venv/bin/checkov" -nt "$lock" ]; then
    return
  fi
  log "installing checkov into $venv"
  "$VENV/bin/python" -m uv venv -q --allow-existing --python "$VENV/bin/python" "$venv"
  "$VENV/bin/python" -m uv pip sync -q --python "$venv/bin/python" "$lock"
  touch "$venv/bin/checkov"
}

install_cluster_packages() {
  local missing=() command
  for command in containerd runc iptables conntrack podman mmdebstrap; do
    command -v "$command" >/dev/null 2>&1 || missing+=("$command")
  done
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  [ ${#missing[@]} -eq 0 ] && return
  apt_install "${missing[@]}"
  # The project starts its own containerd for the cluster tier; not the system-wide one.
  systemctl disable --now containerd >/dev/null 2>&1 || true
}

install_chromium() {
  command -v chromium >/dev/null 2>&1 && return
  apt_install chromium fonts-dejavu-core  # the widget's tests drive it headless
}

if [ "${1:-}" = "test" ]; then
  # The version Kubernetes' own release build stamps in; clients (Helm among them) read it.
  k8s_version="v1.37.2"
  k8s_version_ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_version_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
  done
  for command in kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy kubectl; do
    build_go_tool "$command" "k8s.io/kubernetes/cmd/$command" "$k8s_version_ldflags" kubernetes
  done
  build_go_tool etcd go.etcd.io/etcd/server/v3
  # The rest of the cluster tier's one-node cluster (scripts/cluster/); what goes into an image
  # `FROM scratch` is linked statically.
  build_go_tool crictl sigs.k8s.io/cri-tools/cmd/crictl
  CGO_ENABLED=0 build_go_tool coredns github.com/coredns/coredns "-s -w"
  CGO_ENABLED=0 build_go_tool metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server "-s -w"
  CGO_ENABLED=0 build_go_tool pause . "-s -w"
  CGO_ENABLED=0 build_go_tool ferretdb-static . "-s -w" ferretdb
  install_cluster_packages
  install_checkov
  install_chromium
fi

if [ "${1:-}" = "bench" ]; then
  build_go_tool vegeta github.com/tsenart/vegeta/v12  # the open-loop load of `make bench-http`
fi
