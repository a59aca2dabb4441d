package inference_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/inference/imagecodec"
	"github.com/cropshield/cropshield/internal/testenv"
)

// codecPair loads the model at path twice: with the build's JPEG codec and with Go's. It skips
// where the build has no libjpeg-turbo (then both would be Go's).
func codecPair(t *testing.T, path string) (turbo, pureGo *inference.Model) {
	t.Helper()
	if _, ok := imagecodec.LibJPEGTurbo(); !ok {
		t.Skip("built without libjpeg-turbo (CGO_ENABLED=0 or -tags noturbojpeg): nothing to compare")
	}
	load := func(goJPEG bool) *inference.Model {
		m, err := inference.Load(context.Background(), path, inference.Options{
			LibraryPath: testenv.ORTLib(t), Device: inference.DeviceCPU, Threads: 2, PureGoJPEG: goJPEG})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := m.Close(); err != nil {
				t.Error(err)
			}
		})
		return m
	}
	return load(false), load(true)
}

// overlayDiff is the mean absolute difference, in levels, of two overlay JPEGs of the same size.
func overlayDiff(t *testing.T, a, b []byte) float64 {
	t.Helper()
	ia, err := jpeg.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	ib, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if ia.Bounds() != ib.Bounds() {
		t.Fatalf("overlays %v and %v", ia.Bounds(), ib.Bounds())
	}
	var sum float64
	r := ia.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := ia.At(x, y).RGBA()
			r2, g2, b2, _ := ib.At(x, y).RGBA()
			sum += math.Abs(float64(r1>>8)-float64(r2>>8)) + math.Abs(float64(g1>>8)-float64(g2>>8)) + math.Abs(float64(b1>>8)-float64(b2>>8))
		}
	}
	return sum / float64(3*r.Dx()*r.Dy())
}

// compareCodecs analyses a photo with both models and checks that they agree: probabilities
// within 0.1, overlays of the same size within 12 levels on average. It reports whether the top-1
// is the same. The decoders differ even at full size: libjpeg-turbo interpolates chroma (as PIL,
// which the training used, does) where Go repeats it, which shows on sharp coloured edges.
func compareCodecs(t *testing.T, turbo, pureGo *inference.Model, data []byte) (sameTop bool) {
	t.Helper()
	a, err := turbo.Analyze(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pureGo.Analyze(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if a.Width != b.Width || a.Height != b.Height || a.OverlayWidth != b.OverlayWidth || a.OverlayHeight != b.OverlayHeight {
		t.Errorf("sizes: libjpeg-turbo %dx%d overlay %dx%d, Go %dx%d overlay %dx%d",
			a.Width, a.Height, a.OverlayWidth, a.OverlayHeight, b.Width, b.Height, b.OverlayWidth, b.OverlayHeight)
	}
	for i := range a.Probs {
		if d := math.Abs(a.Probs[i] - b.Probs[i]); d > 0.1 {
			t.Errorf("class %d: probability %.4f with libjpeg-turbo, %.4f with Go", i, a.Probs[i], b.Probs[i])
		}
	}
	if d := overlayDiff(t, a.Overlay, b.Overlay); d > 12 {
		t.Errorf("overlays differ by %.2f levels on average, want <= 12", d)
	}
	return a.Top[0].ID == b.Top[0].ID
}

// TestCodecsAgreeOnContractModel: synthetic leaf photos of phone sizes give the same answer and
// a similar overlay whether JPEG goes through libjpeg-turbo (decoded at reduced size) or Go.
func TestCodecsAgreeOnContractModel(t *testing.T) {
	turbo, pureGo := codecPair(t, testenv.ContractModel(t))
	for _, sz := range []image.Point{{1280, 960}, {960, 1280}, {2400, 1800}, {640, 480}, {200, 160}} {
		t.Run(fmt.Sprintf("%dx%d", sz.X, sz.Y), func(t *testing.T) {
			if !compareCodecs(t, turbo, pureGo, testenv.LeafJPEG(t, sz.X, sz.Y, sz.X)) {
				t.Error("top-1 differs")
			}
		})
	}
}

// TestCodecsAgreeOnShippedModel: on held-out lab photos the trained model gives the same top-1
// with either codec (two photos of each class, as TestShippedModelOnHeldOutPhotos).
func TestCodecsAgreeOnShippedModel(t *testing.T) {
	datasets := testenv.Datasets(t)
	turbo, pureGo := codecPair(t, testenv.ShippedModel(t))
	differ, total := 0, 0
	for _, rel := range testenv.HeldOut(t, "lab-test", 2) {
		data, err := os.ReadFile(filepath.Join(datasets, rel))
		if err != nil {
			t.Fatal(err)
		}
		total++
		if !compareCodecs(t, turbo, pureGo, data) {
			differ++
			t.Logf("%s: top-1 differs between the codecs", rel)
		}
	}
	if total < 40 || differ > 0 {
		t.Errorf("top-1 differs on %d of %d held-out lab photos", differ, total)
	}
}
