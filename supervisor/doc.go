// Package supervisor runs a command, or a Go function, while holding a file
// lease (package lease), and never lets it outlive the lease.
//
// Run is what the leaserun command is a thin shell over: it acquires the
// lease (or stands by for it), starts the command in its own process group,
// renews the lease, forwards signals, and stops the command before the lease
// can lapse when renewals keep failing. Do is the same for a function.
//
// # Timing
//
// Let D be the lease's deadline (lease.Lease.Deadline: the start of the last
// successful write plus the TTL, on the monotonic clock). A guard, driven by
// timers and never by the renewals nor by the filesystem, sends the stop
// signal to the child's process group at D - Grace - Margin and SIGKILL at
// D - Margin, so that the child is dead before D even when a renewal hangs in
// a stuck filesystem. Every successful renewal moves D, and with it both
// points. Margin is the time SIGKILL needs to take effect.
//
// A renewal is attempted every RenewInterval; Validate insists that
// RenewInterval + Grace + Margin < TTL, so at least one renewal is attempted
// before the child has to be stopped. A failed renewal is retried after
// RenewInterval/4.
//
// # Errors
//
// Run returns nil when the command exited 0, and otherwise an error that
// says what ended it: an *ExitError for the command's own status, or one
// that tells why Run caused the end itself (see Run), which a program such
// as the leaserun command maps to its exit statuses with errors.Is and
// errors.As.
package supervisor
