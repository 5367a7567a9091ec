//go:build linux && kong

package main

import (
	"os"

	"github.com/alecthomas/kong"
)

// cli is the smallest command line shaped like leaserun's: a lease flag
// and a passthrough command.
type cli struct {
	Fsync   bool     `help:"Fsync the file's directory after the first replace."`
	Lease   string   `required:"" placeholder:"FILE" help:"The file to replace."`
	Command []string `arg:"" passthrough:"partial" help:"The command to run."`
}

// parseArgs reads [--fsync] --lease FILE [--] COMMAND [ARG...] with kong.
func parseArgs(args []string) (fsync bool, file string, argv []string) {
	var c cli
	parser := kong.Must(&c, kong.Name("floor"))
	if _, err := parser.Parse(args); err != nil {
		os.Stderr.WriteString("floor: " + err.Error() + "\n")
		os.Exit(64)
	}
	if len(c.Command) > 0 && c.Command[0] == "--" {
		c.Command = c.Command[1:]
	}
	if len(c.Command) == 0 {
		os.Stderr.WriteString("floor: no command to run\n")
		os.Exit(64)
	}
	return c.Fsync, c.Lease, c.Command
}
