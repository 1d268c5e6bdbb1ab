//go:build !linux

package pgserver

import "os/exec"

func setProcAttr(cmd *exec.Cmd, uid, gid int) {}
