package inference

import (
	"fmt"
	"image"
	"math"

	"github.com/cropshield/cropshield/inference/imagecodec"
)

// Jet maps v in 0..1 to the jet colormap (blue → cyan → yellow → red).
func Jet(v float32) (r, g, b uint8) {
	ch := func(c float32) uint8 {
		c = 1.5 - float32(math.Abs(float64(4*v-c)))
		return uint8(255*min(max(c, 0), 1) + 0.5)
	}
	return ch(3), ch(2), ch(1)
}

// heatLevels quantizes the heat-map for the blend table; 256 levels are finer than JPEG shows.
const heatLevels = 256

// blend[v] holds, for heat level v, the jet colour premultiplied by its opacity and the weight
// left for the photo, in 8.8 fixed point.
var blend = func() (t [heatLevels]struct{ r, g, b, keep uint16 }) {
	for i := range t {
		v := float32(i) / (heatLevels - 1)
		r, g, b := Jet(v)
		a := 0.25 + 0.35*v // cold regions tinted, hot ones strongly coloured
		t[i].r = uint16(float32(r)*a*256 + 0.5)
		t[i].g = uint16(float32(g)*a*256 + 0.5)
		t[i].b = uint16(float32(b)*a*256 + 0.5)
		t[i].keep = uint16((1-a)*256 + 0.5)
	}
	return t
}()

// Overlay blends the heat-map over the crop box of base: hot regions in red, cold ones in blue.
// The parts of the photo the model did not see (outside the box) are dimmed. The result is a new
// opaque RGBA image of base's size.
func Overlay(base *image.NRGBA, box CropBox, hm Heatmap) *image.RGBA {
	b := base.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	overlayInto(out, base, box, hm)
	return out
}

// overlayInto is Overlay into out, an RGBA image of base's size at (0, 0).
func overlayInto(out *image.RGBA, base *image.NRGBA, box CropBox, hm Heatmap) {
	b := base.Bounds()
	w, h := b.Dx(), b.Dy()
	// Bilinear sample positions in the heat-map per column and per row (cell centers, clamped).
	type tap struct {
		i0, i1 int
		f      float32
		inside bool
	}
	taps := func(n int, origin, side float64, cells int) []tap {
		t := make([]tap, n)
		for p := range n {
			u := (float64(p) + 0.5 - origin) / side // 0..1 across the box
			c := math.Min(math.Max(u*float64(cells)-0.5, 0), float64(cells-1))
			i0 := int(c)
			t[p] = tap{i0: i0, i1: min(i0+1, cells-1), f: float32(c - float64(i0)), inside: u >= 0 && u <= 1}
		}
		return t
	}
	xs, ys := taps(w, box.X, box.Side, hm.W), taps(h, box.Y, box.Side, hm.H)
	// The heat indexes the blend table: clamp it to 0..1 once (NaN counts as cold), so that a map
	// from a misbehaving model cannot index out of range, on a worker goroutine at that.
	heat := make([]float32, len(hm.V))
	for i, v := range hm.V {
		if v > 0 {
			heat[i] = min(v, 1)
		}
	}
	parallel(h, w*h/(1<<16), func(lo, hi int) {
		for y := lo; y < hi; y++ {
			ty := ys[y]
			src := base.Pix[base.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[out.PixOffset(0, y):]
			r0, r1 := heat[ty.i0*hm.W:], heat[ty.i1*hm.W:]
			for x := range w {
				s, d := src[4*x:4*x+3:4*x+3], dst[4*x:4*x+4:4*x+4]
				tx := xs[x]
				if !tx.inside || !ty.inside {
					d[0], d[1], d[2], d[3] = s[0]/2, s[1]/2, s[2]/2, 255
					continue
				}
				top := r0[tx.i0] + (r0[tx.i1]-r0[tx.i0])*tx.f
				bot := r1[tx.i0] + (r1[tx.i1]-r1[tx.i0])*tx.f
				c := &blend[int((top+(bot-top)*ty.f)*(heatLevels-1)+0.5)]
				d[0] = uint8((uint16(s[0])*c.keep + c.r + 128) >> 8)
				d[1] = uint8((uint16(s[1])*c.keep + c.g + 128) >> 8)
				d[2] = uint8((uint16(s[2])*c.keep + c.b + 128) >> 8)
				d[3] = 255
			}
		}
	})
}

// EncodeJPEG encodes an image as baseline JPEG (4:2:0), with libjpeg-turbo where it is built in.
func EncodeJPEG(img image.Image, quality int) ([]byte, error) {
	out, err := imagecodec.Default().EncodeJPEG(nil, img, quality)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	return out, nil
}
