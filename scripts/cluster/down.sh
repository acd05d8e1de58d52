#!/usr/bin/env bash
# Tears down the cluster up.sh started: its processes (by pid file), the pod sandboxes (through
# CRI, so the CNI plugins release addresses and port rules), kube-proxy's iptables chains, the
# pod bridge, mounts and cgroups under .run/cluster, and the forwarding setting it changed.
# Safe to run twice, or after a partial start.
set -u
source "$(dirname "$0")/../lib.sh"
BIN="$CACHE_DIR/bin"
W="$RUN_DIR/cluster"
[ -e "$W" ] || exit 0

stop() {
  local pid
  pid=$(cat "$W/$1.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$W/$1.pid"
}

stop kubelet
if [ -S "$W/containerd/containerd.sock" ]; then
  "$BIN/crictl" -r "unix://$W/containerd/containerd.sock" rmp -fa >/dev/null 2>&1
fi
stop kube-proxy
stop controller-manager
stop scheduler
stop apiserver
stop etcd
stop containerd
"$BIN/kube-proxy" --cleanup >/dev/null 2>&1
# The runc shims of this containerd (they outlive it by design).
pkill -9 -f "containerd-shim-runc-v2 -namespace k8s.io -id .* -address $W/containerd/containerd.sock" 2>/dev/null
mount | awk -v w="$W" 'index($3, w) == 1 {print $3}' | sort -r | xargs -r -n1 umount -l
ip link del cni0 2>/dev/null
for iptables in iptables ip6tables; do
  for table in nat mangle filter; do
    "$iptables-save" -t "$table" 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | sed 's/^-A/-D/' |
      while read -r rule; do eval "$iptables" -t "$table" "$rule"; done
    for chain in $("$iptables" -t "$table" -S 2>/dev/null | awk '/^-N KUBE/ {print $2}'); do
      "$iptables" -t "$table" -F "$chain"
    done
    for chain in $("$iptables" -t "$table" -S 2>/dev/null | awk '/^-N KUBE/ {print $2}'); do
      "$iptables" -t "$table" -X "$chain"
    done
  done
done
# The kubelet's pod cgroups (cgroup v1: one tree per controller), empty once the pods are gone.
for tree in /sys/fs/cgroup/*/kubepods; do
  [ -d "$tree" ] && find "$tree" -depth -type d -exec rmdir {} + 2>/dev/null
done
[ -f "$W/ip_forward.saved" ] && sysctl -qw "net.ipv4.ip_forward=$(cat "$W/ip_forward.saved")"
rm -rf "$W"
log "cluster down"
