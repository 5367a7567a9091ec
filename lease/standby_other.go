//go:build !linux

package lease

// Standbys line up only on Linux (standby_linux.go), where inotify tells
// local filesystems apart and reports the closes of the line's gates;
// elsewhere every standby watches the version directory itself, and polls
// as for a network filesystem.

func localFS(string) bool                { return false }
func joinLine(string, func() bool) *line { return nil }

type line struct{}

func (*line) closed() <-chan struct{}     { return nil }
func (*line) leads() bool                 { return false }
func (*line) advance() (moved, lead bool) { return false, false }
func (*line) handOver()                   {}
func (*line) leave()                      {}
