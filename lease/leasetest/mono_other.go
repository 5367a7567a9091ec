//go:build !linux

package leasetest

import "time"

// processesSupported: mono compares only within one process.
const processesSupported = false

var monoBase = time.Now()

// mono reads the monotonic clock, in nanoseconds since the process began.
func mono() int64 { return int64(time.Since(monoBase)) }
