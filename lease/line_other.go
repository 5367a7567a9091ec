//go:build !linux

package lease

// line: standbys line up only on Linux (line_linux.go); elsewhere every
// standby watches the version directory itself.
type line struct{}

func (*line) closed() <-chan struct{}     { return nil }
func (*line) leads() bool                 { return false }
func (*line) advance() (moved, lead bool) { return false, false }
func (*line) handOver()                   {}
func (*line) leave()                      {}
