//go:build !linux

package line

import "os"

// Standbys line up only on Linux (line_linux.go), where inotify tells
// local filesystems apart and reports the closes of the line's gates;
// elsewhere every standby watches the version directory itself, and polls
// as for a network filesystem.

func LocalFS(string) bool { return false }

func Join(string, func(string) (*os.File, error), func() bool) *Line { return nil }

type Line struct{}

func (*Line) Closed() <-chan struct{}     { return nil }
func (*Line) Leads() bool                 { return false }
func (*Line) Advance() (moved, lead bool) { return false, false }
func (*Line) HandOver()                   {}
func (*Line) Leave()                      {}
