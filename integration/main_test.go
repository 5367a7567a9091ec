// Package integration holds end-to-end tests: they build the real leaserun
// binary (and leaserun-http beside it) once and drive it as users do, with real processes, signals,
// process groups and PID namespaces.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// leaserunBin is the path of the leaserun binary built for this test run.
var leaserunBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "leaserun-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	leaserunBin = filepath.Join(dir, "leaserun")
	// A failed build fails the tests: they never skip for it. leaserun-http
	// beside it serves the runs with --health-addr, which leaserun hands
	// to it.
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/leaserun/leaserun/cmd/leaserun", "github.com/leaserun/leaserun/cmd/leaserun-http")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: building leaserun and leaserun-http:", err)
		return 1
	}
	return m.Run()
}
