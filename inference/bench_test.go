package inference_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"testing"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
)

// benchPhoto is a phone-like JPEG: a leaf with texture on a cluttered background.
func benchPhoto(b *testing.B, w, h int) []byte {
	b.Helper()
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rgba := image.NewRGBA(img.Rect)
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			c := color.RGBA{uint8(120 + 60*math.Sin(fx*40)), uint8(110 + 50*math.Cos(fy*33)), 90, 255}
			if dx, dy := (fx-0.5)/0.4, (fy-0.5)/0.3; dx*dx+dy*dy < 1 {
				c = color.RGBA{40, uint8(100 + 80*math.Abs(math.Sin(fx*90+fy*70))), 35, 255}
			}
			rgba.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: 85}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

var benchSizes = []struct{ w, h int }{{1280, 960}, {4000, 3000}}

// BenchmarkStages runs Analyze (contract model) on a 1280x960 and a 4000x3000 JPEG, with the
// build's JPEG codec (libjpeg-turbo) and with Go's, and reports each stage's mean beside ns/op.
// `cropshield bench` gives the percentiles, the handler and the trained model.
func BenchmarkStages(b *testing.B) {
	ctx := context.Background()
	for _, codec := range []struct {
		name   string
		goJPEG bool
	}{{"default", false}, {"go", true}} {
		m, err := inference.Load(ctx, testenv.ContractModel(b), inference.Options{
			LibraryPath: testenv.ORTLib(b), Device: inference.DeviceCPU, PureGoJPEG: codec.goJPEG})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		for _, sz := range benchSizes {
			data := benchPhoto(b, sz.w, sz.h)
			b.Run(fmt.Sprintf("%s/%dx%d", codec.name, sz.w, sz.h), func(b *testing.B) {
				var sum inference.Timings
				for b.Loop() {
					res, err := m.Analyze(ctx, data)
					if err != nil {
						b.Fatal(err)
					}
					t := res.Timings
					sum.Decode += t.Decode
					sum.Preprocess += t.Preprocess
					sum.Inference += t.Inference
					sum.Render += t.Render
					sum.Encode += t.Encode
				}
				n := float64(b.N) * 1e6 // nanoseconds per millisecond, per op
				b.ReportMetric(float64(sum.Decode)/n, "decode-ms/op")
				b.ReportMetric(float64(sum.Preprocess)/n, "preprocess-ms/op")
				b.ReportMetric(float64(sum.Inference)/n, "inference-ms/op")
				b.ReportMetric(float64(sum.Render)/n, "render-ms/op")
				b.ReportMetric(float64(sum.Encode)/n, "encode-ms/op")
			})
		}
	}
}

// BenchmarkShippedModel measures the trained model: inference alone on one preprocessed photo, and
// Analyze on a 1280x960 JPEG.
func BenchmarkShippedModel(b *testing.B) {
	m, err := inference.Load(context.Background(), testenv.ShippedModel(b), inference.Options{
		LibraryPath: testenv.ORTLib(b), Device: inference.DeviceCPU})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	data := benchPhoto(b, 1280, 960)
	photo, err := inference.Decode(data, inference.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	input, _ := m.Info().Tensor(nil, inference.FitForOverlay(photo.Image, 1024))
	b.Run("inference", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Predict(context.Background(), input, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1280x960/analyze", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Analyze(context.Background(), data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
