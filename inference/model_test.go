package inference_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// logRecorder captures log records for assertions.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) all() []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}

func (l *logRecorder) find(level slog.Level, msg string) (slog.Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r.Level == level && r.Message == msg {
			return r, true
		}
	}
	return slog.Record{}, false
}

// TestDeviceSelection: this machine's library is a CPU build, so CUDA must fall back to the CPU
// cleanly, and the log says what runs. With --device auto the fallback is one short info line
// (ONNX Runtime's long "FAIL : Failed to load library ...providers_shared.so" only at debug); an
// explicit --device cuda warns; --device cpu does not try CUDA.
func TestDeviceSelection(t *testing.T) {
	for _, tc := range []struct {
		device    inference.Device
		wantLevel slog.Level // of the fallback line; -99 for none
		wantMsg   string
	}{
		{inference.DeviceCUDA, slog.LevelWarn, "--device cuda, but this ONNX Runtime build has no CUDA (see README, GPU); using the CPU"},
		{inference.DeviceAuto, slog.LevelInfo, "CUDA not available with this ONNX Runtime build; using the CPU"},
		{inference.DeviceCPU, -99, ""},
	} {
		t.Run(string(tc.device), func(t *testing.T) {
			rec := &logRecorder{}
			m, err := inference.Load(context.Background(), testenv.ContractModel(t), inference.Options{
				LibraryPath: testenv.ORTLib(t), Device: tc.device, Logger: slog.New(rec),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := m.Close(); err != nil {
					t.Error(err)
				}
			}()
			if got := m.Info().Provider; got != "CPU" {
				t.Errorf("provider = %q, want CPU on a machine without CUDA", got)
			}
			// Above debug: the fallback line alone mentions CUDA, and nothing has ONNX Runtime's
			// error text.
			var cudaLines []string
			for _, r := range rec.all() {
				text := r.Message
				r.Attrs(func(a slog.Attr) bool { text += " " + a.Key + "=" + a.Value.String(); return true })
				if r.Level >= slog.LevelInfo && strings.Contains(text, "CUDA") {
					cudaLines = append(cudaLines, r.Level.String()+" "+text)
				}
				if r.Level >= slog.LevelInfo && strings.Contains(text, "providers_shared") {
					t.Errorf("ONNX Runtime's error above debug: %s", text)
				}
			}
			if tc.wantMsg == "" && len(cudaLines) > 0 || tc.wantMsg != "" && (len(cudaLines) != 1 || cudaLines[0] != tc.wantLevel.String()+" "+tc.wantMsg) {
				t.Errorf("CUDA lines above debug: %q, want %v %q", cudaLines, tc.wantLevel, tc.wantMsg)
			}
			if _, ok := rec.find(slog.LevelDebug, "CUDA execution provider failed"); ok != (tc.wantMsg != "") {
				t.Errorf("debug line with ONNX Runtime's error logged = %v", ok)
			}
			loaded, ok := rec.find(slog.LevelInfo, "model loaded")
			if !ok {
				t.Fatal("no 'model loaded' line")
			}
			var provider string
			loaded.Attrs(func(a slog.Attr) bool {
				if a.Key == "provider" {
					provider = a.Value.String()
				}
				return true
			})
			if provider != "CPU" {
				t.Errorf("'model loaded' says provider %q", provider)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	lib := testenv.ORTLib(t)
	notONNX := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(notONNX, []byte("this is not a model"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, model, lib string
		want             error
		mention          string
	}{
		{"missing library", testenv.ContractModel(t), filepath.Join(t.TempDir(), "libonnxruntime.so.1"), inference.ErrRuntime, "make deps"},
		{"library is not a library", testenv.ContractModel(t), notONNX, inference.ErrRuntime, "ONNX Runtime >="},
		{"not an ONNX file", notONNX, lib, inference.ErrContract, "not a loadable ONNX model"},
		{"missing model", filepath.Join(t.TempDir(), "nope.onnx"), lib, os.ErrNotExist, "read model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := inference.Load(context.Background(), tc.model, inference.Options{LibraryPath: tc.lib, Device: inference.DeviceCPU})
			if err == nil {
				_ = m.Close()
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %v, want %v mentioning %q", err, tc.want, tc.mention)
			}
		})
	}
	// A failed Load leaves nothing behind: a good one still works.
	loadContract(t)
}

func TestCloseIsFinalAndIdempotent(t *testing.T) {
	m, err := inference.Load(context.Background(), testenv.ContractModel(t), inference.Options{LibraryPath: testenv.ORTLib(t), Device: inference.DeviceCPU})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	n := m.Info().InputSize
	if _, err := m.Predict(context.Background(), make([]float32, 3*n*n), 1); !errors.Is(err, inference.ErrClosed) {
		t.Fatalf("Predict after Close: %v, want ErrClosed", err)
	}
}

// TestAnalyzeConcurrently shares one session between goroutines (run with -race).
func TestAnalyzeConcurrently(t *testing.T) {
	m := loadContract(t)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(testenv.ContractModel(t)), "testdata", "leafish-256.png"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Analyze(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := m.Analyze(context.Background(), data)
			if err != nil {
				errs <- err
				return
			}
			for j := range got.Top {
				if got.Top[j].Index != want.Top[j].Index || math.Abs(got.Top[j].Prob-want.Top[j].Prob) > 1e-6 {
					errs <- fmt.Errorf("concurrent top %d = %+v, want %+v", j, got.Top[j], want.Top[j])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if want.OverlayWidth != 256 || want.OverlayHeight != 256 || want.Format != "png" {
		t.Errorf("overlay %dx%d of %s, want 256x256 of png", want.OverlayWidth, want.OverlayHeight, want.Format)
	}
}
