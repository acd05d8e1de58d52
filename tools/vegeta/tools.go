//go:build tools

// Package tools pins the vegeta built into .cache/bin by `scripts/bootstrap.sh bench` for the
// open-loop run of `make bench-http`: requests at a fixed arrival rate, whatever the server's
// latency, so a slow response cannot hold back the next request (no coordinated omission).
package tools

import _ "github.com/tsenart/vegeta/v12"
