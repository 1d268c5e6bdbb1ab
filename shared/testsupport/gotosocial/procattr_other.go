//go:build !linux

package gotosocial

import "os/exec"

func setProcAttr(cmd *exec.Cmd) {}
