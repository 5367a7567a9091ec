//go:build linux && !kong

package main

import "os"

// parseArgs reads [-fsync] FILE COMMAND [ARG...] by hand.
func parseArgs(args []string) (fsync bool, file string, argv []string) {
	fsync = len(args) > 0 && args[0] == "-fsync"
	if fsync {
		args = args[1:]
	}
	if len(args) < 2 {
		os.Stderr.WriteString("usage: floor [-fsync] FILE COMMAND [ARG...]\n")
		os.Exit(64)
	}
	return fsync, args[0], args[1:]
}
