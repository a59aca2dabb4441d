// Package testenv finds what CropShield's tests need on disk — the repository root, the ONNX
// Runtime library that `make deps` installs, the contract test model and ../shared/datasets — and
// shares one session of the contract model between a package's tests.
package testenv

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/cropshield/cropshield/inference"
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

// contract is the contract model, loaded once per test binary: production shares one session
// between every chat, and loading is the slow part of a test.
var contract struct {
	once sync.Once
	m    *inference.Model
	err  error
}

// ContractSession returns the contract model loaded on the CPU, shared by the tests of one
// package (it is closed when the test binary exits).
func ContractSession(tb testing.TB) *inference.Model {
	tb.Helper()
	lib, path := ORTLib(tb), ContractModel(tb)
	contract.once.Do(func() {
		contract.m, contract.err = inference.Load(context.Background(), path,
			inference.Options{LibraryPath: lib, Device: inference.DeviceCPU})
	})
	if contract.err != nil {
		tb.Fatal(contract.err)
	}
	return contract.m
}
