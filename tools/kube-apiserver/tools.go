//go:build tools

// Package tools pins the kube-apiserver built into .cache/bin by scripts/bootstrap.sh for the
// control-plane tier of k8s-tests.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
