package supervisor

import "syscall"

// setParentDeathSignal has the kernel SIGKILL the child when leaserun dies
// (SIGKILL, OOM), so no orphan runs on unguarded. The signal is tied to the
// thread that started the child: see startChild.
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
