package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
)

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"384MiB", 384 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1.5GiB", 3 << 29, true},
		{"500MB", 500e6, true},
		{"2048", 2048, true},
		{"64 KiB", 64 << 10, true},
		{"off", 0, true},
		{"0", 0, true},
		{"-1MiB", 0, false},
		{"lots", 0, false},
		{"12TB", 0, false},
		{"", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var b byteSize
			err := b.Set(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("Set(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && int64(b) != tc.want {
				t.Errorf("Set(%q) = %d, want %d", tc.in, b, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		v    byteSize
		want string
	}{{384 << 20, "384MiB"}, {2 << 30, "2GiB"}, {0, "off"}, {1000, "1000"}} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("String(%d) = %q, want %q", int64(tc.v), got, tc.want)
		}
	}
}

// TestBenchCommand runs a tiny bench with the contract model and checks the JSON report's shape:
// every stage measured, the handler's cases, throughput and the hostile PNG run.
func TestBenchCommand(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	var stdout, stderr bytes.Buffer
	profile := filepath.Join(t.TempDir(), "cpu.prof")
	code := run([]string{"bench", "--device", "cpu", "--memory-limit", "off", "--rounds", "2", "--photos", "4",
		"--hostile", "2", "--json", "--log-level", "warn", "--cpuprofile", profile}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	if len(rep.Stages) != 3 || len(rep.Handler) != 4 {
		t.Fatalf("%d stage rows, %d handler rows, want 3 and 4", len(rep.Stages), len(rep.Handler))
	}
	for _, s := range rep.Stages {
		if s.N != 2 || s.Decode.P50 <= 0 || s.Inference.P50 <= 0 || s.Encode.P50 <= 0 || s.Analyze.P99 < s.Analyze.P50 {
			t.Errorf("stage row %+v", s)
		}
	}
	for _, h := range rep.Handler {
		if h.N != 2 || h.P50 <= 0 {
			t.Errorf("handler row %+v", h)
		}
	}
	if tp := rep.Throughput; tp.Photos != 4 || tp.Workers != 2 || tp.PhotosPerSec <= 0 || tp.PeakRSSMB <= 0 ||
		tp.PeakAnonMB <= 0 || tp.PeakFileMB <= 0 || tp.PeakGoHeapMB <= 0 || tp.PeakGoHeapMB > tp.PeakAnonMB {
		t.Errorf("throughput %+v", tp)
	}
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("--cpuprofile wrote no profile: %v", err)
	}
	hs := rep.Hostile
	if hs == nil || hs.Photos != 2 || hs.Megapixels < 39.8 || hs.FileBytes > 1<<20 || hs.HealthzFailed != 0 {
		t.Fatalf("hostile %+v", hs)
	}
	replies := 0
	for kind, n := range hs.Replies {
		if kind == bot.KindError {
			t.Errorf("%d hostile PNGs got an error reply", n)
		}
		replies += n
	}
	if replies != 2 {
		t.Errorf("replies %v, want one per hostile PNG", hs.Replies)
	}
	if rep.Machine.JPEG == "" || rep.Machine.Model == "" || rep.Machine.MemoryLimit != "off" {
		t.Errorf("machine %+v", rep.Machine)
	}

	// The table names every stage.
	stdout.Reset()
	if err := rep.print(&stdout); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"decode", "preprocess", "inference", "render", "encode", "4000x3000 JPEG", "same photo again", "photos/s", "peak RSS", "/healthz"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
}
