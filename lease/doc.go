// Package lease implements a cooperative, time-bounded file lease: a
// single-holder lock backed by ordinary files, not an OS primitive. The lease
// records who holds it and until when; a challenger may take over only once
// the lease has expired.
//
// It is intentionally OS-agnostic — JSON files, exclusive links and atomic
// renames — so it behaves identically on Linux, macOS and Windows, and stays
// safe when several hosts share the lease through a network filesystem whose
// kernel locks they do not share.
//
// # Holding
//
// A handle believes it holds the lease from the return of a successful
// Acquire (or Wait) until the first of: Expired reports true, Renew returns
// ErrLost, or Release is called. Two handles on one path never believe at
// once. The holder MUST Renew before the TTL runs out and MUST stop touching
// protected state once Expired reports true: a process paused longer than
// the TTL can be taken over while it still runs. Protect critical operations
// with the fencing token Record.Epoch, which strictly increases with every
// acquisition, so a revived stale holder cannot act ("reject anything older
// than the highest epoch seen"). InstanceID tells who holds.
//
// # On disk
//
// The lease at PATH is two things side by side:
//
//	PATH      the current Record as plain JSON; anyone may read it (cat PATH)
//	PATH.d/   one immutable file per version of the record, named 1, 2, 3, ...
//
// Every change (acquire, renew, release) creates the next version by an
// exclusive hard link, a compare-and-swap the file server enforces, and then
// publishes it to PATH by an atomic rename. The highest version in PATH.d is
// the truth; PATH is a copy for people and tools, which can lag behind for
// a moment after a crash or a race. PATH shares its inode with the newest
// version and is created read-only (but on Windows, where a read-only file
// can't be replaced by a rename): never write it in place. Releasing keeps
// both and marks the record released, so that the epoch never goes back;
// deleting PATH and PATH.d by hand resets the lease, epoch included, and is
// only for a lease that nobody holds or waits on: a holder finds out at its
// next Renew (ErrLost, saying that the lease's files were removed or
// replaced), and until then it runs beside any acquisition started anew.
// See docs/DESIGN.md for the protocol and why it is safe.
//
// # Stores
//
// The protocol is written once over a Store: a register whose every write
// is a compare-and-swap its server enforces (Load, Swap). Files(path) is
// the store of a file lease, as above; Acquire, Wait and Read are
// AcquireStore, WaitStore and ReadStore over it. Another store (object
// storage with conditional writes, etcd) is a package of its own that
// implements Store, and package lease/leasetest checks it against what
// the protocol needs (TestStore) and offers a store in memory with
// injected faults for tests (MemStore). docs/DESIGN.md proves the protocol
// safe from the Store contract alone, and the file store to keep it.
//
// # Time
//
// The holder measures its expiry on the monotonic clock from the instant
// before the write of its last successful Acquire or Renew began. A one-shot
// Acquire judges a held record by wall clock (RenewedAt+TTL, plus the
// WithClockSkew allowance) and so trusts hosts' clocks to agree; Wait judges
// by observation alone (the record unchanged for a whole TTL on its own
// monotonic clock), so skew and wall-clock steps cannot make it take over a
// live lease.
package lease
