//go:build tools

// Package tools pins the metrics-server built into .cache/bin for the cluster tier (the HPA's
// resource metrics).
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
