//go:build linux

package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/supervisor"
)

// Run a command while holding the lease, and tell its own status from the
// reasons Run may end it itself.
func ExampleRun() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	cmd := exec.Command("sh", "-c", `test -n "$LEASERUN_INSTANCE_ID" && exit 3`)
	err := supervisor.Run(context.Background(), supervisor.NewConfig(filepath.Join(dir, "job.lease"), 15*time.Second), cmd)
	var exit *supervisor.ExitError
	switch {
	case errors.As(err, &exit):
		fmt.Println("the command exited", exit.Code)
	case errors.Is(err, lease.ErrHeld):
		fmt.Println("another instance holds the lease")
	case err != nil:
		fmt.Println(err)
	}
	// Output: the command exited 3
}

// Call a function while holding the lease: its context ends when the lease
// is lost.
func ExampleDo() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	cfg := supervisor.NewConfig(filepath.Join(dir, "leader.lease"), 15*time.Second)
	cfg.Wait = true
	err := supervisor.Do(context.Background(), cfg, func(ctx context.Context) error {
		fmt.Println("leading")
		return nil
	})
	fmt.Println(err)
	// Output:
	// leading
	// <nil>
}
