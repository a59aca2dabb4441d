package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/internal/testenv"
)

func TestDiagnose(t *testing.T) {
	dir := t.TempDir()
	leaf1, leaf2, junk := filepath.Join(dir, "leaf1.jpg"), filepath.Join(dir, "leaf2.jpg"), filepath.Join(dir, "notes.jpg")
	for p, data := range map[string][]byte{leaf1: testLeaf(t), leaf2: testLeaf(t), junk: []byte("not a photo")} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	var stdout, stderr bytes.Buffer
	code := run([]string{"diagnose", "--device", "cpu", leaf1, junk, leaf2}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code %d with one bad file, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], leaf1+":") || !strings.HasPrefix(lines[1], leaf2+":") {
		t.Fatalf("stdout:\n%s", stdout.String())
	}
	if strings.Count(lines[0], "%") != 3 || !strings.Contains(lines[0], "__") {
		t.Errorf("line lacks the top-3 with percentages: %s", lines[0])
	}
	if !strings.Contains(stderr.String(), junk+": not an image") || !strings.Contains(stderr.String(), "1 of 3 files could not be diagnosed") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	for _, p := range []string{leaf1, leaf2} {
		f, err := os.Open(p + ".overlay.jpg")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 1024 || cfg.Height != 768 {
			t.Errorf("%s.overlay.jpg: %+v %v", p, cfg, err)
		}
	}
	if _, err := os.Stat(junk + ".overlay.jpg"); !os.IsNotExist(err) {
		t.Errorf("an overlay was written for the bad file: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: cropshield"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"diagnose"}, 2, "usage: cropshield diagnose"},
		{[]string{"serve", "--device", "tpu"}, 2, "unknown device"},
		{[]string{"serve", "--log-format", "xml"}, 2, "--log-format"},
		{[]string{"serve", "extra"}, 2, "serve takes no arguments"},
		{[]string{"serve", "--model", "/nonexistent/model.onnx", "--db", "DB"}, 1, "load model"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for i, a := range tc.args {
				if a == "DB" {
					tc.args[i] = filepath.Join(t.TempDir(), "x.db")
				}
			}
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}

// TestFlagsFromEnvironment: CROPSHIELD_* sets a default, the command line wins, and a bad value
// in the environment is an error naming the variable.
func TestFlagsFromEnvironment(t *testing.T) {
	parse := func(args ...string) (modelConfig, error) {
		var c modelConfig
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		c.register(fs)
		return c, parseFlags(fs, args, &bytes.Buffer{})
	}
	t.Setenv("CROPSHIELD_DEVICE", "cuda")
	t.Setenv("CROPSHIELD_CUDA_DEVICE", "1")
	c, err := parse()
	if err != nil || c.device != "cuda" || c.cudaDev != 1 {
		t.Fatalf("from env: %+v %v", c, err)
	}
	if c, err = parse("--device", "cpu"); err != nil || c.device != "cpu" {
		t.Fatalf("flag over env: %+v %v", c, err)
	}
	t.Setenv("CROPSHIELD_THREADS", "many")
	if _, err := parse(); err == nil || !strings.Contains(err.Error(), "CROPSHIELD_THREADS") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if code := run([]string{"version"}, &stdout, &bytes.Buffer{}); code != 0 || !strings.HasPrefix(stdout.String(), "cropshield ") {
		t.Fatalf("version: %d %q", code, stdout.String())
	}
}

// TestEvalCommand runs `cropshield eval --json --plot` on a tiny folder through the real model and
// checks the report against what the model itself says about each photo.
func TestEvalCommand(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	dir := t.TempDir()
	leafPNG, err := os.ReadFile(filepath.Join(filepath.Dir(testenv.ContractModel(t)), "testdata", "leafish-256.png"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"tomato__late_blight/1.jpg":  testLeaf(t),
		"tomato__late_blight/2.png":  leafPNG,
		"apple__scab/1.png":          leafPNG,
		"not_a_leaf/page.jpg":        testLeaf(t),
		"tomato__leaf_mold/junk.jpg": []byte("not a photo"),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plot := filepath.Join(t.TempDir(), "confusion.png")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"eval", "--json", "--plot", plot, "--device", "cpu", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep struct {
		Model     string
		Photos    int
		Failed    []string
		Top1      struct{ N, Hits int }
		Rejected  struct{ N, Hits int }
		Confusion [][]int
		Classes   []string
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if rep.Model != "contract-v1" || rep.Photos != 5 || len(rep.Failed) != 1 || rep.Top1.N != 3 || rep.Rejected.N != 1 {
		t.Fatalf("report %+v", rep)
	}
	// The contract model has no not_leaf output: it rejects nothing.
	if rep.Rejected.Hits != 0 {
		t.Errorf("rejected %d photos without a not_leaf output", rep.Rejected.Hits)
	}
	// The confusion matrix agrees with diagnose's own top-1 for the same photos.
	var diag bytes.Buffer
	if code := run([]string{"diagnose", "--no-overlay", "--device", "cpu", filepath.Join(dir, "apple__scab/1.png")}, &diag, &bytes.Buffer{}); code != 0 {
		t.Fatal("diagnose failed")
	}
	top := strings.Fields(strings.SplitN(diag.String(), ":", 2)[1])[0]
	scab := slices.Index(rep.Classes, "apple__scab")
	if pred := slices.Index(rep.Classes, top); pred < 0 || rep.Confusion[scab][pred] != 1 {
		t.Errorf("confusion row of apple__scab %v, diagnose says %s", rep.Confusion[scab], top)
	}
	if f, err := os.Open(plot); err != nil {
		t.Error(err)
	} else {
		_, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Errorf("plot: %v", err)
		}
	}
}
