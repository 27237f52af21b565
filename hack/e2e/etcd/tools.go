//go:build tools

// Package tools records the packages this wrapper module builds (hack/e2e/build-peers.sh).
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
