package inference_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
)

// The models of models/contract/testdata/optional compute, on the normalized input,
// unknown_crop = sigmoid(2·mean(red channel)) and not_leaf = sigmoid(2·mean(blue channel)), with
// the thresholds below in their metadata (see gen_optional_outputs.py).
const (
	optUnknownCropThreshold = 0.7
	optNotLeafThreshold     = 0.6
)

func sigmoid2(v float64) float64 { return 1 / (1 + math.Exp(-2*v)) }

func loadOptional(t *testing.T, name string) *inference.Model {
	t.Helper()
	m, err := inference.Load(context.Background(), testenv.OptionalModel(t, name), inference.Options{
		LibraryPath: testenv.ORTLib(t), Device: inference.DeviceCPU, Threads: 1,
	})
	if err != nil {
		t.Fatalf("Load %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// constantImage is one normalized input whose red and blue channels hold r and b everywhere.
func constantImage(side int, r, b float32) []float32 {
	out := make([]float32, 3*side*side)
	for i := range side * side {
		out[i], out[2*side*side+i] = r, b
	}
	return out
}

// TestOptionalOutputsAreRead loads models with every combination of the optional outputs and
// checks the scores and the verdicts of a batch of images on both sides of each threshold
// (thresholds that are not 0.5, so that a score of 0.65 is a known crop and 0.62 not a leaf).
func TestOptionalOutputsAreRead(t *testing.T) {
	images := []struct {
		name string
		r, b float32 // the red (unknown_crop) and blue (not_leaf) channel values
	}{
		{"known crop, leaf", -1, -1},
		{"known crop above one half", 0.3, -1},  // unknown_crop 0.65 < 0.7
		{"unknown crop", 0.6, -1},               // unknown_crop 0.77
		{"unknown crop, not a leaf", 1.5, 0.25}, // not_leaf 0.62 >= 0.6
		{"leaf above one half", -1, 0.1},        // not_leaf 0.55 < 0.6
		{"scores NaN", float32(math.NaN()), -1},
	}
	for _, tc := range []struct {
		model                string
		unknownCrop, notLeaf bool
	}{
		{"unknown-crop", true, false},
		{"both", true, true},
		{"not-leaf", false, true},
	} {
		t.Run(tc.model, func(t *testing.T) {
			m := loadOptional(t, tc.model)
			info := m.Info()
			wantUC, wantNL := 0.0, 0.0
			if tc.unknownCrop {
				wantUC = optUnknownCropThreshold
			}
			if tc.notLeaf {
				wantNL = optNotLeafThreshold
			}
			if info.UnknownCropThreshold != wantUC || info.NotLeafThreshold != wantNL {
				t.Fatalf("thresholds unknown_crop %v not_leaf %v, want %v %v", info.UnknownCropThreshold, info.NotLeafThreshold, wantUC, wantNL)
			}
			side := info.InputSize
			var batch []float32
			for _, im := range images {
				batch = append(batch, constantImage(side, im.r, im.b)...)
			}
			out, err := m.Raw(context.Background(), batch, len(images))
			if err != nil {
				t.Fatal(err)
			}
			if (out.UnknownCrop != nil) != tc.unknownCrop || (out.NotLeaf != nil) != tc.notLeaf {
				t.Fatalf("Raw: unknown_crop %v not_leaf %v, want present %v %v", out.UnknownCrop, out.NotLeaf, tc.unknownCrop, tc.notLeaf)
			}
			preds, err := m.Predict(context.Background(), batch, len(images))
			if err != nil {
				t.Fatal(err)
			}
			for i, im := range images {
				p := preds[i]
				// The graphs' 1x1 convolutions weigh every channel (most by 0), so a NaN in
				// one channel makes both scores NaN, and NaN is neither a leaf nor a known crop.
				uc, nl := sigmoid2(float64(im.r)+0*float64(im.b)), sigmoid2(float64(im.b)+0*float64(im.r))
				knownCrop, isLeaf := !tc.unknownCrop || uc < optUnknownCropThreshold, !tc.notLeaf || nl < optNotLeafThreshold
				if !tc.unknownCrop {
					uc = 0
				}
				if !tc.notLeaf {
					nl = 0
				}
				if p.KnownCrop != knownCrop || p.IsLeaf != isLeaf {
					t.Errorf("%s: KnownCrop %v IsLeaf %v, want %v %v (scores %v %v)", im.name, p.KnownCrop, p.IsLeaf, knownCrop, isLeaf, p.UnknownCrop, p.NotLeaf)
				}
				if !closeOrNaN(p.UnknownCrop, uc) || !closeOrNaN(p.NotLeaf, nl) {
					t.Errorf("%s: scores unknown_crop %v not_leaf %v, want %v %v", im.name, p.UnknownCrop, p.NotLeaf, uc, nl)
				}
			}
		})
	}
}

func closeOrNaN(got, want float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return math.Abs(got-want) <= 1e-5
}

// solidPNG is a w x h photo of one colour.
func solidPNG(t *testing.T, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 300, 260))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAnalyzeCarriesUnknownCrop: a photo goes through decoding and preprocessing to the verdict
// in the Result the handler uses.
func TestAnalyzeCarriesUnknownCrop(t *testing.T) {
	m := loadOptional(t, "both")
	info := m.Info()
	norm := func(v uint8, c int) float64 { return (float64(v)/255 - float64(info.Mean[c])) / float64(info.Std[c]) }
	for _, tc := range []struct {
		name              string
		c                 color.RGBA
		knownCrop, isLeaf bool
	}{
		{"green", color.RGBA{20, 160, 40, 255}, true, true},
		{"red", color.RGBA{230, 40, 30, 255}, false, true},
		{"blue", color.RGBA{30, 60, 240, 255}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := m.Analyze(context.Background(), solidPNG(t, tc.c))
			if err != nil {
				t.Fatal(err)
			}
			uc, nl := sigmoid2(norm(tc.c.R, 0)), sigmoid2(norm(tc.c.B, 2))
			if res.KnownCrop != tc.knownCrop || res.IsLeaf != tc.isLeaf ||
				math.Abs(res.UnknownCrop-uc) > 1e-4 || math.Abs(res.NotLeaf-nl) > 1e-4 {
				t.Errorf("KnownCrop %v (score %v) IsLeaf %v (score %v), want %v (%v) %v (%v)",
					res.KnownCrop, res.UnknownCrop, res.IsLeaf, res.NotLeaf, tc.knownCrop, uc, tc.isLeaf, nl)
			}
		})
	}
}

// TestOptionalOutputContractErrors: a model whose unknown_crop output or threshold is broken does
// not load, and the error names what is wrong.
func TestOptionalOutputContractErrors(t *testing.T) {
	lib := testenv.ORTLib(t)
	for _, tc := range []struct {
		model    string
		mentions []string
	}{
		{"no-threshold", []string{`output "unknown_crop"`, `no metadata key "unknown_crop_threshold"`}},
		{"threshold-only", []string{`metadata key "unknown_crop_threshold" is set`, `no output "unknown_crop"`}},
		{"rank2", []string{`output "unknown_crop" has shape`, "want rank 1"}},
		{"runtime-shape", []string{`output "unknown_crop" has shape [2], want [1]`}},
	} {
		t.Run(tc.model, func(t *testing.T) {
			m, err := inference.Load(context.Background(), testenv.OptionalModel(t, tc.model), inference.Options{LibraryPath: lib, Device: inference.DeviceCPU, Threads: 1})
			if err == nil {
				_ = m.Close()
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, inference.ErrContract) {
				t.Errorf("err = %v, want ErrContract", err)
			}
			for _, want := range tc.mentions {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to mention %s", err, want)
				}
			}
		})
	}
	// The failed loads left nothing behind.
	loadOptional(t, "unknown-crop")
}
