package inference_test

import (
	"context"
	"testing"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
)

// loadContract loads the contract test model on the CPU and closes it with the test.
func loadContract(tb testing.TB) *inference.Model {
	tb.Helper()
	m, err := inference.Load(context.Background(), testenv.ContractModel(tb), inference.Options{
		LibraryPath: testenv.ORTLib(tb), Device: inference.DeviceCPU, Threads: 2,
	})
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return m
}

func TestLoadReadsContractFromSession(t *testing.T) {
	m := loadContract(t)
	info := m.Info()
	if info.Version != "contract-v1" {
		t.Errorf("model_version = %q, want contract-v1", info.Version)
	}
	if len(info.Classes) != 25 || info.Classes[0] != "apple__scab" {
		t.Errorf("classes = %v", info.Classes)
	}
	if info.InputSize != 224 || info.ResizeShorter != 256 {
		t.Errorf("input %d resize %d, want 224 256", info.InputSize, info.ResizeShorter)
	}
	if info.Mean != [3]float32{0.485, 0.456, 0.406} || info.Std != [3]float32{0.229, 0.224, 0.225} {
		t.Errorf("mean %v std %v", info.Mean, info.Std)
	}
	if info.Provider != "CPU" || info.CAMWidth != 7 || info.CAMHeight != 7 {
		t.Errorf("provider %q cam %dx%d", info.Provider, info.CAMWidth, info.CAMHeight)
	}
}
