package inference_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
)

// loadInChildEnv makes TestLoadWithLongCommandLine's child process load the model and exit.
const loadInChildEnv = "CROPSHIELD_TEST_LOAD_CHILD"

// TestLoadWithLongCommandLine: a process with a long command line (`cropshield diagnose` with
// 1,465 photo paths) loads the model. ONNX Runtime's telemetry, on by default, matched a
// recursive std::regex over /proc/self/cmdline and overflowed its thread's stack (SIGSEGV in
// CreateOrtEnv) from ~28 KB of arguments; Load keeps it off, so it also writes nothing under
// $HOME/.cache/Microsoft.
func TestLoadWithLongCommandLine(t *testing.T) {
	if os.Getenv(loadInChildEnv) != "" {
		m, err := inference.Load(context.Background(), testenv.ContractModel(t), inference.Options{
			LibraryPath: testenv.ORTLib(t), Device: inference.DeviceCPU, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	lib := testenv.ORTLib(t)
	// 400 KB of arguments, far beyond what the 8 MB stack took: the test binary ignores them.
	args := []string{"-test.run=^TestLoadWithLongCommandLine$", "--"}
	pad := strings.Repeat("x", 999)
	for range 400 {
		args = append(args, pad)
	}
	home := t.TempDir()
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, inference.TelemetryEnv+"=") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, loadInChildEnv+"=1", "HOME="+home, "CROPSHIELD_ORT_LIB="+lib)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		first, _, _ := strings.Cut(string(out), "\n\n")
		t.Fatalf("the child loading the model with a long command line failed (%v):\n%s", err, first)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, ".cache", "Microsoft")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ONNX Runtime's telemetry wrote under $HOME/.cache/Microsoft: %v", err)
	}
}
