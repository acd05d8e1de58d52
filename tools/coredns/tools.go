//go:build tools

// Package tools pins the CoreDNS built into .cache/bin for the cluster tier's one-node cluster.
package tools

import _ "github.com/coredns/coredns"
