//go:build tools

// Package tools pins the etcd built into .cache/bin by scripts/bootstrap.sh for the
// control-plane tier of k8s-tests (Debian's etcd 3.4 is older than kube-apiserver supports).
package tools

import _ "go.etcd.io/etcd/server/v3"
