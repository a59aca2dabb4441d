// Package testenv finds what CropShield's tests need on disk: the repository root, the ONNX
// Runtime library that `make deps` installs, the contract test model and ../shared/datasets.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Root is the repository root (the directory holding go.mod).
func Root(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("testenv: cannot locate the source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ORTLib returns the ONNX Runtime library: $CROPSHIELD_ORT_LIB, else the one `make deps`
// installs. Where it is missing the test skips with what to run, except under CI, where a missing
// library is a broken install step and fails.
func ORTLib(tb testing.TB) string {
	tb.Helper()
	p := os.Getenv("CROPSHIELD_ORT_LIB")
	if p == "" {
		p = filepath.Join(Root(tb), ".cache", "onnxruntime", "libonnxruntime.so.1")
	}
	if _, err := os.Stat(p); err != nil {
		msg := "ONNX Runtime library not found at " + p + ": run `make deps` (or set CROPSHIELD_ORT_LIB)"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return p
}

// ContractModel is the committed contract test model.
func ContractModel(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Root(tb), "models", "contract", "contract.onnx")
}

// Datasets returns ../shared/datasets beside the repository, skipping the test where it is
// absent (as on a user's machine).
func Datasets(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(Root(tb), "..", "shared", "datasets")
	if _, err := os.Stat(p); err != nil {
		tb.Skip("../shared/datasets is absent beside the repository: skipping the test that needs real leaf photos")
	}
	return p
}
