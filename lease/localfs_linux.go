package lease

import "syscall"

// localFS reports whether dir is on a filesystem of this machine's own
// disks or memory, where inotify reports every change, since no other host
// can write to it. Network and FUSE filesystems (NFS, SMB, sshfs), and
// overlays, are not: writes made elsewhere reach them unannounced.
func localFS(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	switch uint32(st.Type) {
	case 0xEF53, // ext2, ext3, ext4
		0x58465342, // xfs
		0x9123683E, // btrfs
		0xF2F52010, // f2fs
		0x01021994, // tmpfs
		0x858458F6: // ramfs
		return true
	}
	return false
}
