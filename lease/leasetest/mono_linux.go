//go:build linux

package leasetest

import "golang.org/x/sys/unix"

// processesSupported: mono compares between processes.
const processesSupported = true

// mono reads CLOCK_MONOTONIC, in nanoseconds. Unlike time.Now's monotonic
// reading (relative to the process start), it is comparable between
// processes on one machine.
func mono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}
