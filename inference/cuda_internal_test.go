package inference

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogCUDAFallback: which line the CUDA fallback logs, by the library (a CPU build, or a GPU
// build whose CUDA provider cannot start) and the device asked for. ONNX Runtime's error is
// always at debug; at info it appears only for a GPU build, where it is the reason to act on.
func TestLogCUDAFallback(t *testing.T) {
	cpuDir, gpuDir := t.TempDir(), t.TempDir()
	for _, d := range []string{cpuDir, gpuDir} {
		if err := os.WriteFile(filepath.Join(d, "libonnxruntime.so.1"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(gpuDir, cudaProviderLib), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A link to a GPU build's library finds the provider beside the link's target.
	link := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.Symlink(filepath.Join(gpuDir, "libonnxruntime.so.1"), link); err != nil {
		t.Fatal(err)
	}
	ortErr := errors.New("FAIL : Failed to load library libonnxruntime_providers_shared.so")
	for _, tc := range []struct {
		name, lib string
		device    Device
		want      string // the line above debug
	}{
		{"CPU build, auto", filepath.Join(cpuDir, "libonnxruntime.so.1"), DeviceAuto, "level=INFO msg=\"" + msgNoCUDABuild + "\"\n"},
		{"CPU build, cuda", filepath.Join(cpuDir, "libonnxruntime.so.1"), DeviceCUDA, "level=WARN msg=\"" + msgCUDAAskedFor + "\"\n"},
		{"GPU build, auto", filepath.Join(gpuDir, "libonnxruntime.so.1"), DeviceAuto, "level=INFO msg=\"" + msgCUDAFailed + "\" device=auto cuda_device=1 err=\"" + ortErr.Error() + "\"\n"},
		{"GPU build, cuda", link, DeviceCUDA, "level=WARN msg=\"" + msgCUDAFailed + "\" device=cuda cuda_device=1 err=\"" + ortErr.Error() + "\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			noTime := func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: noTime}))
			logCUDAFallback(log, Options{LibraryPath: tc.lib, Device: tc.device, CUDADevice: 1}, ortErr)
			debug, rest, _ := strings.Cut(buf.String(), "\n")
			if !strings.HasPrefix(debug, "level=DEBUG") || !strings.Contains(debug, ortErr.Error()) {
				t.Errorf("first line %q, want ONNX Runtime's error at debug", debug)
			}
			if rest != tc.want {
				t.Errorf("above debug:\n%s\nwant:\n%s", rest, tc.want)
			}
		})
	}
}
