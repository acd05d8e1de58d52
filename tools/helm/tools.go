//go:build tools

// Package tools pins the helm command built into .cache/bin by scripts/bootstrap.sh.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
