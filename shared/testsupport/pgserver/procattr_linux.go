package pgserver

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill the server if the process that started it dies without
// stopping it, and runs it as uid/gid when they are not -1 (root cannot run PostgreSQL).
func setProcAttr(cmd *exec.Cmd, uid, gid int) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
}
