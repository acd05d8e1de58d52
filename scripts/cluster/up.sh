#!/usr/bin/env bash
# Starts a one-node Kubernetes 1.37 cluster for the cluster tier: Debian's containerd and runc,
# the CNI bridge plugin, etcd, the control plane, kubelet and kube-proxy built by
# `scripts/bootstrap.sh test`, then CoreDNS and metrics-server. Imports the images saved by
# images.sh. Everything lives under .run/cluster; down.sh stops exactly what this started.
# Cluster auth is one admin token and the kubelet allows every caller: for tests only.
# Prints the kubeconfig's path on its last line.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
CONFIG="$ROOT/scripts/cluster"
BIN="$CACHE_DIR/bin"
IMAGES="${IMAGES:-$CACHE_DIR/images}"
W="$RUN_DIR/cluster"

[ "$(id -u)" -eq 0 ] || die "the cluster tier needs root (containerd, network devices, iptables)"
[ ! -e "$W" ] || die "$W exists: a cluster is running, or was not torn down (scripts/cluster/down.sh)"
pgrep -x kubelet >/dev/null && die "a kubelet is already running on this machine"
mkdir -p "$W"/{containerd,cni/net.d,kubelet/manifests,pki}

# The node's address: the first global IPv4 address that is not a pod bridge's.
NODE_IP=$(ip -4 -o addr show scope global | awk '$2 != "cni0" {print $4; exit}' | cut -d/ -f1)
[ -n "$NODE_IP" ] || die "no global IPv4 address for the node"
free_port() { "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ETCD_PORT=$(free_port) ETCD_PEER_PORT=$(free_port) APISERVER_PORT=$(free_port) KUBELET_PORT=$(free_port)

background() {
  local name="$1"
  shift
  nohup "$@" >"$W/$name.log" 2>&1 &
  echo $! >"$W/$name.pid"
}
wait_for() {
  local what="$1" deadline=$((SECONDS + 120))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out waiting for $what (logs in $W)"
    sleep 0.5
  done
}

# Pod traffic crosses the bridge and is forwarded; the previous values are restored by down.sh.
sysctl -n net.ipv4.ip_forward >"$W/ip_forward.saved"
modprobe br_netfilter 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

# containerd: its own root, state and socket; cgroupfs; the local pause image. This machine gives
# root no CAP_SYS_RESOURCE, so containerd must not raise a container's OOM score adjustment.
containerd config default | sed \
  -e "s#^root = .*#root = \"$W/containerd/root\"#" \
  -e "s#^state = .*#state = \"$W/containerd/state\"#" \
  -e "0,/address = \"\/run\/containerd\/containerd.sock\"/s##address = \"$W/containerd/containerd.sock\"#" \
  -e 's#sandbox_image = .*#sandbox_image = "registry.k8s.io/pause:3.10"#' \
  -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \
  -e 's#bin_dir = "/opt/cni/bin"#bin_dir = "/usr/lib/cni"#' \
  -e "s#conf_dir = \"/etc/cni/net.d\"#conf_dir = \"$W/cni/net.d\"#" >"$W/containerd/config.toml"
sed "s#@W@#$W#g" "$CONFIG/10-bridge.conflist" >"$W/cni/net.d/10-bridge.conflist"
background containerd containerd --config "$W/containerd/config.toml"
ctr=(ctr --address "$W/containerd/containerd.sock" -n k8s.io)
wait_for containerd "${ctr[@]}" version
for tarball in "$IMAGES"/*.tar; do "${ctr[@]}" images import "$tarball" >/dev/null; done
log "containerd up, images imported"

# Control plane credentials: a service-account key, the front-proxy pair metrics-server's
# aggregated API needs, and one admin token.
openssl genrsa -out "$W/pki/sa.key" 2048 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=front-proxy-ca \
  -keyout "$W/pki/front-proxy-ca.key" -out "$W/pki/front-proxy-ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=front-proxy-client \
  -keyout "$W/pki/front-proxy.key" -out "$W/pki/front-proxy.csr" 2>/dev/null
openssl x509 -req -in "$W/pki/front-proxy.csr" -CA "$W/pki/front-proxy-ca.crt" \
  -CAkey "$W/pki/front-proxy-ca.key" -CAcreateserial -days 2 -out "$W/pki/front-proxy.crt" 2>/dev/null
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$TOKEN,admin,admin,system:masters" >"$W/pki/tokens.csv"
cat >"$W/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://$NODE_IP:$APISERVER_PORT", insecure-skip-tls-verify: true}}]
contexts: [{name: local, context: {cluster: local, user: admin}}]
current-context: local
users: [{name: admin, user: {token: "$TOKEN"}}]
KUBECONFIG

background etcd "$BIN/etcd" --name=node1 --data-dir="$W/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="node1=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level=warn
background apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=0.0.0.0 --advertise-address="$NODE_IP" --secure-port="$APISERVER_PORT" \
  --cert-dir="$W/pki/apiserver" --token-auth-file="$W/pki/tokens.csv" --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$W/pki/sa.key" --service-account-signing-key-file="$W/pki/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 --kubelet-preferred-address-types=InternalIP \
  --requestheader-client-ca-file="$W/pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- --proxy-client-cert-file="$W/pki/front-proxy.crt" \
  --proxy-client-key-file="$W/pki/front-proxy.key" --enable-aggregator-routing=true
kubectl=("$BIN/kubectl" --kubeconfig "$W/kubeconfig")
wait_for kube-apiserver "${kubectl[@]}" get --raw /readyz
log "control plane up on https://$NODE_IP:$APISERVER_PORT"

controller_flags=(--kubeconfig="$W/kubeconfig" --authentication-kubeconfig="$W/kubeconfig"
  --authorization-kubeconfig="$W/kubeconfig" --leader-elect=false --secure-port=0)
background controller-manager "$BIN/kube-controller-manager" "${controller_flags[@]}" \
  --service-account-private-key-file="$W/pki/sa.key" --root-ca-file="$W/pki/apiserver/apiserver.crt" \
  --controllers='*,-nodeipam'
background scheduler "$BIN/kube-scheduler" "${controller_flags[@]}"
sed -e "s#@W@#$W#g" -e "s#@PORT@#$KUBELET_PORT#g" "$CONFIG/kubelet.yaml" >"$W/kubelet/config.yaml"
background kubelet "$BIN/kubelet" --config="$W/kubelet/config.yaml" --kubeconfig="$W/kubeconfig" \
  --root-dir="$W/kubelet/root" --node-ip="$NODE_IP" --hostname-override=node1
sed "s#@W@#$W#g" "$CONFIG/kube-proxy.yaml" >"$W/kube-proxy.yaml"
background kube-proxy "$BIN/kube-proxy" --config="$W/kube-proxy.yaml"
wait_for "node1 Ready" "${kubectl[@]}" wait --for=condition=Ready node/node1 --timeout=1s
wait_for "the default service account" "${kubectl[@]}" get serviceaccount default
"${kubectl[@]}" apply -f "$CONFIG/coredns.yaml" -f "$CONFIG/metrics-server.yaml" >/dev/null
"${kubectl[@]}" -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null
log "cluster up: node1 Ready, CoreDNS and metrics-server applied"
echo "$W/kubeconfig"
