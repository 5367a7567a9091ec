// Package cli is the leaserun command line: the leaserun executable, which
// runs one command while holding a lease and never lets that command
// outlive the lease, and the executables that add to it what leaserun
// does not link, and hands to them: a network store (leaserun-s3,
// leaserun-etcd: leaserun WithScheme), the health server (leaserun-http:
// leaserun WithHealth, which leaserun-s3 and leaserun-etcd link too).
// The README's reference section is the contract (flags, environment, exit
// statuses); package supervisor is how.
//
//	leaserun [run] --lease LOCATION [flags] -- COMMAND [ARG...]
//	leaserun status --lease LOCATION [--format TEMPLATE]
//	leaserun release --lease LOCATION --epoch N
//	leaserun --version | --help
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"

	"github.com/alecthomas/kong"
)

// cli is the command line: one struct per command.
type cli struct {
	Version versionFlag `help:"Print the version and commit, and exit."`

	Run     runCmd     `cmd:"" default:"withargs" help:"Run a command while holding the lease (the default command)."`
	Status  statusCmd  `cmd:"" help:"Print the lease's record as JSON; exit 0 if it is held."`
	Release releaseCmd `cmd:"" help:"Release the lease of a dead holder, if still at --epoch N."`
}

// Main runs leaserun with args and returns its exit status. opts say what
// the calling executable links beside leaserun's own (WithScheme,
// WithHealth); what it does not link is handed to the executable that does
// (see Scheme, and runCmd.Run for --health-addr).
func Main(args []string, stdout, stderr io.Writer, opts ...Option) int {
	ls := &leases{args: args}
	for _, o := range opts {
		o(&ls.links)
	}
	if status, handed := ls.handOffEarly(); handed {
		return status
	}
	ls.openEarly()
	defer ls.closeEarly()
	var c cli
	exited := -1 // the status kong asked to exit with
	parser := kong.Must(&c,
		kong.Name("leaserun"),
		kong.Description("Run one command while holding a lease, and never let it outlive the lease."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) {
			if exited < 0 {
				exited = code
			}
		}),
	)
	kctx, err := parser.Parse(withCommand(args))
	switch {
	case exited >= 0:
		// --help or --version has been printed, and asked to exit: Parse
		// went on, and what it found does not matter.
		return exited
	case err != nil:
		return usage(stderr, err)
	}
	err = kctx.Run(ls)
	var status exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, new(usageError)):
		return usage(stderr, err)
	}
	fmt.Fprintf(stderr, "leaserun: error: %v\n", err)
	return 1
}

// usage says what is wrong with the command line, and returns exitUsage.
func usage(stderr io.Writer, err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		err = ue // without the command's name, which kong puts before a Validate's error
	}
	fmt.Fprintf(stderr, "leaserun: error: %v\n", err)
	return exitUsage
}

// BeforeReset makes kong take an empty environment variable for an unset
// one, so that its flag keeps its default: systemd's Environment=LEASERUN_WAIT=
// and a shell's LEASERUN_WAIT= make them, to mean "not set here" (kong would
// parse the empty value, and fail on most). The variables are dropped from
// the flags of the model, which Main makes for one parse, just before kong
// reads them; the environment itself, which the child gets, is left as it
// is. Not so for --help, which names every flag's variable, and reads none.
func (c *cli) BeforeReset(kctx *kong.Context) error {
	for _, p := range kctx.Path {
		if p.Flag != nil && p.Flag.Name == "help" {
			return nil
		}
	}
	unsetEmptyEnv(kctx.Model.Node)
	return nil
}

// unsetEmptyEnv drops the empty environment variables from the flags of node
// and its children.
func unsetEmptyEnv(node *kong.Node) {
	for _, f := range node.Flags {
		f.Tag.Envs = slices.DeleteFunc(slices.Clone(f.Tag.Envs), func(env string) bool {
			v, ok := os.LookupEnv(env)
			return ok && v == ""
		})
		f.Envs = f.Tag.Envs
	}
	for _, child := range node.Children {
		unsetEmptyEnv(child)
	}
}

// withCommand names the run command when args leave it out and have a --.
// Kong matches the names of commands in positional arguments, those after
// -- too, and has no option against it: it would take a COMMAND named like
// one of ours ("leaserun --lease p -- status") for that command. A command
// name before the first -- means it was given (the value of a flag spelled
// like one, as in "--lease run", also counts: then kong parses as it always
// did).
func withCommand(args []string) []string {
	for _, a := range args {
		switch a {
		case "run", "status", "release":
			return args
		case "--":
			return append([]string{"run"}, args...)
		}
	}
	return args
}

// Exit statuses (sysexits.h and the shell's), beside the child's own and
// --held-exit-code (75, EX_TEMPFAIL, unless given).
const (
	exitUsage      = 64  // a bad flag or value, no command, no lease path
	exitIO         = 74  // an I/O error on the lease file
	exitLost       = 76  // the lease was lost while the child ran
	exitTimeout    = 124 // --max-runtime stopped the child (timeout(1)'s)
	exitCannotExec = 126 // the command was found but could not be executed
	exitNotFound   = 127 // the command was not found
)

// exitStatus ends leaserun with a status, what went wrong having been said.
type exitStatus int

func (s exitStatus) Error() string { return "exit status " + strconv.Itoa(int(s)) }

// usageError is a bad command line, said in a line that names the flag.
type usageError string

func (e usageError) Error() string { return string(e) }

func usageErrorf(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }

// Exec is the main function of a leaserun executable that links opts: it
// runs Main with the process's arguments and exits with its status.
//
// Main runs on a goroutine of its own while the main goroutine, locked to
// the main thread since init, waits for it: the main thread stays idle. The
// kernel gives a signal sent to the process to its main thread first, and a
// thread held in a file server that no longer answers (a FUSE or hard NFS
// mount) keeps such a signal from the Go runtime for as long as the server
// does: a TERM would not end a leaserun whose release hangs there.
func Exec(opts ...Option) {
	if os.Getenv("GOMAXPROCS") == "" && !networkLease(os.Args[1:]) {
		// A file lease has no parallel work: one P spares the thread
		// hand-offs that a second one costs at every wake-up (a hundred
		// standbys woken by a release hand off sooner), and stops
		// the runtime re-reading the cgroup's CPU limit every second. A
		// network store's client works in goroutines of its own (gRPC's
		// transport, the HTTP client's), which overlap the waits for the
		// server and the catching of signals only on a second P: there
		// the runtime's default stays (the README's etcd figures).
		runtime.GOMAXPROCS(1)
	}
	status := make(chan int)
	go func() { status <- Main(os.Args[1:], os.Stdout, os.Stderr, opts...) }()
	os.Exit(<-status)
}

// init locks the main goroutine to the main thread for Exec: only a lock
// taken during initialisation is sure to hold the thread that main runs on.
func init() { runtime.LockOSThread() }

// networkLease reports whether args name a lease in a network store
// (s3://, etcd://, etcds://), as earlyLease finds it.
func networkLease(args []string) bool {
	value, ok := earlyLease(args)
	if !ok {
		return false
	}
	at, err := parseLease(value)
	return err == nil && at.scheme != ""
}
