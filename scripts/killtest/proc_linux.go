package main

import (
	"os/exec"
	"syscall"
)

// setParentDeath kills the server when killtest itself dies, so that no server outlives a run.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
