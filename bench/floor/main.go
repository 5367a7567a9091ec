//go:build linux

// Command floor is the least any Go wrapper of a file lease can cost:
//
//	floor [-fsync] FILE COMMAND [ARG...]
//
// It replaces FILE atomically (create a temp file beside it, write a small
// record, rename over FILE), forks and execs COMMAND and waits for it, then
// replaces FILE once more, and exits with COMMAND's status. With -fsync it
// also fsyncs FILE's directory after the first replace: the one fsync per
// acquisition that the lease pays (lease/store.go put, durable).
//
// It uses package syscall only (no os/exec, no flag package) so that its
// start-up is as small as a Go program's can be; bench/run.sh compares
// leaserun with it.
//
// Built with -tags kong, it parses its arguments with kong instead, as
// leaserun does (args_kong.go): that is the least a wrapper whose command
// line is kong's can cost.
package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// record is about the size of a real lease record (lease/record.go).
var record = []byte(`{"instance_id":"00000000-0000-4000-8000-000000000000","pid":1,"host":"floor",` +
	`"acquired_at":"2026-01-01T00:00:00.000000000Z","renewed_at":"2026-01-01T00:00:00.000000000Z",` +
	`"ttl":15000000000,"epoch":1}` + "\n")

func die(msg string, err error) {
	os.Stderr.WriteString("floor: " + msg + ": " + err.Error() + "\n")
	os.Exit(70)
}

// replace writes record to a fresh temp name beside file and renames it over
// file.
func replace(file, tmp string) {
	fd, err := syscall.Open(tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o444)
	if err != nil {
		die("create "+tmp, err)
	}
	if _, err := syscall.Write(fd, record); err != nil {
		die("write "+tmp, err)
	}
	if err := syscall.Close(fd); err != nil {
		die("close "+tmp, err)
	}
	if err := syscall.Rename(tmp, file); err != nil {
		die("rename "+tmp, err)
	}
}

func syncDir(dir string) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		die("open "+dir, err)
	}
	if err := syscall.Fsync(fd); err != nil {
		die("fsync "+dir, err)
	}
	syscall.Close(fd)
}

// lookPath finds name as a shell would (no relative PATH entries).
func lookPath(name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, dir := range strings.Split(os.Getenv("PATH"), ":") {
		if dir == "" {
			continue
		}
		p := dir + "/" + name
		if err := syscall.Access(p, 1 /* X_OK */); err == nil {
			return p
		}
	}
	os.Stderr.WriteString("floor: " + name + ": command not found\n")
	os.Exit(127)
	return ""
}

func main() {
	fsync, file, argv := parseArgs(os.Args[1:])
	dir := "."
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		dir = file[:i+1]
	}
	tmp := file + ".tmp-" + strconv.Itoa(os.Getpid())

	replace(file, tmp)
	if fsync {
		syncDir(dir)
	}
	pid, err := syscall.ForkExec(lookPath(argv[0]), argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		die("exec "+argv[0], err)
	}
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	replace(file, tmp)
	switch {
	case ws.Exited():
		os.Exit(ws.ExitStatus())
	case ws.Signaled():
		os.Exit(128 + int(ws.Signal()))
	}
	os.Exit(70)
}
