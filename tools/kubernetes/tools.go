//go:build tools

// Package tools pins the Kubernetes binaries built into .cache/bin by scripts/bootstrap.sh:
// kube-apiserver for the control-plane tier of k8s-tests, the rest for the one-node cluster of
// the cluster tier (scripts/cluster/).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
