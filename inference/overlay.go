package inference

import (
	"encoding/binary"
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
	// The columns inside the box: x0 <= x < x1 (inside is monotonic along a row).
	x0, x1 := 0, w
	for x0 < w && !xs[x0].inside {
		x0++
	}
	for x1 = x0; x1 < w && xs[x1].inside; x1++ {
	}
	// blendLanes[v] is blend[v] in resampleFixed's lanes: the colour and the 0.5 of rounding, and
	// alpha 255 whatever the photo's.
	var blendLanes [heatLevels]struct{ add, keep uint64 }
	for i, c := range blend {
		blendLanes[i].add = uint64(c.r+128) | uint64(c.b+128)<<16 | uint64(c.g+128)<<32 | uint64(255)<<56
		blendLanes[i].keep = uint64(c.keep)
	}
	parallel(h, w*h/(1<<16), func(lo, hi int) {
		col := make([]float32, hm.W) // the heat-map interpolated down to this row, per cell column
		for y := lo; y < hi; y++ {
			ty := ys[y]
			src := base.Pix[base.PixOffset(b.Min.X, b.Min.Y+y):]
			src = src[: 4*w : 4*w]
			dst := out.Pix[out.PixOffset(0, y):]
			dst = dst[: 4*w : 4*w]
			dim := func(from, to int) {
				for x := from; x < to; x++ {
					s, d := src[4*x:4*x+3:4*x+3], dst[4*x:4*x+4:4*x+4]
					d[0], d[1], d[2], d[3] = s[0]/2, s[1]/2, s[2]/2, 255
				}
			}
			if !ty.inside {
				dim(0, w)
				continue
			}
			dim(0, x0)
			dim(x1, w)
			r0, r1 := heat[ty.i0*hm.W:(ty.i0+1)*hm.W], heat[ty.i1*hm.W:(ty.i1+1)*hm.W]
			for c := range col {
				col[c] = r0[c] + (r1[c]-r0[c])*ty.f
			}
			for x := x0; x < x1; x++ {
				tx := xs[x]
				c0 := col[tx.i0]
				c := &blendLanes[int((c0+(col[tx.i1]-c0)*tx.f)*(heatLevels-1)+0.5)]
				v := (spread(src[4*x:4*x+4:4*x+4])&0xFFFF_FFFF_FFFF*c.keep + c.add) >> 8 & laneMask
				binary.LittleEndian.PutUint32(dst[4*x:4*x+4:4*x+4], unspread(v))
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
