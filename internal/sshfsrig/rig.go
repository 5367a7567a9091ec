// Package sshfsrig is test support that simulates several "hosts" sharing one
// directory through a network filesystem, on a single machine and without an
// SSH daemon.
//
// Start creates a real directory and mounts it several times with sshfs
// (FUSE). Every mount talks SFTP over its own loopback TCP connection to its
// own OpenSSH sftp-server process, so each mount behaves like a separate
// client machine: operations go over the wire to the server, kernel and sshfs
// caches are disabled, and a test can stop one mount's server (SIGSTOP) to
// simulate a hung file server while the other mounts keep working.
//
// What the rig does and does not promise about filesystem semantics is
// documented on Start. The package only works on Linux; on other systems
// Available reports an error and Start skips the test.
package sshfsrig

// Rig is a directory shared by several sshfs mounts. It is created by Start
// and torn down automatically by a cleanup registered on the test.
type Rig struct {
	// Dir is the real, local directory that every mount exposes. Accessing
	// it directly is like logging in to the file server.
	Dir string
	// Mounts are the simulated hosts, in the order they were mounted.
	// Mounts[i].Path shows the same files as Dir.
	Mounts []Mount
}

// Mount is one sshfs mount of Rig.Dir, standing in for one client host.
type Mount struct {
	// Path is the mount point.
	Path string
	// ServerPID is the process ID of the sftp-server that serves this mount
	// and no other. Sending it SIGSTOP makes every filesystem operation
	// through Path that needs the server block until SIGCONT; other mounts
	// are unaffected. The rig's cleanup sends SIGCONT itself, so a test may
	// end with the server stopped.
	ServerPID int
	// Options are the sshfs and FUSE options the mount was made with.
	Options string
}

// NegativeCache is a mount option for StartHosts: the host's kernel
// answers a lookup of a name that was missing within the last 20ms from its
// cache, without asking the server, as many network filesystem clients do
// (FUSE filesystems with a negative timeout, GlusterFS's negative-lookup
// cache, the Windows SMB client's file-not-found cache). On such a host a
// name that a directory listing shows can, for a moment, fail to open with
// ENOENT; listings still go to the server.
const NegativeCache = "negative_timeout=0.02"
