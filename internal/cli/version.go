package cli

import (
	"fmt"
	"runtime/debug"
)

// Set at build time with
//
//	go build -ldflags "-X github.com/leaserun/leaserun/internal/cli.version=v1.2.3 \
//	    -X github.com/leaserun/leaserun/internal/cli.commit=$(git rev-parse HEAD)" ./cmd/...
//
// and otherwise taken from the build info.
var (
	version string
	commit  string
)

func versionString() string {
	v, c, dirty := version, commit, false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true" && commit == ""
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	} else if dirty {
		c += "-dirty"
	}
	return fmt.Sprintf("leaserun %s (commit %s)", v, c)
}
