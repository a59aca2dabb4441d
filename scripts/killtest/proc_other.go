//go:build !linux

package main

import "os/exec"

// setParentDeath does nothing where the kernel cannot tie a child's life to its parent's.
func setParentDeath(*exec.Cmd) {}
