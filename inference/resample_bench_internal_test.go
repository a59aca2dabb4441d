package inference

import (
	"image"
	"testing"
)

// BenchmarkResample: 1280x960 to the 1024x768 overlay base with the float and the fixed-point
// resamplers, and its crop box to the 224 px tensor.
func BenchmarkResample(b *testing.B) {
	src := photoNRGBA(0, 0, 1280, 960, 1)
	base := image.NewNRGBA(image.Rect(0, 0, 1024, 768))
	tensor := make([]float32, 3*224*224)
	b.Run("base/float", func(b *testing.B) {
		for b.Loop() {
			resampleArea(nrgbaSource{src}, 0, 0, 1280, 960, 1024, 768, intoNRGBA(base))
		}
	})
	b.Run("base/fixed", func(b *testing.B) {
		for b.Loop() {
			resampleFixed(src, 0, 0, 1280, 960, 1024, 768, intoNRGBAFixed(base, 1, 1024, 768))
		}
	})
	b.Run("tensor/float", func(b *testing.B) {
		for b.Loop() {
			testInfo.tensorInto(tensor, nrgbaSource{src}, 220, 60, 840, 1)
		}
	})
}
