package main

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/internal/testenv"
)

// TestServeAddressInUse: a port taken by another program is refused with the flag and the
// environment variable that move it, for the web chat (--addr) and the dashboard (--review-addr).
func TestServeAddressInUse(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"web chat", []string{"--addr", busy, "--review-addr", ""}, []string{"web chat: " + busy + " is already in use", "--addr", "CROPSHIELD_ADDR"}},
		{"dashboard", []string{"--addr", "127.0.0.1:0", "--review-addr", busy}, []string{"review dashboard: " + busy + " is already in use", "--review-addr", "CROPSHIELD_REVIEW_ADDR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--device", "cpu", "--db", filepath.Join(t.TempDir(), "x.db")}, tc.args...)
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			last := lastLine(stderr.String())
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("the error lacks %q: %s", w, last)
				}
			}
		})
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
