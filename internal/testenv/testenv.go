// Package testenv finds what CropShield's tests need on disk — the repository root, the ONNX
// Runtime library that `make deps` installs, the contract test model and ../shared/datasets — and
// shares one session of the contract model between a package's tests.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"math"
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

// ShippedModel is the trained model `serve` uses by default (models/MODEL_CARD.md).
func ShippedModel(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Root(tb), "models", "cropshield-v2.onnx")
}

// LoadShipped loads the shipped model on the CPU for one test, closed at its end.
func LoadShipped(tb testing.TB) *inference.Model {
	tb.Helper()
	m, err := inference.Load(context.Background(), ShippedModel(tb), inference.Options{LibraryPath: ORTLib(tb), Device: inference.DeviceCPU})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
	})
	return m
}

// HeldOut lists a split of models/train/splits.json ("lab-test", "corn-test": photos the shipped
// model never saw in training or calibration), paths relative to Datasets, keeping at most
// perClass photos of each class folder (0: all).
func HeldOut(tb testing.TB, split string, perClass int) []string {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(Root(tb), "models", "train", "splits.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var splits map[string]json.RawMessage
	if err := json.Unmarshal(raw, &splits); err != nil {
		tb.Fatal(err)
	}
	var paths []string
	if err := json.Unmarshal(splits[split], &paths); err != nil || len(paths) == 0 {
		tb.Fatalf("split %q: %v (%d photos)", split, err, len(paths))
	}
	if perClass <= 0 {
		return paths
	}
	n := map[string]int{}
	var out []string
	for _, rel := range paths {
		class := filepath.Base(filepath.Dir(rel))
		if n[class] < perClass {
			n[class]++
			out = append(out, rel)
		}
	}
	return out
}

// OptionalModel is one of the tiny models of models/contract/testdata/optional (built by
// models/contract/gen_optional_outputs.py) that exercise the contract's optional outputs, by name
// without ".onnx": "unknown-crop", "both", "not-leaf", or a broken variant.
func OptionalModel(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(Root(tb), "models", "contract", "testdata", "optional", name+".onnx")
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

// Leaf draws a synthetic green leaf with brown spots on a pale background, w x h pixels; seed
// varies the texture, so that different seeds give different photos (and hashes).
func Leaf(w, h, seed int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy := float64(w)/2, float64(h)/2
	for y := range h {
		for x := range w {
			dx, dy := (float64(x)-cx)/(0.45*float64(w)), (float64(y)-cy)/(0.3*float64(h))
			c := color.RGBA{225, 225, 215, 255}
			if dx*dx+dy*dy < 1 {
				c = color.RGBA{40, uint8(120 + (x*7+seed)%60), 40, 255}
				if math.Sin(float64(x+seed)/9)*math.Cos(float64(y)/7) > 0.8 {
					c = color.RGBA{110, 70, 30, 255}
				}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// LeafJPEG is Leaf encoded as a JPEG photo.
func LeafJPEG(tb testing.TB, w, h, seed int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, Leaf(w, h, seed), &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
