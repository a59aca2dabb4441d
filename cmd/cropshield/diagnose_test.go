package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/internal/testenv"
)

// TestDiagnoseSaysWhatTheBotWouldRefuse: with a model that has not_leaf and unknown_crop outputs,
// diagnose marks the photos the bot would not diagnose.
func TestDiagnoseSaysWhatTheBotWouldRefuse(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.OptionalModel(t, "both"))
	dir := t.TempDir()
	// The fixture model takes red for a leaf of a crop it does not know, blue for no leaf.
	photos := []struct {
		name string
		c    color.RGBA
		mark string
	}{
		{"green.png", color.RGBA{20, 160, 40, 255}, ""},
		{"red.png", color.RGBA{230, 40, 30, 255}, "[unknown crop: score 9"},
		{"blue.png", color.RGBA{30, 60, 240, 255}, "[not a leaf: score 9"},
	}
	var args []string
	for _, p := range photos {
		img := image.NewRGBA(image.Rect(0, 0, 256, 256))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = p.c.R, p.c.G, p.c.B, p.c.A
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, p.name)
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, path)
	}
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"diagnose", "--no-overlay", "--device", "cpu"}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(photos) {
		t.Fatalf("stdout:\n%s", stdout.String())
	}
	for i, p := range photos {
		if marked := strings.Contains(lines[i], "["); p.mark == "" && marked || p.mark != "" && !strings.Contains(lines[i], p.mark) {
			t.Errorf("%s: %q, want mark %q", p.name, lines[i], p.mark)
		}
	}
}
