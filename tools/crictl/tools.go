//go:build tools

// Package tools pins the crictl the cluster tier's teardown uses to remove pod sandboxes through
// CRI, so that the CNI plugins release their addresses and rules.
package tools

import _ "sigs.k8s.io/cri-tools/cmd/crictl"
