package main

import (
	"errors"
	"fmt"
	"syscall"
)

// listenError explains a failed listen on addr by the flag (and its environment variable) that
// chose the address: a bare "address already in use" left the operator guessing which of serve's
// servers it was and how to move it.
func listenError(server, flagName, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: %s is already in use (by another program, or another cropshield serve): choose another address with --%s or %s: %w",
			server, addr, flagName, envName(flagName), err)
	}
	return fmt.Errorf("%s: cannot listen on %s (--%s or %s): %w", server, addr, flagName, envName(flagName), err)
}
