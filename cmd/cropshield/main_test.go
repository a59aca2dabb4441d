package main

import (
	"bytes"
	"flag"
	"image/jpeg"
	"os"
	"path/filepath"
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
